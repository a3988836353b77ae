"""The WebSocket paths against a hostile server: storms, garbage, oversized requests, late replies.

Each scenario ends with a typed error within its hang guard, leaves no session on the
emulator, and leaks no task, file descriptor or warning (the ``leaks`` fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from aiolens import AsyncArchetypeClient, AsyncKynasmithClient
from aiolens.archetype.session import LensSession
from aiolens.emulator import Emulator
from aiolens.errors import (
    APITimeoutError,
    ConnectionLostError,
    MessageTooLargeError,
    ProtocolError,
)
from aiolens.kynasmith.synthetic import generate_squats
from tests.archetype.test_session import IMAGE_QA
from tests.faults.conftest import LeakGuard, sessions_left
from tests.faults.hostile import HostileServer, abort, stall, ws_close, ws_script
from tests.kynasmith.test_client import squat_spec

LENS_WS = r"/v0.5/lens/sessions/lsn-[^/]+"
KYNA_WS = r"/api/detection/sessions/[^/]+/stream"
HANG_GUARD = 60  # seconds: generous; a scenario that hangs fails here instead of forever


async def gave_up(session: LensSession) -> ConnectionLostError:
    """Make requests until the session's socket gives up for good; that final error."""
    while not session._channel.closed:
        with contextlib.suppress(ConnectionLostError):
            await session.validate()
    with pytest.raises(ConnectionLostError) as err:
        await session.validate()
    return err.value


# ---- reconnect storms ----------------------------------------------------------------------


@pytest.mark.parametrize("code", [1001, 1006, 1011])
async def test_a_server_that_accepts_and_closes_at_once_meets_backoff_and_a_limit(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
    code: int,
) -> None:
    # It used to get ~4.5 reconnects per second forever: each accepted handshake reset the
    # attempt count, so neither backoff nor max_reconnects ever applied.
    hostile.on("GET", LENS_WS, ws_close(code), name="ws")
    async with asyncio.timeout(HANG_GUARD):
        async with lens.session(IMAGE_QA, request_timeout=5) as session:
            error = await gave_up(session)
            assert "gave up reconnecting after 5 attempt(s)" in str(error)
            assert error.__cause__ is not None
            assert session.reconnects <= 5
    assert hostile.hits["ws"] == 6  # the first connection and five failed attempts
    assert sessions_left(emulator) == 0


async def test_a_detection_stream_that_accepts_and_closes_at_once_ends_typed(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    kyna: AsyncKynasmithClient,
) -> None:
    spec = await squat_spec(kyna)
    hostile.on("GET", KYNA_WS, ws_close(1011), name="ws")
    frames = generate_squats(1)
    async with asyncio.timeout(HANG_GUARD):
        async with kyna.detection_session(movespec_id=spec) as det:
            with pytest.raises(ConnectionLostError):
                await det.send(frames[:15])
            # The events iterator ends with the reason, not silently.
            with pytest.raises(ConnectionLostError) as err:
                async for _ in det.events():
                    pass
            assert err.value.__cause__ is not None
    assert hostile.hits["ws"] == 6
    assert sessions_left(emulator) == 0


# ---- what the server sends -------------------------------------------------------------------


def lens_replies(
    answer: dict[str, Any], *, delay: float = 0.0
) -> web.StreamResponse | Any:  # a ws_script body
    """A Lens socket that answers each request type from ``answer`` (raw text or a dict)."""

    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            kind = json.loads(message.data)["type"]
            reply = answer.get(kind, {"type": f"{kind}.response", "event_data": {}})
            if delay:
                await asyncio.sleep(delay)
            await ws.send_str(reply if isinstance(reply, str) else json.dumps(reply))

    return script


async def test_replies_of_the_wrong_shape_are_typed_counted_and_the_socket_goes_on(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    answers = {
        "session.status": {"session_id": 5, "session_status": []},
        "session.validate": {"type": "session.validate.response", "event_data": {"is_valid": "y"}},
        "session.get": nested,  # RecursionError in the decoder
        "session.read": "not json at all",
    }
    hostile.on("GET", LENS_WS, ws_script(lens_replies(answers)), name="ws")
    async with asyncio.timeout(HANG_GUARD):
        async with lens.session(IMAGE_QA, request_timeout=1) as session:
            with pytest.raises(ProtocolError) as status_error:
                await session.status()
            assert status_error.value.raw == {"session_id": 5, "session_status": []}
            with pytest.raises(ProtocolError) as validate_error:
                await session.validate()
            assert validate_error.value.raw == {"is_valid": "y"}
            for request in ("session.get", "session.read"):  # skipped: their callers time out
                with pytest.raises(APITimeoutError):
                    await session.request(request, {})
            assert session.malformed_replies == 4
            assert await session.modify(focus="x") == {}  # the socket still works
            assert session.reconnects == 0
    assert sessions_left(emulator) == 0


async def test_an_oversized_request_is_refused_locally_and_the_socket_stays_up(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
) -> None:
    # The server takes 16 MiB at most and closes with 1009 beyond: every pending request
    # used to fail with the one that was too large, and the socket stayed down.
    replies = lens_replies({}, delay=0.2)
    hostile.on("GET", LENS_WS, ws_script(replies, max_msg_size=16 * 1024 * 1024), name="ws")
    async with asyncio.timeout(HANG_GUARD):
        async with lens.session(IMAGE_QA, request_timeout=10) as session:
            pending = asyncio.ensure_future(session.get())
            await asyncio.sleep(0.05)
            with pytest.raises(MessageTooLargeError) as err:
                await session.query(focus="x" * (16 * 1024 * 1024))
            assert err.value.size > err.value.limit == 16 * 1024 * 1024
            assert await pending == {}
            assert await session.get() == {}
            assert session.reconnects == 0
    assert hostile.hits["ws"] == 1
    assert sessions_left(emulator) == 0


async def test_a_reply_after_the_timeout_goes_to_nobody_and_later_requests_get_theirs(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
) -> None:
    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        count = 0
        async for message in ws:
            kind = json.loads(message.data)["type"]
            count += 1
            if count == 1:
                await asyncio.sleep(0.5)  # after the client gave up
            await ws.send_str(json.dumps({"type": f"{kind}.response", "event_data": count}))

    hostile.on("GET", LENS_WS, ws_script(script), name="ws")
    async with asyncio.timeout(HANG_GUARD):
        async with lens.session(IMAGE_QA) as session:
            with pytest.raises(APITimeoutError):
                await session.request("session.get", {}, timeout=0.1)
            assert await session.request("session.get", {}, timeout=10) == 2
    assert sessions_left(emulator) == 0


async def test_garbage_bytes_on_the_socket_end_pending_requests_typed(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
) -> None:
    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        await ws.receive()  # the first request
        assert request.transport is not None
        request.transport.write(b"\xff\x7f\x00garbage that is no websocket frame")
        await asyncio.sleep(0.2)
        abort(request)

    hostile.on("GET", LENS_WS, ws_script(script), name="ws")
    async with asyncio.timeout(HANG_GUARD):
        async with lens.session(IMAGE_QA, request_timeout=5, reconnect=False) as session:
            with pytest.raises(ConnectionLostError):
                await session.validate()
            with pytest.raises(ConnectionLostError):
                await session.validate()
    assert sessions_left(emulator) == 0


async def test_a_handshake_that_is_never_answered_times_out(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
) -> None:
    hostile.on("GET", LENS_WS, stall, name="ws")
    async with asyncio.timeout(HANG_GUARD):
        with pytest.raises(APITimeoutError):
            async with lens.session(IMAGE_QA, open_timeout=0.3):
                pass
    assert sessions_left(emulator) == 0


async def test_an_oversized_frame_batch_is_refused_locally_and_numbering_goes_on(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    kyna: AsyncKynasmithClient,
) -> None:
    spec = await squat_spec(kyna)
    frames = generate_squats(1)
    async with asyncio.timeout(HANG_GUARD):
        async with kyna.detection_session(movespec_id=spec, max_message_size=20_000) as det:
            with pytest.raises(MessageTooLargeError):
                await det.send(frames[:15])
            ack = await det.send(frames[:1])
            assert ack.batch_seq == 1 and ack.accepted_frames_total == 1
            ack = await det.send(frames[1:2])
            assert ack.batch_seq == 2 and ack.accepted_frames_total == 2
            assert det.reconnects == 0
    assert sessions_left(emulator) == 0


async def test_a_recovery_cancelled_from_outside_fails_waiting_requests_at_once(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
) -> None:
    """A connected session runs no task that could be cancelled from outside (e.g. by a
    framework cancelling every task but its own); while it reconnects, cancelling its
    recovery task fails the request waiting for the reconnect at once, and later ones."""
    connections = 0
    reconnecting = asyncio.Event()

    async def dropped(ws: web.WebSocketResponse, request: web.Request) -> None:
        await ws.receive()  # the first request
        abort(request)  # 1006: the session reconnects

    first = ws_script(dropped)

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal connections
        connections += 1
        if connections > 1:
            reconnecting.set()
            await asyncio.sleep(HANG_GUARD)  # the reconnect's handshake never completes
        return await first(request)

    def channel_tasks() -> list[asyncio.Task[object]]:
        names = ("-reader", "-recovery")
        return [t for t in asyncio.all_tasks() if t.get_name().endswith(names)]

    hostile.on("GET", LENS_WS, handler, name="ws")
    async with asyncio.timeout(HANG_GUARD):
        async with lens.session(IMAGE_QA, request_timeout=30) as session:
            assert channel_tasks() == []  # nothing to cancel while connected
            with pytest.raises(ConnectionLostError):
                await session.validate()  # lost with its connection
            waiting = asyncio.ensure_future(session.validate())
            await reconnecting.wait()  # the recovery task is in the reconnect's handshake
            (recovery,) = channel_tasks()
            recovery.cancel()
            with pytest.raises(ConnectionLostError, match="recovery task stopped") as err:
                await waiting  # at once, not after request_timeout
            assert err.value.close_code is None
            with pytest.raises(ConnectionLostError, match="recovery task stopped"):
                await session.validate()
    assert sessions_left(emulator) == 0


async def test_undecodable_detection_messages_are_counted_and_the_stream_goes_on(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    kyna: AsyncKynasmithClient,
) -> None:
    nested = "[" * 5000 + "]" * 5000

    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        await ws.send_str(nested)  # RecursionError in the decoder
        await ws.send_str("{not json")
        await ws.send_str('{"type": "event_batch", "batch_seq": 1, "events": [' + nested + "]}")
        await ws.send_str('{"type": "ping"}')
        async for _ in ws:  # until the client closes
            pass

    spec = await squat_spec(kyna)
    hostile.on("GET", KYNA_WS, ws_script(script), name="ws")
    async with asyncio.timeout(HANG_GUARD):
        async with kyna.detection_session(movespec_id=spec) as det:
            while det.malformed_messages < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await det.ping()  # the socket still works
            assert det.reconnects == 0
    assert sessions_left(emulator) == 0


async def test_a_rest_answer_after_the_timeout_is_a_typed_timeout(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
) -> None:
    hostile.on("GET", r"/v0.5/lens/info", stall, name="info")
    async with asyncio.timeout(HANG_GUARD):
        with pytest.raises(APITimeoutError) as err:
            await lens.with_options(timeout=0.2, max_retries=1).lenses.info()
    assert "timed out: no answer" in str(err.value)
    assert hostile.hits["info"] == 2


async def test_a_ping_the_client_cannot_answer_leaves_no_unretrieved_task_error(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    kyna: AsyncKynasmithClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        await ws.send_str('{"type": "ping"}')
        abort(request)  # the pong has nowhere to go

    spec = await squat_spec(kyna)
    hostile.on("GET", KYNA_WS, ws_script(script), name="ws")
    async with asyncio.timeout(HANG_GUARD):
        async with kyna.detection_session(movespec_id=spec, reconnect=False) as det:
            with pytest.raises(ConnectionLostError):
                async for _ in det.events():
                    pass
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text
    assert sessions_left(emulator) == 0


async def test_a_server_that_freezes_without_pongs_is_dropped_typed(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
) -> None:
    async def frozen(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)  # answers no ping, reads nothing
        await ws.prepare(request)
        await asyncio.Event().wait()
        return ws

    hostile.on("GET", LENS_WS, frozen, name="ws")
    async with asyncio.timeout(HANG_GUARD):
        async with lens.session(
            IMAGE_QA, ping_interval=0.2, request_timeout=30, reconnect=False
        ) as session:
            # The keepalive notices (then websockets waits 10 s for a closing handshake
            # that cannot come); the pending request fails typed, before its timeout.
            with pytest.raises(ConnectionLostError) as err:
                await session.validate()
            assert err.value.close_code in (1006, 1011)
    assert sessions_left(emulator) == 0
