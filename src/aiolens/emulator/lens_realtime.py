"""The Lens realtime routes: the session WebSocket and the SSE consumer.

**WebSocket** ``GET /v0.5/lens/sessions/{session_id}`` (docs/protocol-notes.md).

* Auth: the Lens auth middleware accepts ``Authorization: Bearer <key>`` or an
  offered subprotocol ending in ``bearer.<key>``; a bad key is answered 401
  before the upgrade. Subprotocol: ``event-protocol-v1`` is selected when
  offered; when only a ``...bearer.<key>`` protocol is offered, that one is
  echoed (browsers fail a handshake that selects none of their offers).
* Requests are JSON objects ``{"type", "event_data"?}`` in text **or** binary
  frames. One reader handles them in arrival order and answers each exactly
  once, in order, with a text frame (pipelining is fine). Replies come from
  :func:`~aiolens.emulator.lens_events.handle_event`, the same code as
  ``POST /lens/sessions/events/process``. Invalid JSON, or a message without a
  string ``type``, is answered ``{"type": "error", "message": ...}``; the
  socket stays open. The server never sends anything unprompted.
* Connecting marks the session RUNNING, starts the input streams its lens
  config names, and counts in ``num_active_connections``.
* Unknown session id: the socket is accepted and every request is answered
  ``{"type": "error", "message": "Unknown session id: <id>"}``, the documented
  error reply, rather than closing with 1008. A session destroyed
  before the socket connected answers the same error to everything except
  ``session.status``, which still returns its (DESTROYED) record.
* ``session.destroy`` is answered, then the socket closes (1000). Destroying
  the session any other way (REST, another socket) closes every socket of the
  session (1000) once its current reply, if any, is sent.

**SSE** ``GET /v0.5/lens/sessions/consumer/{session_id}`` ("SSE consumer").

* ``text/event-stream``; every frame is ``event: message``. First
  ``sse.stream.start`` ``{session_id, reader_id}``, then the session's events,
  then ``sse.stream.end`` (input exhausted, or session destroyed), then EOF.
* Every event of the session log carries ``id: N`` (per session, from 1,
  monotonic). ``sse.stream.start`` and heartbeats carry no id: they belong to
  the connection, not to the resumable sequence (an id on them would repeat or
  skip a log id). Heartbeats (``sse.stream.heartbeat``) come every
  ``sse_heartbeat_interval`` seconds, idle or not; ``num_messages`` and
  ``num_bytes`` count this connection's log events and bytes,
  ``message_timeout`` is the seconds since its last log event (it grows with
  each heartbeat of an idle stream).
* ``Last-Event-ID: N`` resumes strictly after event N. Answered 409 with
  ``errors[0].code == "resume_unavailable"`` when N is not an integer, is
  newer than the newest event, or was evicted from the log (the log keeps
  ``max_session_events`` events).
* Without ``Last-Event-ID`` a consumer gets only what is produced after it
  connects (live, as seed 002 describes: "server pushes events as they
  arrive"); a stream that has already ended gives just ``sse.stream.end``.
  With ``sse_replay`` it gets the current stream from its start instead
  (docs/protocol-notes.md, row 11). Any number of consumers each get
  every event; each event is encoded once, when produced, and written in
  batches.
* A consumer so slow that events it has not read yet are evicted is
  disconnected (no ``sse.stream.end``); resuming then answers 409.

**Faults** (``emulator.faults``, read as they apply):

* ``reply_delay``: seconds slept before each WebSocket reply.
* ``ws_drop_after = N``: after its N-th reply a WebSocket's TCP connection is
  aborted (flushed first, no close frame).
* ``sse_drop_after = N``: after N log events on one SSE connection (start and
  heartbeats not counted) the connection is aborted (no ``sse.stream.end``).
* ``malformed_after = N``: once per connection, after N replies (WebSocket:
  a text frame of invalid JSON) or N log events (SSE: a ``data:`` line of
  invalid JSON, without id); then the connection goes on normally.

**Shutdown** (app ``on_shutdown``): input pumps are cancelled, WebSockets are
closed (1001), SSE streams end with EOF (no ``sse.stream.end``: the session is
not over); a connection that does not finish within a second is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Coroutine
from typing import Any, Final

import msgspec
from aiohttp import WSMsgType, web

from aiolens.emulator._web import ReplyFaults, ServiceError, abort_connection
from aiolens.emulator.faults import Faults
from aiolens.emulator.lens_events import EventContext, handle_event, start_session
from aiolens.emulator.lens_runtime import SessionRuntime, runtime_for
from aiolens.emulator.lens_store import LensStore, SessionRecord

__all__ = ["add_realtime_routes"]

EVENT_PROTOCOL: Final = "event-protocol-v1"
_encoder: Final = msgspec.json.Encoder()
_BATCH: Final = 1024
"""Most log frames written to an SSE connection in one write."""
_CLOSE_TIMEOUT: Final = 2.0
"""Seconds a WebSocket close waits for the client's close frame."""
_SHUTDOWN_GRACE: Final = 1.0
_MALFORMED_WS: Final = b'{"type": "session.status.response", "event_data": {this is not json'
_MALFORMED_SSE: Final = b'event: message\ndata: {"type": "inference.result", this is not json\n\n'
_TEXT: Final = WSMsgType.TEXT


class _Request(msgspec.Struct, gc=False):
    type: str
    event_data: Any = None


_request_decoder: Final = msgspec.json.Decoder(_Request)


def _error(message: str) -> dict[str, Any]:
    return {"type": "error", "message": message}


def _sse_frame(event: dict[str, Any]) -> bytes:
    return b"event: message\ndata: %s\n\n" % _encoder.encode(event)


def _select_protocols(request: web.Request) -> tuple[str, ...]:
    offered = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    ]
    if EVENT_PROTOCOL in offered:
        return (EVENT_PROTOCOL,)
    return tuple(p for p in offered if "bearer." in p)[:1]


class _Socket:
    """A WebSocket attached to a live session (a ``lens_runtime.Connection``)."""

    __slots__ = ("realtime", "replying", "ws")

    def __init__(self, realtime: _Realtime, ws: web.WebSocketResponse) -> None:
        self.realtime = realtime
        self.ws = ws
        self.replying = False

    def session_destroyed(self) -> None:
        # Mid-request, the handler closes after its reply; otherwise close now.
        if not self.replying and not self.ws.closed:
            self.realtime.spawn(self.ws.close(code=1000, message=b"session destroyed"))


class _Stream:
    """One open SSE connection."""

    __slots__ = ("request", "runtime")

    def __init__(self, request: web.Request, runtime: SessionRuntime) -> None:
        self.request = request
        self.runtime = runtime


class _Realtime:
    def __init__(
        self, store: LensStore, faults: Faults, ws_base: Callable[[web.Request], str]
    ) -> None:
        self.store = store
        self.faults = faults
        self.ws_base = ws_base
        self.sockets: set[web.WebSocketResponse] = set()
        self.streams: set[_Stream] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closing = False
        self.no_streams = asyncio.Event()
        self.no_streams.set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---- WebSocket --------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            protocols=_select_protocols(request),
            compress=False,
            max_msg_size=64 * 1024 * 1024,
            timeout=_CLOSE_TIMEOUT,
        )
        await ws.prepare(request)
        if self.closing:
            await ws.close(code=1001, message=b"emulator shutting down")
            return ws
        session = self.store.sessions.get(request.match_info["session_id"])
        socket = _Socket(self, ws)
        runtime: SessionRuntime | None = None
        if session is not None and session.active:
            start_session(self.store, session)
            runtime = runtime_for(self.store, session)
            runtime.connections.add(socket)
            session.num_active_connections += 1
        self.sockets.add(ws)
        try:
            await self._serve(request, ws, socket, session, runtime is not None)
        except ConnectionResetError:
            pass  # the client went away mid-reply
        finally:
            self.sockets.discard(ws)
            if runtime is not None and session is not None:
                runtime.connections.discard(socket)
                session.num_active_connections -= 1
        return ws

    async def _serve(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        socket: _Socket,
        session: SessionRecord | None,
        attached: bool,
    ) -> None:
        ctx = EventContext(self.store, self.ws_base(request), own_connections=int(attached))
        session_id = request.match_info["session_id"]
        replies = ReplyFaults(self.faults)
        send = ws.send_frame
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT and msg.type is not WSMsgType.BINARY:
                continue
            socket.replying = True
            reply = self._answer(ctx, session, session_id, msg.data)
            if await replies.before_reply():
                await send(_MALFORMED_WS, _TEXT)
            await send(_encoder.encode(reply), _TEXT)
            socket.replying = False
            if replies.replied():
                await abort_connection(request)
                return
            if attached and session is not None and not session.active:
                await ws.close(code=1000, message=b"session destroyed")
                return

    def _answer(
        self,
        ctx: EventContext,
        session: SessionRecord | None,
        session_id: str,
        raw: str | bytes,
    ) -> dict[str, Any]:
        try:
            message = _request_decoder.decode(raw)
        except msgspec.ValidationError as exc:
            return _error(f"Invalid event (need a JSON object with a string 'type'): {exc}")
        except msgspec.DecodeError as exc:
            return _error(f"Malformed JSON: {exc}")
        if session is None:
            return _error(f"Unknown session id: {session_id}")
        return handle_event(ctx, session, message.type, message.event_data)

    # ---- SSE --------------------------------------------------------------------------------

    async def consumer(self, request: web.Request) -> web.StreamResponse:
        session = self.store.session(request.match_info["session_id"])
        if session.active:
            start_session(self.store, session)
        runtime = runtime_for(self.store, session)
        position = _start_position(request, runtime)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        stream = _Stream(request, runtime)
        self.streams.add(stream)
        self.no_streams.clear()
        try:
            await self._stream(request, response, session, runtime, position)
        except ConnectionResetError:
            pass  # the consumer went away
        finally:
            self.streams.discard(stream)
            if not self.streams:
                self.no_streams.set()
        return response

    async def _stream(
        self,
        request: web.Request,
        response: web.StreamResponse,
        session: SessionRecord,
        runtime: SessionRuntime,
        position: int,
    ) -> None:
        start = {
            "type": "sse.stream.start",
            "event_data": {"session_id": session.session_id, "reader_id": secrets.token_hex(8)},
        }
        await response.write(_sse_frame(start))
        loop = asyncio.get_running_loop()
        faults = self.faults
        interval = max(self.store.sse_heartbeat_interval, 0.001)
        next_beat = loop.time() + interval
        last_message = loop.time()
        sent = 0
        sent_bytes = 0
        malformed_sent = False
        while not self.closing:
            changed = runtime.changed()
            if position < runtime.base:  # evicted before we wrote it: cannot keep up
                await abort_connection(request)
                return
            if position < runtime.last_id:
                offset = position - runtime.base
                batch = runtime.frames[offset : offset + _BATCH]
                drop = faults.sse_drop_after
                if drop is not None and sent + len(batch) >= drop:
                    head = b"".join(batch[: max(0, drop - sent)])
                    if head:
                        await response.write(head)
                    await abort_connection(request)
                    return
                count = len(batch)
                bad = faults.malformed_after
                if bad is not None and not malformed_sent and sent + count > bad:
                    malformed_sent = True
                    cut = max(0, bad - sent)
                    batch = [*batch[:cut], _MALFORMED_SSE, *batch[cut:]]
                chunk = b"".join(batch)
                await response.write(chunk)
                position += count
                sent += count
                sent_bytes += len(chunk)
                last_message = loop.time()
            elif runtime.ended:
                break
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, next_beat - loop.time())):
                        await changed.wait()
            now = loop.time()
            if now >= next_beat:
                next_beat = now + interval
                beat = {
                    "type": "sse.stream.heartbeat",
                    "event_data": {
                        "session_id": session.session_id,
                        "session_status": session.status,
                        "num_messages": sent,
                        "num_bytes": sent_bytes,
                        "message_timeout": round(now - last_message, 3),
                    },
                }
                await response.write(_sse_frame(beat))
        await response.write_eof()

    # ---- shutdown ---------------------------------------------------------------------------

    async def shutdown(self, app: web.Application) -> None:
        """Stop the pumps, close every socket and stream; abort what does not finish."""
        self.closing = True
        for session in self.store.sessions.values():
            runtime = session.extra.get("runtime")
            if isinstance(runtime, SessionRuntime):
                await runtime.stop_pump()
        for stream in list(self.streams):
            stream.runtime.notify()
        closes = [
            asyncio.ensure_future(ws.close(code=1001, message=b"emulator shutting down"))
            for ws in list(self.sockets)
        ]
        pending = closes + list(self.tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=_SHUTDOWN_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_SHUTDOWN_GRACE):
                await self.no_streams.wait()
        for stream in list(self.streams):
            if stream.request.transport is not None:
                stream.request.transport.abort()


def _start_position(request: web.Request, runtime: SessionRuntime) -> int:
    """The id after which this consumer starts; raises 409 when it cannot resume."""
    cursor = request.headers.get("Last-Event-ID", "").strip()
    if not cursor:
        if runtime.store.sse_replay:
            return max(runtime.stream_start, runtime.base)
        # Live only: what is produced from now on; a finished stream still ends.
        return max(runtime.last_id - 1, runtime.base) if runtime.ended else runtime.last_id
    if not cursor.isdigit():
        raise ServiceError(
            409, "resume_unavailable", f"Last-Event-ID {cursor!r} is not an event id of this stream"
        )
    ident = int(cursor)
    if ident > runtime.last_id:
        raise ServiceError(
            409,
            "resume_unavailable",
            f"Cannot resume after event {ident}: the newest event is {runtime.last_id}",
        )
    if ident < runtime.base:
        raise ServiceError(
            409,
            "resume_unavailable",
            f"Cannot resume after event {ident}: events up to {runtime.base} were evicted",
        )
    return ident


def add_realtime_routes(
    app: web.Application,
    store: LensStore,
    faults: Faults,
    ws_base: Callable[[web.Request], str],
) -> None:
    """Add the WebSocket and SSE routes (and their shutdown) to the Lens sub-app.

    Args:
        app: the Lens sub-application (mounted at ``/v0.5``).
        store: the Lens state.
        faults: the fault knobs.
        ws_base: ``ws://host:port/v0.5`` for a request (session endpoints).
    """
    realtime = _Realtime(store, faults, ws_base)
    app.router.add_get("/lens/sessions/consumer/{session_id}", realtime.consumer)
    # Only ids starting lsn-: /lens/sessions/info, /metadata ... stay REST routes.
    app.router.add_get(r"/lens/sessions/{session_id:lsn-[^/]+}", realtime.websocket)
    app.on_shutdown.append(realtime.shutdown)
