"""aiolens in a Starlette or FastAPI service: clients in the lifespan, sessions, SSE relays.

::

    from fastapi import FastAPI, Request
    from aiolens.integrations.starlette import Aiolens

    aio = Aiolens()  # clients from ATAI_* / KYNASMITH_* when the app starts
    app = FastAPI(lifespan=aio.lifespan)

    @app.post("/sessions")
    async def open_session() -> dict[str, str]:
        session = await aio.open_session(LENS_ID)
        return {"session_id": session.session_id}

    @app.get("/sessions/{session_id}/events")
    async def events(session_id: str, request: Request) -> Response:
        return aio.relay(session_id, request)  # text/event-stream for EventSource

What it takes care of:

* **Order.** The lifespan opens the clients; at shutdown it ends the relays,
  closes the sessions it holds (each destroyed server-side, one log line per
  session that could not be), then closes the clients.
* **Shutdown with open relays.** Servers wait for running responses before
  they run the lifespan's shutdown, and an SSE response never ends by itself:
  uvicorn then waits forever. So the lifespan chains a handler onto SIGINT and
  SIGTERM (in the main thread, keeping the server's own handler) that ends
  every relay at once; the server then finishes its shutdown. If the server
  skips the lifespan's shutdown (uvicorn after a second Ctrl-C), the loop's
  final cancellation still runs it.
* **Sessions that outlive a request.** :meth:`Aiolens.open_session` keeps a
  session until no relay has used it for ``linger`` seconds (the browser
  went away and did not come back), :meth:`Aiolens.close_session`, or shutdown.
* **The relay.** Framing (one ``data:`` line of JSON per event, ``id:`` lines
  with the upstream event id), a ``retry:`` hint, comment-line heartbeats,
  a browser's ``Last-Event-ID`` passed upstream so its automatic reconnect
  resumes where it left off (the upstream stream drops repeats), bounded
  memory (a bounded upstream queue with backpressure, and a browser that
  accepts nothing for ``send_timeout`` seconds is dropped), and
  client-disconnect detection (reading stops, the upstream stream is released).

Three response styles share one relay (same events, same ids):

* :meth:`Aiolens.relay` — a ready response (listens for the disconnect itself);
* :meth:`Aiolens.sse_frames` — bytes for Starlette/FastAPI's ``StreamingResponse``;
* :meth:`Aiolens.sse_events` — dicts for sse-starlette's ``EventSourceResponse``.

Here: the clients, the lifespan and the held sessions. Beside it: ``_relay``
(the loop reading a session's stream), ``_sse`` (SSE framing and the response
that sends it) and ``_signals`` (the chained SIGINT / SIGTERM handler).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import types
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, TypeVar, Unpack

from starlette.requests import Request
from starlette.responses import Response

from aiolens._core.redact import get_logger
from aiolens._transport.shielded import run_to_completion
from aiolens.archetype.client import AsyncArchetypeClient
from aiolens.archetype.session import LensSession, LensSessionKwargs
from aiolens.errors import ConfigurationError
from aiolens.integrations.starlette._relay import END_TYPE, Item, relay_items
from aiolens.integrations.starlette._signals import (
    chain_signal_handlers,
    restore_signal_handlers,
)
from aiolens.integrations.starlette._sse import RelayResponse, frame, nothing
from aiolens.kynasmith.client import AsyncKynasmithClient

__all__ = ["Aiolens"]

log: logging.Logger = get_logger("starlette")

_T = TypeVar("_T")


class _Held:
    """A session the app holds, and the relays using it."""

    __slots__ = ("ended", "relays", "session", "timer")

    def __init__(self, session: LensSession) -> None:
        self.session = session
        self.relays = 0
        self.ended = False  # its stream ended: relays answer 204 (EventSource stops)
        self.timer: asyncio.TimerHandle | None = None


class Aiolens:
    """The aiolens clients, held sessions and SSE relays of one Starlette/FastAPI app.

    Build it at import time (it does no I/O) and pass :meth:`lifespan` to the
    app: ``FastAPI(lifespan=aio.lifespan)`` or ``Starlette(lifespan=aio.lifespan)``.

    Args:
        archetype: makes the Lens client at startup (default
            ``AsyncArchetypeClient()``, configured from ``ATAI_API_KEY`` /
            ``ATAI_API_ENDPOINT``); ``None`` for none.
        kynasmith: makes the Kynasmith client at startup; ``None`` (default)
            for none, ``AsyncKynasmithClient`` for one from the environment.
        linger: seconds a held session is kept with no relay attached (so a
            browser's reconnect finds it) before it is destroyed.
        heartbeat: seconds of silence after which a relay sends a comment line.
        send_timeout: seconds a relay waits for a browser to accept data
            before it drops that browser (bounds memory and time).
        queue_size: bound of each relay's upstream event queue; when full the
            upstream is read no further (backpressure).
        retry_ms: the reconnection delay suggested to browsers (``retry:``).
        shutdown_timeout: seconds shutdown waits for relays to end.
        handle_signals: chain a handler onto SIGINT / SIGTERM that ends the
            relays when the server starts shutting down (see the module docs).

    Raises:
        ConfigurationError: a bad option (here), or no API key (at startup).
    """

    def __init__(
        self,
        *,
        archetype: Callable[[], AsyncArchetypeClient] | None = AsyncArchetypeClient,
        kynasmith: Callable[[], AsyncKynasmithClient] | None = None,
        linger: float = 10.0,
        heartbeat: float = 15.0,
        send_timeout: float = 30.0,
        queue_size: int = 256,
        retry_ms: int = 1000,
        shutdown_timeout: float = 10.0,
        handle_signals: bool = True,
    ) -> None:
        for name, value in (
            ("linger", linger),
            ("heartbeat", heartbeat),
            ("send_timeout", send_timeout),
            ("shutdown_timeout", shutdown_timeout),
        ):
            if not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigurationError(f"queue_size must be a positive int, got {queue_size!r}")
        if not isinstance(retry_ms, int) or retry_ms < 0:
            raise ConfigurationError(f"retry_ms must be an int >= 0, got {retry_ms!r}")
        self._make_archetype = archetype
        self._make_kynasmith = kynasmith
        self.linger: float = float(linger)
        self.heartbeat: float = float(heartbeat)
        self.send_timeout: float = float(send_timeout)
        self.queue_size = queue_size
        self.retry_ms = retry_ms
        self.shutdown_timeout: float = float(shutdown_timeout)
        self.handle_signals = handle_signals
        self._archetype: AsyncArchetypeClient | None = None
        self._kynasmith: AsyncKynasmithClient | None = None
        self._held: dict[str, _Held] = {}
        self._relays = 0
        # The relays' generators, to close those a server abandoned (its task was
        # cancelled while the generator waited at a yield, so no finally ran there).
        self._generators: weakref.WeakSet[types.AsyncGeneratorType[Any, Any]] = weakref.WeakSet()
        self._relays_done: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous_handlers: dict[int, Any] = {}

    # ---- clients and lifespan -----------------------------------------------------------

    @property
    def archetype(self) -> AsyncArchetypeClient:
        """The Lens client (from startup to shutdown).

        Raises:
            RuntimeError: the app is not running, or was built with ``archetype=None``.
        """
        if self._archetype is None:
            raise RuntimeError("No Lens client: the app is not running (or archetype=None)")
        return self._archetype

    @property
    def kynasmith(self) -> AsyncKynasmithClient:
        """The Kynasmith client (from startup to shutdown).

        Raises:
            RuntimeError: the app is not running, or was built without ``kynasmith=``.
        """
        if self._kynasmith is None:
            raise RuntimeError("No Kynasmith client: the app is not running (or kynasmith=None)")
        return self._kynasmith

    @property
    def stopping(self) -> bool:
        """Whether shutdown began (relays end, new ones answer 503)."""
        return self._stopping is not None and self._stopping.is_set()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[dict[str, Any]]:
        """The app's lifespan: open the clients, and at shutdown close everything in order.

        Yields the lifespan state ``{"aiolens": self}`` (``request.state.aiolens``).

        Shutdown — normal, by an error, or by the loop's final cancellation:
        relays end (at most ``shutdown_timeout``), held sessions are closed
        and destroyed (each bounded by its ``destroy_timeout``; one log line per
        session that could not be destroyed), then the Kynasmith client and the
        Lens client close. It runs to its end even when cancelled.
        """
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._relays_done = asyncio.Event()
        self._relays_done.set()
        try:
            if self._make_archetype is not None:
                self._archetype = self._make_archetype()
            if self._make_kynasmith is not None:
                self._kynasmith = self._make_kynasmith()
            self._install_signal_handlers()
            yield {"aiolens": self}
        finally:
            await run_to_completion(self._shutdown())

    def stop(self) -> None:
        """Begin shutdown: every relay ends now. Safe to call from any thread or a signal."""
        loop, stopping = self._loop, self._stopping
        if loop is None or stopping is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            stopping.set()
        else:
            loop.call_soon_threadsafe(stopping.set)

    async def _shutdown(self) -> None:
        self._restore_signal_handlers()
        if self._stopping is not None:
            self._stopping.set()
        for generator in list(self._generators):
            # ag_frame / ag_running: a native async generator's own state (not in the ABC)
            started = getattr(generator, "ag_frame", None) is not None
            if started and not getattr(generator, "ag_running", False):
                with contextlib.suppress(RuntimeError):  # it started running meanwhile
                    await generator.aclose()
        if self._relays_done is not None and self._relays:
            try:
                async with asyncio.timeout(self.shutdown_timeout):
                    await self._relays_done.wait()
            except TimeoutError:
                log.warning(
                    "%d relay(s) still running after %ss", self._relays, self.shutdown_timeout
                )
        held, self._held = list(self._held.values()), {}
        for entry in held:
            if entry.timer is not None:
                entry.timer.cancel()
        await asyncio.gather(*(entry.session.aclose() for entry in held), return_exceptions=True)
        kynasmith, self._kynasmith = self._kynasmith, None
        archetype, self._archetype = self._archetype, None
        try:
            if kynasmith is not None:
                await kynasmith.aclose()
        finally:
            if archetype is not None:
                await archetype.aclose()

    def _install_signal_handlers(self) -> None:
        if self.handle_signals:
            self._previous_handlers = chain_signal_handlers(self.stop)

    def _restore_signal_handlers(self) -> None:
        handlers, self._previous_handlers = self._previous_handlers, {}
        restore_signal_handlers(handlers)

    # ---- held sessions ------------------------------------------------------------------

    async def open_session(self, lens_id: str, **options: Unpack[LensSessionKwargs]) -> LensSession:
        """Create a session of ``lens_id`` and hold it for relays to use.

        It is destroyed when no relay has used it for ``linger`` seconds, by
        :meth:`close_session`, or at shutdown. ``options`` are
        :meth:`AsyncArchetypeClient.session` options.

        Raises:
            RuntimeError: the app is shutting down or not running.
            APIError: the create failed (nothing is left running).
        """
        if self.stopping:
            raise RuntimeError("The app is shutting down")
        session = await self.archetype.open_session(lens_id, **options)
        entry = self._held[session.session_id] = _Held(session)
        self._start_linger(entry)
        return session

    def get_session(self, session_id: str) -> LensSession | None:
        """A held, open session by id; ``None`` when unknown, closed or its stream ended.

        With ``StreamingResponse`` or sse-starlette, answer ``None`` with
        ``Response(status_code=204)``: that tells a browser's ``EventSource``
        to stop reconnecting (:meth:`relay` does it by itself).
        """
        entry = self._held.get(session_id)
        if entry is None or entry.ended or entry.session.closed:
            return None
        return entry.session

    @property
    def sessions(self) -> list[LensSession]:
        """The sessions held now."""
        return [entry.session for entry in self._held.values()]

    async def close_session(self, session_id: str) -> bool:
        """Close (and destroy) a held session now; ``False`` when it is not held.

        Its relays end. Shielded: the destroy finishes even if the caller is
        cancelled (bounded by the session's ``destroy_timeout``).
        """
        entry = self._held.pop(session_id, None)
        if entry is None:
            return False
        if entry.timer is not None:
            entry.timer.cancel()
        await entry.session.aclose()
        return True

    def _start_linger(self, entry: _Held) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
        loop = asyncio.get_running_loop()
        entry.timer = loop.call_later(self.linger, self._expire, entry)

    def _expire(self, entry: _Held) -> None:
        entry.timer = None
        if entry.relays or self._held.get(entry.session.session_id) is not entry:
            return
        log.info("session %s: no relay for %ss; closing it", entry.session.session_id, self.linger)
        task = asyncio.ensure_future(self.close_session(entry.session.session_id))
        task.add_done_callback(_log_failure)

    # ---- relays -------------------------------------------------------------------------

    def relay(self, session: str | LensSession, request: Request) -> Response:
        """An SSE response relaying ``session``'s events to the browser that sent ``request``.

        ``session`` is a held session's id, or any open :class:`LensSession`.
        An unknown, closed or ended session answers 204 (an ``EventSource``
        stops reconnecting); during shutdown, 503.

        The response listens for the browser's disconnect and then stops
        reading upstream and releases the stream; a browser that accepts
        nothing for ``send_timeout`` seconds is dropped.
        """
        resolved = self._resolve(session)
        if isinstance(resolved, Response):
            return resolved
        frames = self._track(self._frames(resolved, request))
        return RelayResponse(frames, send_timeout=self.send_timeout)

    def sse_frames(self, session: str | LensSession, request: Request) -> AsyncIterator[bytes]:
        """The relay as SSE-framed bytes, for ``StreamingResponse``.

        ``StreamingResponse(aio.sse_frames(session_id, request),
        media_type="text/event-stream")``. Starlette cancels it when the
        browser disconnects (ASGI servers before spec 2.4, uvicorn included)
        or when a write fails (later ones: at the next heartbeat at the
        latest). An unknown session yields nothing.
        """
        resolved = self._resolve(session)
        if isinstance(resolved, Response):
            return nothing()
        return self._track(self._frames(resolved, request))

    def sse_events(
        self, session: str | LensSession, request: Request
    ) -> AsyncIterator[dict[str, Any]]:
        """The relay as sse-starlette items: ``EventSourceResponse(aio.sse_events(...))``.

        Each item is ``{"data": json, "id": id}`` (``id`` only when known);
        heartbeats are left to sse-starlette's own ``ping``. sse-starlette
        detects the disconnect and ends the stream on server shutdown itself.
        """
        resolved = self._resolve(session)
        if isinstance(resolved, Response):
            return nothing()
        return self._track(self._events(resolved, request))

    def _track(self, generator: AsyncGenerator[_T, None]) -> AsyncGenerator[_T, None]:
        if isinstance(generator, types.AsyncGeneratorType):
            self._generators.add(generator)
        return generator

    async def _events(
        self, session: LensSession, request: Request
    ) -> AsyncGenerator[dict[str, Any], None]:
        async with contextlib.aclosing(self._items(session, request)) as items:
            async for item in items:
                if item is not None:
                    out: dict[str, Any] = {"data": item.data}
                    if item.id:
                        out["id"] = item.id
                    yield out

    def _resolve(self, session: str | LensSession) -> LensSession | Response:
        if self.stopping:
            return Response(status_code=503, headers={"Retry-After": "5"})
        found = self.get_session(session) if isinstance(session, str) else session
        if found is None or found.closed:
            return Response(status_code=204)
        return found

    async def _frames(self, session: LensSession, request: Request) -> AsyncGenerator[bytes, None]:
        yield b"retry: %d\n\n" % self.retry_ms
        async with contextlib.aclosing(self._items(session, request)) as items:
            async for item in items:
                if item is None:
                    yield b": keepalive\n\n"
                else:
                    yield frame(item)

    async def _items(self, session: LensSession, request: Request) -> AsyncGenerator[Item, None]:
        """The one relay loop (:func:`relay_items`) with the held session's bookkeeping.

        Ends after the upstream end event, on an upstream error (relayed as a
        ``{"type": "aiolens.relay_error"}`` event), or when the app stops.
        Cancel or ``aclose()``: the upstream stream is closed.
        """
        entry = self._held.get(session.session_id)
        if entry is not None and entry.session is not session:
            entry = None
        last_event_id = request.headers.get("last-event-id", "")
        stream = session.raw_events(last_event_id=last_event_id, queue_size=self.queue_size)
        self._relay_started(entry)
        try:
            items = relay_items(
                stream,
                heartbeat=self.heartbeat,
                stopping=self._stopping,
                session_id=session.session_id,
            )
            async with contextlib.aclosing(items):
                async for item in items:
                    yield item
                    if item is not None and item.type == END_TYPE and entry is not None:
                        entry.ended = True
                        return
        finally:
            try:
                await run_to_completion(stream.aclose())  # raises CancelledError if cancelled
            finally:
                self._relay_ended(entry)

    def _relay_started(self, entry: _Held | None) -> None:
        self._relays += 1
        if self._relays_done is not None:
            self._relays_done.clear()
        if entry is not None:
            entry.relays += 1
            if entry.timer is not None:
                entry.timer.cancel()
                entry.timer = None

    def _relay_ended(self, entry: _Held | None) -> None:
        self._relays -= 1
        if self._relays == 0 and self._relays_done is not None:
            self._relays_done.set()
        if entry is not None:
            entry.relays -= 1
            if entry.relays == 0 and self._held.get(entry.session.session_id) is entry:
                if entry.ended or self.stopping:
                    task = asyncio.ensure_future(self.close_session(entry.session.session_id))
                    task.add_done_callback(_log_failure)
                else:
                    self._start_linger(entry)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("closing a held session failed: %s", task.exception())
