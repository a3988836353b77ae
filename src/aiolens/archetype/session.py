"""``LensSession``: a lens session's WebSocket, its SSE consumer, and its mailbox.

The session is built in layers, one module each:

* :mod:`aiolens.archetype.session_replies`: the types its requests return;
* :mod:`aiolens.archetype.session_requests`: requests over the WebSocket and the
  reader that matches replies to them (:class:`LensRequests`);
* :mod:`aiolens.archetype.session_streams`: the SSE consumers and the mailbox
  (:class:`LensEventStreams`);
* this module: :class:`LensSession` itself, its options and its lifecycle
  (connect, heartbeat, reconnect hook, close and destroy).

Every name is importable from here, as before the split.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypedDict, Unpack

from aiolens._core.correlator import Correlator
from aiolens._core.options import (
    check_bool,
    check_callable,
    check_count,
    check_optional_seconds,
    check_seconds,
)
from aiolens._core.redact import get_logger
from aiolens._transport.closing import AsyncClosing
from aiolens._transport.deadlines import Deadlines
from aiolens._transport.shielded import wait_to_completion
from aiolens._transport.sse import EventStream
from aiolens._transport.ws import DEFAULT_MAX_MESSAGE_SIZE, WebSocketChannel
from aiolens.archetype.models import SessionInfo
from aiolens.archetype.session_replies import (
    DestroyResult,
    QueryResult,
    StreamSetResult,
    UpdateResult,
    Validation,
)
from aiolens.archetype.session_streams import LensEventStreams
from aiolens.errors import APITimeoutError, ConnectionLostError, EventError

if TYPE_CHECKING:
    from aiolens.archetype.session_host import LensSessionHost

__all__ = [
    "DestroyResult",
    "LensSession",
    "LensSessionKwargs",
    "LensSessionOptions",
    "QueryResult",
    "StreamSetResult",
    "UpdateResult",
    "Validation",
]

log: logging.Logger = get_logger("session")

DEFAULT_DESTROY_TIMEOUT: Final = 10.0
"""Seconds a session's destroy call may take while closing."""


class LensSessionKwargs(TypedDict, total=False):
    """The options of ``client.open_session`` / ``session`` / ``attach`` (keyword arguments).

    A misspelt option fails type checking (``**options: Unpack[LensSessionKwargs]``);
    at run time it is a ``TypeError`` before anything is created. The values
    are checked by :class:`LensSessionOptions`.
    """

    max_in_flight: int
    request_timeout: float
    heartbeat_interval: float | None
    reconnect: bool
    on_reconnect: Callable[[LensSession], Awaitable[None]] | None
    destroy_timeout: float
    open_timeout: float
    ping_interval: float | None
    max_message_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LensSessionOptions:
    """A :class:`LensSession`'s options, checked when made (see :class:`LensSession`).

    ``client.open_session(lens_id, **options)`` builds one before the create
    call, so a bad or unknown option fails before anything exists server-side.

    Raises:
        ConfigurationError: a bad value; the message names the option.
        TypeError: an unknown option.
    """

    max_in_flight: int = 256
    request_timeout: float = 60.0
    heartbeat_interval: float | None = 30.0
    reconnect: bool = True
    on_reconnect: Callable[[LensSession], Awaitable[None]] | None = None
    destroy_timeout: float = DEFAULT_DESTROY_TIMEOUT
    open_timeout: float = 10.0
    ping_interval: float | None = 20.0
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE

    def __post_init__(self) -> None:
        check_count("max_in_flight", self.max_in_flight)
        check_seconds("request_timeout", self.request_timeout)
        check_optional_seconds("heartbeat_interval", self.heartbeat_interval)
        check_bool("reconnect", self.reconnect)
        check_callable("on_reconnect", self.on_reconnect)
        check_seconds("destroy_timeout", self.destroy_timeout)
        check_seconds("open_timeout", self.open_timeout)
        check_optional_seconds("ping_interval", self.ping_interval)
        check_count("max_message_size", self.max_message_size)


class LensSession(LensEventStreams, AsyncClosing):
    """One lens session: WebSocket requests, SSE events, mailbox reads.

    Get one with ``await client.open_session(lens_id)`` (creates it; its
    :meth:`aclose` destroys it), ``client.session(lens_id)`` (the same for one
    ``async with`` block), or ``client.attach_session(session_id)`` /
    ``client.attach(session_id)`` (an existing one, left running on close).
    The client owns it: it is in ``client.open_sessions`` until it closes,
    and ``client.aclose()`` closes it if it is still open.

    Args:
        client: the owning client (auth, REST calls).
        session_id: the session's id.
        endpoint: its WebSocket URL (``session_endpoint``).
        info: the record ``sessions.create`` returned, if any.
        destroy_on_close: destroy the session server-side in :meth:`aclose`.
        max_in_flight: requests that may await replies at once; more callers
            wait for a slot (backpressure).
        request_timeout: default seconds for :meth:`request`.
        heartbeat_interval: send ``session.heartbeat`` after this many idle
            seconds (``None`` disables); websocket pings run regardless.
        reconnect: reconnect the WebSocket after a recoverable close (with the
            client's ``backoff`` between attempts).
        on_reconnect: called with the session after each reconnect (e.g. to
            re-bind streams); it runs in a task of its own, so it may make
            requests. An exception it raises is logged; it is cancelled when
            the session closes.
        destroy_timeout: bound on the destroy call made while closing.
        open_timeout: seconds for the WebSocket's opening handshake.
        ping_interval: seconds between WebSocket keepalive pings (``None``
            disables them); a pong missing for as long drops the connection.
        max_message_size: the largest request frame, in bytes once encoded;
            :meth:`request` refuses a larger one with
            :class:`~aiolens.errors.MessageTooLargeError`, without sending it
            (the server would close the socket, failing every pending request).

    Raises:
        ConfigurationError: a bad option value (it names the option): seconds
            must be finite numbers > 0, counts whole numbers >= 1.
        APIConnectionError: the client is closed.
    """

    def __init__(
        self,
        client: LensSessionHost,
        session_id: str,
        endpoint: str,
        *,
        info: SessionInfo | None = None,
        destroy_on_close: bool = False,
        **options: Unpack[LensSessionKwargs],
    ) -> None:
        checked = LensSessionOptions(**options)
        self.client = client
        self.session_id = session_id
        self.endpoint = endpoint
        self.info = info
        self.destroy_on_close = destroy_on_close
        self.request_timeout: float = checked.request_timeout
        self.heartbeat_interval: float | None = checked.heartbeat_interval
        self.destroy_timeout: float = checked.destroy_timeout
        self._on_reconnect_hook = checked.on_reconnect
        # Waiters get the reply still encoded: the reader reads only its type, and the
        # caller decodes it (see _on_message).
        self._correlator: Correlator[asyncio.Future[str | bytes]] = Correlator()
        self._slots = asyncio.Semaphore(checked.max_in_flight)
        self._deadlines = Deadlines()
        self._observer = client.transport.observer
        self._channel = WebSocketChannel(
            self._target,
            on_message=self._on_message,
            on_lost=self._on_lost,
            on_reconnect=self._reconnected,
            reconnect=checked.reconnect,
            backoff=client.transport.backoff,
            open_timeout=checked.open_timeout,
            ping_interval=checked.ping_interval,
            ping_timeout=checked.ping_interval,
            max_message_size=checked.max_message_size,
            name=f"lens session {session_id}",
            observer=self._observer,
            rules=client.transport.rules,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._streams: set[EventStream[Any]] = set()
        self._last_activity = time.monotonic()
        self._closing: asyncio.Task[None] | None = None
        self._heartbeat_timer: asyncio.TimerHandle | None = None
        self.unmatched_replies: int = 0
        """Replies that matched no pending request (logged and dropped)."""
        self.malformed_replies: int = 0
        """Frames that were not JSON objects, or replies of the wrong shape (logged, dropped)."""
        client.registry.add(self)  # last: a session that failed to build is not owned

    def __repr__(self) -> str:
        return f"LensSession({self.session_id!r}, connected={self._channel.connected})"

    # ---- lifecycle ----------------------------------------------------------------------

    async def _target(self) -> tuple[str, Mapping[str, str]]:
        return self.endpoint, self.client.auth_headers

    async def connect(self) -> None:
        """Open the WebSocket and start the reader and heartbeat tasks.

        Raises:
            APIStatusError: the server refused the handshake (401, 404 ...).
            APIConnectionError: it could not be reached.
        """
        await self._channel.connect()
        if self.heartbeat_interval:
            self._arm_heartbeat(self.heartbeat_interval)

    def _spawn(self, coro: Awaitable[Any], what: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"aiolens {self.session_id} {what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called (its work may still be under way)."""
        return self._closing is not None

    @property
    def attached(self) -> bool:
        """Whether the session is only attached to: closing it leaves it running."""
        return not self.destroy_on_close

    @property
    def reconnects(self) -> int:
        """How many times the WebSocket reconnected."""
        return self._channel.reconnects

    async def aclose(self) -> None:
        """Close the session's connections and, if it owns it, destroy it server-side.

        Idempotent: a second call (the client's ``aclose()`` and the
        ``async with`` block both closing it) waits for the same work. Requests
        still waiting fail with :class:`ConnectionLostError`; background tasks
        (heartbeat, ``on_reconnect`` hooks) are cancelled and awaited; event
        streams are closed. The session leaves ``client.open_sessions`` at once.

        Cancel: the work runs to its end even when the caller is cancelled,
        once or repeatedly (it is shielded); ``aclose`` then raises
        :class:`asyncio.CancelledError`. So leaving ``async with
        client.session(...)`` because of an exception or a cancel still
        destroys the session. Timeout: the WebSocket close waits at most 5 s
        for the closing handshake, the destroy call at most
        ``destroy_timeout``; a failed or timed-out destroy is logged, not
        raised.
        """
        caller = asyncio.current_task()
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shutdown(caller))
            self.client.registry.closing(self, self._closing)
        elif caller in self._tasks:
            return  # one of ours (a hook) closing again: the shutdown waits for it
        await wait_to_completion(self._closing)

    async def _shutdown(self, caller: asyncio.Task[Any] | None) -> None:
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
            self._heartbeat_timer = None
        # The caller may be one of our tasks (an on_reconnect hook closing the session).
        tasks = [task for task in self._tasks if task is not caller]
        for task in tasks:
            task.cancel()
        for stream in list(self._streams):
            await stream.aclose()
        await self._channel.aclose()
        self._fail_pending(ConnectionLostError("The session was closed"))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._deadlines.close()
        if self.destroy_on_close:
            await self._destroy_quietly()

    async def _destroy_quietly(self) -> None:
        await self.client.sessions.destroy_quietly(self.session_id, timeout=self.destroy_timeout)

    async def _reconnected(self) -> None:
        # Called from the reader task: the hook runs in a task of its own, so that it
        # can make requests (their replies need the reader).
        hook = self._on_reconnect_hook
        if hook is not None:
            self._spawn(self._run_reconnect_hook(hook), "on_reconnect")

    async def _run_reconnect_hook(self, hook: Callable[[LensSession], Awaitable[None]]) -> None:
        try:
            await hook(self)
        except Exception:
            log.exception("session %s: on_reconnect hook failed", self.session_id)

    # The heartbeat is a loop timer, not a task: a task per session would sleep for
    # the session's whole life (a task, a coroutine, a future and a timer each, kept by
    # the garbage collector's full collections). A task exists only while a heartbeat
    # request is in flight.

    def _arm_heartbeat(self, interval: float) -> None:
        """Set the timer for when the session will have been idle for ``interval``."""
        loop = asyncio.get_running_loop()
        due = loop.time() + max(0.0, self._last_activity + interval - time.monotonic())
        self._heartbeat_timer = loop.call_at(due, self._heartbeat_due, interval)

    def _heartbeat_due(self, interval: float) -> None:
        self._heartbeat_timer = None
        if self._closing is not None:
            return
        if time.monotonic() - self._last_activity < interval:  # there was traffic since
            self._arm_heartbeat(interval)
        else:
            self._spawn(self._heartbeat(interval), "heartbeat")

    async def _heartbeat(self, interval: float) -> None:
        """Send one ``session.heartbeat``; then set the timer for the next one."""
        try:
            await self.request("session.heartbeat", timeout=interval)
        except (ConnectionLostError, APITimeoutError, EventError) as exc:
            log.info("session %s: heartbeat failed: %s", self.session_id, exc)
            self._last_activity = time.monotonic()
        except Exception:  # never silently: log it, keep the heartbeat going
            log.exception("session %s: heartbeat failed unexpectedly", self.session_id)
            self._last_activity = time.monotonic()
        if self._closing is None:
            self._arm_heartbeat(interval)
