"""A running emulated lens session: its input pump, SSE event log and mailbox.

One :class:`SessionRuntime` per session (``session.extra["runtime"]``), made
by :func:`runtime_for`. The input pump runs a
:class:`~aiolens.emulator.lens_engine.LensRun` at the store's
``event_interval`` and routes every event either to the SSE log (when an SSE
writer is bound) or to the mailbox, never both (docs/protocol-notes.md, "Lens events").

**SSE log.** Every event routed to SSE is encoded once, as its complete
``event: message`` / ``id: N`` / ``data: ...`` frame, when it is appended;
every consumer writes those same bytes. Ids are per session, from 1, without
gaps. ``sse.stream.end`` is appended when the input is exhausted (SSE-bound
sessions only) or when the session is destroyed.

**Bounds.** The log and the mailbox each keep at most ``max_session_events``
entries (:class:`~aiolens.emulator.lens_store.LensStore`); past that the
oldest are evicted in chunks of 1/16 of the bound. An evicted id cannot be
resumed (the SSE route answers 409 ``resume_unavailable``); a mailbox reader
whose cursor was evicted continues at the oldest message kept.

**Which events a new SSE consumer gets**: a consumer without ``Last-Event-ID``
receives what is produced after it connects (live, seed 002). With the
store's ``sse_replay`` it receives the current stream from its start
(everything since the last ``sse.stream.end`` that preceded the current
input, or the whole last stream if the session has ended), so a test never
races the producer (docs/protocol-notes.md, row 11).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final, Protocol

import msgspec

from aiolens.emulator.lens_engine import LensEngineError, LensRun
from aiolens.emulator.lens_store import LensStore, SessionRecord

__all__ = ["SSE_WRITERS", "Connection", "SessionRuntime", "runtime_for"]

log: logging.Logger = logging.getLogger("aiolens.emulator")

SSE_WRITERS: Final = frozenset({"server_sent_events_writer", "server_side_events_writer"})
_encoder: Final = msgspec.json.Encoder()
_END_EVENT: Final = {"type": "sse.stream.end"}


class Connection(Protocol):
    """A realtime connection attached to a session (a WebSocket)."""

    def session_destroyed(self) -> None:
        """The session was destroyed: close the connection soon."""


def seed_shaped(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with the seeds' fields added: a top-level ``timestamp`` and ``data``.

    Seeds 001 and 002 show lens events as ``{"type", "timestamp", "data"}``:
    ``inference.result`` carries ``data: {"result": "<text>"}`` and ``log.info``
    a string. The official examples read ``event_data.response[]`` instead, so
    ``event_data`` is kept: both readings work (docs/protocol-notes.md, rows 1 and 3).
    """
    if "data" in event and "timestamp" in event:
        return event
    shaped = {"type": event.get("type"), "timestamp": time.time(), **event}
    payload = event.get("event_data")
    if "data" not in shaped:
        if shaped["type"] == "inference.result" and isinstance(payload, dict):
            response = payload.get("response")
            text = "\n".join(map(str, response)) if isinstance(response, list) else response
            shaped["data"] = {"result": "" if text is None else str(text)}
        elif shaped["type"] == "log.info" and isinstance(payload, dict) and "message" in payload:
            shaped["data"] = str(payload["message"])
        elif shaped["type"] == "error":
            extra = payload if isinstance(payload, dict) else {}
            shaped["data"] = {"message": event.get("message"), **extra}
        else:
            shaped["data"] = payload
    return shaped


def _encode_frame(ident: int, event: dict[str, Any]) -> bytes:
    return b"event: message\nid: %d\ndata: %s\n\n" % (ident, _encoder.encode(event))


class SessionRuntime:
    """Realtime state of one session."""

    def __init__(self, store: LensStore, session: SessionRecord) -> None:
        self.store = store
        self.session = session
        self.max_events: int = max(1, store.max_session_events)
        self.frames: list[bytes] = []
        """Encoded SSE frames; ``frames[i]`` has id ``base + i + 1``."""
        self.base: int = 0
        """How many frames were evicted from the front of :attr:`frames`."""
        self.num_bytes: int = 0
        """Bytes of every frame ever appended to the log."""
        self.stream_start: int = 0
        """Id after which the current stream starts (where a new consumer begins)."""
        self.ended: bool = False
        """The last frame is ``sse.stream.end`` and no input runs."""
        self.mailbox: list[Any] = []
        self.mailbox_base: int = 0
        self.cursors: dict[str, int] = {}
        self.sse_bound: bool = any(
            isinstance(s, dict) and s.get("stream_type") in SSE_WRITERS
            for s in session.lens_config.get("output_streams") or []
        )
        self.connections: set[Connection] = set()
        self._changed = asyncio.Event()
        self._armed = False
        self._pump: asyncio.Task[None] | None = None
        self._autostarted = False

    @property
    def producing(self) -> bool:
        """Whether an input stream is running (which counts as session activity)."""
        return self._pump is not None and not self._pump.done()

    @property
    def last_id(self) -> int:
        """The id of the newest frame in the log (0 when none)."""
        return self.base + len(self.frames)

    # ---- change notification ----------------------------------------------------------------

    def changed(self) -> asyncio.Event:
        """An event set at the next change (take it *before* looking at the state)."""
        self._armed = True
        return self._changed

    def notify(self) -> None:
        """Wake everything waiting on :meth:`changed`."""
        if self._armed:
            self._armed = False
            self._changed.set()
            self._changed = asyncio.Event()

    # ---- producers --------------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        """Route one lens event to the SSE log or the mailbox, in the seeds' shape."""
        self.session.num_outputs += 1
        event = seed_shaped(event)
        if self.sse_bound:
            self._append(event)
        else:
            self.mailbox.append(event)
            if len(self.mailbox) > self.max_events:
                drop = len(self.mailbox) - self.max_events + self.max_events // 16
                del self.mailbox[:drop]
                self.mailbox_base += drop
        self.notify()

    def _append(self, event: dict[str, Any]) -> None:
        frame = _encode_frame(self.last_id + 1, event)
        self.frames.append(frame)
        self.num_bytes += len(frame)
        if len(self.frames) > self.max_events:
            drop = len(self.frames) - self.max_events + self.max_events // 16
            del self.frames[:drop]
            self.base += drop

    def end(self) -> None:
        """Append ``sse.stream.end`` (input exhausted or session destroyed). Idempotent."""
        if not self.ended:
            self.ended = True
            self._append(_END_EVENT)
            self.notify()

    def bind_output(self, stream_type: str) -> None:
        """``output_stream.set``: route to SSE for an SSE writer, else to the mailbox."""
        self.sse_bound = stream_type in SSE_WRITERS

    def autostart(self) -> None:
        """Start the input streams configured in ``lens_config`` (once per session).

        Called when the session starts running (first connection or event).
        A configuration the engine rejects becomes an ``error`` event.
        """
        if self._autostarted or self._pump is not None or not self.session.active:
            return
        self._autostarted = True
        for stream in self.session.lens_config.get("input_streams") or []:
            if isinstance(stream, dict) and isinstance(stream.get("stream_type"), str):
                config = stream.get("stream_config")
                config = config if isinstance(config, dict) else {}
                try:
                    self.start_input(stream["stream_type"], config)
                except LensEngineError as exc:
                    self._fail(exc.code, exc.message)
                return

    def start_input(self, stream_type: str, stream_config: dict[str, Any]) -> None:
        """Start (or restart) the input pump.

        Raises:
            LensEngineError: the stream cannot run (unknown file, bad params ...).
        """
        files = {fid: rec.data for fid, rec in self.store.files.items()}
        run = LensRun(self.session.lens_config, stream_type, stream_config, files)
        self._autostarted = True
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
        if self.ended:  # a new stream after the previous one ended
            self.ended = False
            self.stream_start = self.last_id
        self._pump = asyncio.get_running_loop().create_task(
            self._run(run), name=f"lens-input-{self.session.session_id}"
        )

    async def _run(self, run: LensRun) -> None:
        interval = self.store.event_interval
        try:
            for n, event in enumerate(run):
                if not self.session.active:
                    return
                if event.get("type") == "inference.result":
                    self.session.num_inputs += 1
                self.emit(event)
                if interval > 0:
                    await asyncio.sleep(interval)
                elif n % 256 == 255:
                    await asyncio.sleep(0)
        except LensEngineError as exc:
            self._fail(exc.code, exc.message)
        except Exception as exc:  # a bug in a lens must not kill the server quietly
            log.exception("lens input of %s failed", self.session.session_id)
            self._fail("internal_logic_error", f"{type(exc).__name__}: {exc}")
        if self.sse_bound:
            self.end()

    def _fail(self, code: str, message: str) -> None:
        self.emit({"type": "error", "message": message, "event_data": {"code": code}})

    def update(self, event_data: dict[str, Any]) -> None:
        """``session.update`` with an inline data event: emit a result describing it."""
        data = event_data.get("event_data")
        kind = event_data.get("type") or "data"
        if isinstance(data, dict):
            described = f"fields {sorted(data)}"
        elif isinstance(data, str):
            described = f"{len(data)} characters"
        else:
            described = "no payload"
        self.emit(
            {
                "type": "inference.result",
                "event_data": {
                    "response": [f"received {kind} with {described}"],
                    "query_id": f"qry-update-{self.session.num_updates:06d}",
                    "query_time_sec": 0.0,
                    "input": data if isinstance(data, dict) else None,
                },
            }
        )

    # ---- consumers --------------------------------------------------------------------------

    def read(self, client_id: str) -> list[Any] | None:
        """New mailbox messages for ``client_id`` (a new id starts at the oldest kept)."""
        start = max(self.cursors.get(client_id, 0), self.mailbox_base)
        end = self.mailbox_base + len(self.mailbox)
        self.cursors[client_id] = end
        if start >= end:
            return None
        return self.mailbox[start - self.mailbox_base :]

    # ---- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        """The session was destroyed: stop the pump, end SSE, close the sockets."""
        if self._pump is not None:
            self._pump.cancel()
        self.end()
        for connection in list(self.connections):
            connection.session_destroyed()

    async def stop_pump(self) -> None:
        """Cancel the input pump and wait for it (emulator shutdown)."""
        pump, self._pump = self._pump, None
        if pump is not None and not pump.done():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump


def runtime_for(store: LensStore, session: SessionRecord) -> SessionRuntime:
    """The session's runtime, created on first use.

    A destroyed session's runtime is ended, so its SSE consumers finish.
    """
    runtime = session.extra.get("runtime")
    if runtime is None:
        runtime = session.extra["runtime"] = SessionRuntime(store, session)
        if not session.active:
            runtime.end()
    assert isinstance(runtime, SessionRuntime)
    return runtime
