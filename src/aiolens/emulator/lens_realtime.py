"""The Lens realtime routes: the session WebSocket and the SSE consumer.

WebSocket (``/lens/sessions/{session_id}``, PROTOCOL §A.6): text and binary
JSON frames in, exactly one text reply per request, in order; nothing is
sent unprompted. An unknown or destroyed session answers every request with
``{"type": "error", "message": "Unknown session id: ..."}`` (the documented
error reply). After replying to ``session.destroy`` the server closes the
socket (1000).

SSE (``/lens/sessions/consumer/{session_id}``, §A.8): ``sse.stream.start``
(no id), then the session's events with ``id: N`` lines, heartbeats (no id)
when idle, and ``sse.stream.end`` when the input ends or the session is
destroyed. ``Last-Event-ID: N`` resumes strictly after event N; an id the log
does not hold answers 409 ``resume_unavailable``.

Faults (``emulator.faults``): ``reply_delay`` before each WebSocket reply;
``ws_drop_after`` aborts a WebSocket's TCP connection (no close frame) after
that many replies; ``sse_drop_after`` aborts an SSE connection after that
many events; ``malformed_after`` sends one malformed frame (bad JSON) after
that many messages on each connection.
"""

from __future__ import annotations

import asyncio
import secrets
import weakref
from typing import Any, Final

import msgspec
from aiohttp import WSMsgType, web

from aiolens.emulator._web import ServiceError
from aiolens.emulator.faults import Faults
from aiolens.emulator.lens_events import EventContext, handle_event
from aiolens.emulator.lens_runtime import runtime_for
from aiolens.emulator.lens_store import LensStore

__all__ = ["add_realtime_routes"]

_encoder: Final = msgspec.json.Encoder()
_BATCH: Final = 512
_MALFORMED_SSE: Final = b"event: message\ndata: {this is not json\n\n"


def _ws_base(request: web.Request) -> str:
    scheme = "wss" if request.secure else "ws"
    return f"{scheme}://{request.host}/v0.5"


class _Realtime:
    def __init__(self, store: LensStore, faults: Faults) -> None:
        self.store = store
        self.faults = faults
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.streams: set[asyncio.Event] = set()

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            protocols=("event-protocol-v1",), compress=False, max_msg_size=64 * 1024 * 1024
        )
        await ws.prepare(request)
        self.sockets.add(ws)
        session = self.store.sessions.get(request.match_info["session_id"])
        ctx = EventContext(self.store, _ws_base(request))
        if session is not None:
            session.start()
            session.num_active_connections += 1
        sent = 0
        faults = self.faults
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                reply = self._answer(ctx, session, msg.data, request)
                if faults.reply_delay:
                    await asyncio.sleep(faults.reply_delay)
                if faults.malformed_after is not None and sent == faults.malformed_after:
                    await ws.send_str("{this is not json")
                await ws.send_str(_encoder.encode(reply).decode())
                sent += 1
                if faults.ws_drop_after is not None and sent >= faults.ws_drop_after:
                    if request.transport is not None:
                        request.transport.abort()
                    break
                if session is not None and not session.active:
                    await ws.close()
                    break
        finally:
            if session is not None:
                session.num_active_connections -= 1
        return ws

    def _answer(
        self, ctx: EventContext, session: Any, raw: str | bytes, request: web.Request
    ) -> dict[str, Any]:
        try:
            message = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            return {"type": "error", "message": f"Malformed JSON: {exc}"}
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return {"type": "error", "message": "A message needs a string 'type'"}
        if session is None:
            return {
                "type": "error",
                "message": f"Unknown session id: {request.match_info['session_id']}",
            }
        return handle_event(ctx, session, message["type"], message.get("event_data"))

    async def consumer(self, request: web.Request) -> web.StreamResponse:
        session = self.store.session(request.match_info["session_id"])
        runtime = runtime_for(self.store, session)
        position = 0
        cursor = request.headers.get("Last-Event-ID", "").strip()
        if cursor:
            if not cursor.isdigit() or int(cursor) > len(runtime.frames):
                raise ServiceError(
                    409, "resume_unavailable", f"Cannot resume after event id {cursor!r}"
                )
            position = int(cursor)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        start = {
            "type": "sse.stream.start",
            "event_data": {"session_id": session.session_id, "reader_id": secrets.token_hex(8)},
        }
        await response.write(b"event: message\ndata: %s\n\n" % _encoder.encode(start))
        stopping = asyncio.Event()
        self.streams.add(stopping)
        sent = 0
        malformed_sent = False
        faults = self.faults
        try:
            while not stopping.is_set():
                changed = runtime.changed()
                frames = runtime.frames
                if position < len(frames):
                    batch = frames[position : position + _BATCH]
                    count = len(batch)
                    drop = faults.sse_drop_after
                    if drop is not None and sent + count >= drop:
                        await response.write(b"".join(batch[: max(0, drop - sent)]))
                        if request.transport is not None:
                            request.transport.abort()
                        return response
                    bad = faults.malformed_after
                    if bad is not None and not malformed_sent and sent + count > bad:
                        cut = bad - sent
                        batch = [*batch[:cut], _MALFORMED_SSE, *batch[cut:]]
                        malformed_sent = True
                    await response.write(b"".join(batch))
                    position += count
                    sent += count
                    if runtime.ended and position >= len(runtime.frames):
                        break
                    continue
                if runtime.ended:
                    break
                try:
                    async with asyncio.timeout(self.store.sse_heartbeat_interval):
                        await _first(changed, stopping)
                except TimeoutError:
                    await response.write(_heartbeat(session, position))
            await response.write_eof()
        except ConnectionResetError:  # the consumer went away (aiohttp's reset error too)
            return response
        finally:
            self.streams.discard(stopping)
        return response

    async def shutdown(self, app: web.Application) -> None:
        for stopping in list(self.streams):
            stopping.set()
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"emulator shutting down")


async def _first(a: asyncio.Event, b: asyncio.Event) -> None:
    waiters = {asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())}
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _heartbeat(session: Any, position: int) -> bytes:
    event = {
        "type": "sse.stream.heartbeat",
        "event_data": {
            "session_id": session.session_id,
            "session_status": session.status,
            "num_messages": position,
            "num_bytes": 0,
            "message_timeout": 5.0,
        },
    }
    return b"event: message\ndata: %s\n\n" % _encoder.encode(event)


def add_realtime_routes(app: web.Application, store: LensStore, faults: Faults) -> None:
    """Add the WebSocket and SSE routes to the Lens sub-application."""
    realtime = _Realtime(store, faults)
    app.router.add_get("/lens/sessions/consumer/{session_id}", realtime.consumer)
    app.router.add_get(r"/lens/sessions/{session_id:lsn-[^/]+}", realtime.websocket)
    app.on_shutdown.append(realtime.shutdown)
