"""The Kynasmith realtime socket: ``GET /api/detection/sessions/{id}/stream``.

Attach with the session's ``runtime_token`` (query parameter, or a bearer
header); a bad or expired token gets an ``error`` message and close code
1008. On attach the server sends ``session_update``. Each ``frame_batch`` is
answered with an ``event_batch`` (when the MoveSpec produced events) and a
``frame_ack``; frames that are malformed or break the contract, or whose
``frame_seq`` does not increase, are listed in ``rejected_frame_indexes``. A
batch re-sent after a reconnect gets its stored answers again and is never
counted twice. ``finalize`` → ``session_update(finalizing)`` then
``session_done(completed)``; ``cancel`` → ``session_done(cancelled)``; the
socket then closes with 1000. ``ping`` is answered with ``pong``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import msgspec
from aiohttp import WSMsgType, web

from aiolens.emulator.faults import Faults
from aiolens.emulator.kynasmith_auth import state_of
from aiolens.emulator.kynasmith_store import DetectionSession, now_iso
from aiolens.emulator.kynasmith_wire import (
    TERMINAL,
    CancelMessage,
    CheckedPoseFrame,
    DecodedFrameBatch,
    DetectionEvent,
    ErrorBody,
    ErrorMessage,
    EventBatchMessage,
    FinalizeMessage,
    FrameAckMessage,
    FrameBatchMessage,
    PingMessage,
    PongMessage,
    SessionDoneMessage,
    SessionUpdateMessage,
    decode_client_message,
    decode_frame,
    encode,
    frame_is_valid,
)
from aiolens.emulator.wire_tap import WireItem, emit, tapped

__all__ = ["FAULTS_KEY", "announce", "finish", "realtime_routes"]

FAULTS_KEY: Final = web.AppKey("kynasmith_faults", Faults)
STREAM_ROUTE: Final = "/api/detection/sessions/{session_id}/stream"

realtime_routes: web.RouteTableDef = web.RouteTableDef()


async def send(ws: web.WebSocketResponse, message: bytes) -> None:
    """Send one encoded message (and show it to the wire taps)."""
    if tapped():
        emit(WireItem("kynasmith", "realtime", STREAM_ROUTE, 0, message))
    await ws.send_str(message.decode())


def error_message(code: str, message: str, *, retryable: bool = False) -> bytes:
    """An encoded ``error`` message."""
    return encode(ErrorMessage(ErrorBody(code, message, retryable, {})))


def update_message(session: DetectionSession) -> bytes:
    """An encoded ``session_update`` with the session's status."""
    return encode(
        SessionUpdateMessage(
            session.session_id,
            session.status,
            session.accepted_frames_total,
            session.terminal_outcome,
        )
    )


@realtime_routes.get("/detection/sessions/{session_id}/stream")
async def stream(request: web.Request) -> web.WebSocketResponse:
    """Serve one attached socket until it closes or the session ends."""
    state = state_of(request)
    faults: Faults = request.app[FAULTS_KEY]
    session = state.sessions.get(request.match_info["session_id"])
    supplied = request.query.get("runtime_token") or request.headers.get(
        "Authorization", ""
    ).removeprefix("Bearer ")
    ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024 * 1024)
    await ws.prepare(request)
    if session is None or not secrets.compare_digest(supplied, session.runtime_token):
        await send(ws, error_message("access_token_invalid", "Bad runtime token or session"))
        await ws.close(code=1008)
        return ws
    if session.runtime_expires_at <= time.monotonic():
        await send(ws, error_message("access_token_expired", "The runtime token expired"))
        await ws.close(code=1008)
        return ws
    sent = 0

    async def reply(message: bytes) -> bool:
        nonlocal sent
        await send(ws, message)
        sent += 1
        if faults.ws_drop_after is not None and sent >= faults.ws_drop_after:
            if request.transport is not None:
                request.transport.abort()
            return False
        return True

    session.sockets.add(ws)
    try:
        await _serve_socket(ws, session, faults, reply)
    finally:
        session.sockets.discard(ws)
    return ws


async def _serve_socket(
    ws: web.WebSocketResponse,
    session: DetectionSession,
    faults: Faults,
    reply: Callable[[bytes], Awaitable[bool]],
) -> None:
    """Answer one attached socket's messages until it closes or the session ends."""
    await reply(update_message(session))
    async for msg in ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        try:
            message = decode_client_message(msg.data)
        except msgspec.DecodeError as exc:
            if not await reply(error_message("validation_error", f"Malformed message: {exc}")):
                break
            continue
        if faults.reply_delay:
            await asyncio.sleep(faults.reply_delay)
        replies: list[bytes]
        if isinstance(message, DecodedFrameBatch | FrameBatchMessage):
            replies = _batch(session, message)
        elif isinstance(message, PingMessage):
            replies = [encode(PongMessage())]
        elif isinstance(message, PongMessage):
            replies = []
        else:
            assert isinstance(message, FinalizeMessage | CancelMessage)
            done = "completed" if isinstance(message, FinalizeMessage) else "cancelled"
            replies = finish(session, done)
        fail_after = faults.detection_fail_after
        if (
            fail_after is not None
            and session.accepted_frames_total >= fail_after
            and session.status not in TERMINAL
        ):
            failure = ErrorBody(
                "internal_error", "Injected fault: the detection pipeline failed", False, {}
            )
            replies = [*replies, encode(ErrorMessage(failure)), *finish(session, "failed", failure)]
        alive = True
        for item in replies:
            if not (alive := await reply(item)):
                break
        if not alive:
            break
        if session.status in TERMINAL:
            await ws.close(code=1000)
            break


def _batch(session: DetectionSession, batch: DecodedFrameBatch | FrameBatchMessage) -> list[bytes]:
    """Process one batch; frames of the wrong shape or breaking the contract are rejected."""
    batch_seq = batch.batch_seq
    if session.status in TERMINAL:
        return [error_message("session_terminal", f"Session is {session.status}")]
    if batch_seq in session.replies:  # re-sent after a reconnect: replay, never recount
        return session.replies[batch_seq]
    if batch_seq < 1 or batch_seq <= session.last_batch_seq:
        return [error_message("validation_error", f"batch_seq {batch_seq} does not increase")]
    replies: list[bytes] = []
    if session.status == "created":
        session.status = "streaming"
        session.started_at = now_iso()
        replies.append(update_message(session))
    session.last_batch_seq = batch_seq
    rejected: list[int] = []
    events: list[DetectionEvent] = []
    assert session.detector is not None
    frames: Sequence[CheckedPoseFrame | msgspec.Raw] = batch.frames
    for index, raw in enumerate(frames):
        frame = raw if isinstance(raw, CheckedPoseFrame) else decode_frame(raw)
        if frame is None or frame.frame_seq <= session.last_frame_seq or not frame_is_valid(frame):
            rejected.append(index)
            continue
        session.last_frame_seq = frame.frame_seq
        session.accepted_frames_total += 1
        events.extend(session.detector.process(frame))
    stored: list[bytes] = []
    if events:
        stored.append(encode(EventBatchMessage(batch_seq, events)))
    stored.append(
        encode(
            FrameAckMessage(
                batch_seq,
                len(batch.frames) - len(rejected),
                session.accepted_frames_total,
                rejected,
            )
        )
    )
    session.replies[batch_seq] = stored
    return replies + stored


def finish(session: DetectionSession, status: str, error: ErrorBody | None = None) -> list[bytes]:
    """End the session (``completed`` passes through ``finalizing``); the messages to send."""
    replies: list[bytes] = []
    if session.status not in TERMINAL and status == "completed":
        session.status = "finalizing"
        replies.append(update_message(session))
    session.end(status, None if error is None else (error.code, error.message))
    replies.append(
        encode(
            SessionDoneMessage(
                session.session_id,
                session.status,
                session.accepted_frames_total,
                session.terminal_outcome,
                error,
            )
        )
    )
    return replies


async def announce(session: DetectionSession, replies: list[bytes]) -> None:
    """Tell the sockets attached to a session that REST ended it, then close them."""
    for ws in list(session.sockets):
        try:
            for item in replies:
                await send(ws, item)
            await ws.close(code=1000)
        except (ConnectionError, RuntimeError):  # it is closing already
            pass
