"""LensSession under faults: reconnect hooks, refused reconnects, close codes, cancel on close.

Everything runs against the emulator (or a crafted aiohttp server) over loopback.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aiolens import AsyncArchetypeClient, ConnectionLostError
from aiolens.archetype.events import InferenceResult, SSEStreamEnd, SSEStreamHeartbeat
from aiolens.archetype.session import LensSession, Validation
from aiolens.emulator import Emulator
from tests.archetype.test_session import CSV_ROWS, IMAGE_QA, csv_lens, start_csv

VALID = '{"type": "session.validate.response", "event_data": {"is_valid": true}}'


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds (the emulator's state has no events to wait on)."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.005)


# ---- the WebSocket ---------------------------------------------------------------------


async def test_on_reconnect_hook_can_make_requests(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    # The hook used to be awaited by the reader task, so a request made in it never
    # got its reply (the reader was busy awaiting the hook) and timed out.
    answers: asyncio.Queue[Validation | BaseException] = asyncio.Queue()

    async def on_reconnect(session: LensSession) -> None:
        try:
            await answers.put(await session.validate())
        except Exception as exc:
            await answers.put(exc)

    async with client.session(IMAGE_QA, on_reconnect=on_reconnect, request_timeout=1) as session:
        emulator.faults.ws_drop_after = 1
        await session.validate()
        emulator.faults.ws_drop_after = None
        answer = await answers.get()
        assert isinstance(answer, Validation) and answer.is_valid
        assert session.reconnects == 1


async def test_a_reconnect_answered_503_with_retry_after_is_tried_again(
    client: AsyncArchetypeClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiolens")
    async with client.session(IMAGE_QA) as session:
        # The next request to the session's WebSocket path is the reconnect handshake.
        fault = emulator.faults.fail_next(
            503, path=f"/sessions/{session.session_id}", retry_after="0.03"
        )
        emulator.faults.ws_drop_after = 1
        await session.validate()
        emulator.faults.ws_drop_after = None
        await until(lambda: fault.count == 0)  # the first reconnect attempt was refused
        assert (await session.validate()).is_valid  # waits for the second attempt
        assert session.reconnects == 1
    assert "reconnect refused for now" in caplog.text
    assert "reconnecting in 0.03s (attempt 2)" in caplog.text


async def test_a_reconnect_answered_401_ends_the_session_channel(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    async with client.session(IMAGE_QA) as session:
        fault = emulator.faults.fail_next(401, path=f"/sessions/{session.session_id}")
        emulator.faults.ws_drop_after = 1
        await session.validate()
        emulator.faults.ws_drop_after = None
        await until(lambda: fault.count == 0)  # the reconnect handshake reached the server
        with pytest.raises(ConnectionLostError):
            await session.validate()  # the channel ended: no reconnect to wait for
        assert session.reconnects == 0


class ClosingServer:
    """Answers ``session.validate`` on every connection; on the first one, the second
    request is answered with a close frame of ``code`` instead of a reply."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.connections = 0

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        first = self.connections == 1
        answered = 0
        async for _msg in ws:
            if first and answered == 1:
                await ws.close(code=self.code, message=b"bye")
                break
            await ws.send_str(VALID)
            answered += 1
        return ws


@pytest.fixture
async def lens_session_to(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[ClosingServer, LensSession, asyncio.Event]]:
    server = ClosingServer(request.param)
    app = web.Application()
    app.router.add_get("/ws", server.handler)
    reconnected = asyncio.Event()

    async def on_reconnect(_session: LensSession) -> None:
        reconnected.set()

    async with TestServer(app, host="127.0.0.1") as test_server:
        client = AsyncArchetypeClient("k" * 16, str(test_server.make_url("")))
        url = str(test_server.make_url("/ws")).replace("http", "ws", 1)
        session = LensSession(client, "lsn-x", url, on_reconnect=on_reconnect)
        await session.connect()
        try:
            yield server, session, reconnected
        finally:
            await session.aclose()
            await client.aclose()


@pytest.mark.parametrize("lens_session_to", [1000, 1008, 4000], indirect=True)
async def test_an_unrecoverable_close_fails_pending_requests_and_does_not_reconnect(
    lens_session_to: tuple[ClosingServer, LensSession, asyncio.Event],
) -> None:
    server, session, _ = lens_session_to
    assert (await session.validate()).is_valid
    with pytest.raises(ConnectionLostError) as pending:
        await session.validate()
    assert pending.value.close_code == server.code
    assert "unknown" in str(pending.value)
    with pytest.raises(ConnectionLostError):
        await session.validate()  # the channel is finished: fails at once
    assert server.connections == 1 and session.reconnects == 0


@pytest.mark.parametrize("lens_session_to", [1001, 1011, 1012, 1013], indirect=True)
async def test_a_recoverable_close_reconnects(
    lens_session_to: tuple[ClosingServer, LensSession, asyncio.Event],
) -> None:
    server, session, reconnected = lens_session_to
    assert (await session.validate()).is_valid
    with pytest.raises(ConnectionLostError) as pending:
        await session.validate()
    assert pending.value.close_code == server.code
    await reconnected.wait()
    assert (await session.validate()).is_valid
    assert server.connections == 2 and session.reconnects == 1


async def test_heartbeat_is_sent_after_idle_time(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    async with client.session(IMAGE_QA, heartbeat_interval=0.02) as session:
        record = emulator.lens.sessions[session.session_id]
        before = record.num_events
        await until(lambda: record.num_events >= before + 2)  # two heartbeats, no request
        assert session.unmatched_replies == 0


async def test_a_malformed_frame_is_counted_and_the_socket_goes_on(
    client: AsyncArchetypeClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    async with client.session(IMAGE_QA) as session:
        emulator.faults.malformed_after = 1
        assert (await session.validate()).is_valid
        assert (await session.query(focus="after the bad frame"))["focus"] == "after the bad frame"
        assert session.malformed_replies == 1
        assert session.unmatched_replies == 0
    assert "malformed frame skipped" in caplog.text


# ---- closing ---------------------------------------------------------------------------


async def test_closing_cancels_a_running_reconnect_hook(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    started = asyncio.Event()
    hooks: list[asyncio.Task[object] | None] = []

    async def on_reconnect(_session: LensSession) -> None:
        hooks.append(asyncio.current_task())
        started.set()
        await asyncio.sleep(30)

    async with client.session(IMAGE_QA, on_reconnect=on_reconnect) as session:
        emulator.faults.ws_drop_after = 1
        await session.validate()
        emulator.faults.ws_drop_after = None
        await started.wait()
    hook = hooks[0]
    assert hook is not None and hook.cancelled()


# ---- the event stream ------------------------------------------------------------------


async def test_sse_connect_answered_503_is_retried_after_retry_after(
    client: AsyncArchetypeClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiolens")
    lens_id = await csv_lens(client)
    async with client.session(lens_id) as session:
        fault = emulator.faults.fail_next(
            503, count=2, path=f"/consumer/{session.session_id}", retry_after="0.03"
        )
        events = session.events()
        events.start()
        await start_csv(session)
        received = [event async for event in events]
    assert fault.count == 0
    assert len([e for e in received if isinstance(e, InferenceResult)]) == CSV_ROWS // 5
    assert isinstance(received[-1], SSEStreamEnd)
    assert caplog.text.count("(InternalServerError); resuming after id '' in 0.03s") == 2


async def test_sse_resume_answered_429_is_retried_without_losing_or_repeating(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    lens_id = await csv_lens(client)
    async with client.session(lens_id) as session:
        events = session.events()
        await events.__anext__()  # sse.stream.start: the first connection is open
        fault = emulator.faults.fail_next(
            429, path=f"/consumer/{session.session_id}", retry_after="0"
        )
        emulator.faults.sse_drop_after = 4
        await start_csv(session)
        received = [event async for event in events]
        emulator.faults.sse_drop_after = None
    assert fault.count == 0 and events.reconnects >= 2
    ids = [e.query_id for e in received if isinstance(e, InferenceResult)]
    assert len(ids) == CSV_ROWS // 5 and len(set(ids)) == len(ids)


async def test_sse_that_keeps_answering_503_ends_with_that_error(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    from aiolens import InternalServerError

    async with client.session(IMAGE_QA) as session:
        emulator.faults.fail_next(503, count=3, path="/consumer/", retry_after="0")
        events = session.events(max_reconnects=2)
        with pytest.raises(InternalServerError):
            await events.__anext__()


async def test_heartbeats_are_yielded_only_when_asked_for() -> None:
    async with (
        Emulator(event_interval=0.02, sse_heartbeat_interval=0.005) as emu,
        AsyncArchetypeClient(emu.api_key, emu.lens_url) as client,
    ):
        lens_id = await csv_lens(client)
        async with client.session(lens_id) as session:
            quiet = session.events()
            chatty = session.events(include_heartbeats=True)
            await quiet.__anext__()
            await chatty.__anext__()  # both connected before the input runs
            await start_csv(session)
            got_quiet = [event async for event in quiet]
            got_chatty = [event async for event in chatty]
    assert not any(isinstance(e, SSEStreamHeartbeat) for e in got_quiet)
    assert any(isinstance(e, SSEStreamHeartbeat) for e in got_chatty)
    results = [e for e in got_quiet if isinstance(e, InferenceResult)]
    assert results == [e for e in got_chatty if isinstance(e, InferenceResult)]


async def test_a_request_refused_by_a_closing_socket_leaves_nothing_pending(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The server answers and sends its close frame in one write: the socket is closing
    # before the reader notices, so the next request fails in send(). Its entry used to
    # stay registered, and failing it later logged "Future exception was never
    # retrieved".
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _msg in ws:
            reply = VALID.encode()
            assert request.transport is not None and len(reply) < 126
            close = b"\x88\x02" + (1000).to_bytes(2, "big")
            request.transport.write(bytes([0x81, len(reply)]) + reply + close)
            break
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        client = AsyncArchetypeClient("k" * 16, str(server.make_url("")))
        url = str(server.make_url("/ws")).replace("http", "ws", 1)
        session = LensSession(client, "lsn-x", url)
        await session.connect()
        try:
            assert (await session.validate()).is_valid
            with pytest.raises(ConnectionLostError):
                await session.validate()
        finally:
            await session.aclose()
            await client.aclose()
    gc.collect()
    assert "never retrieved" not in caplog.text


async def test_an_on_reconnect_hook_may_close_the_session(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    closed = asyncio.Event()

    async def on_reconnect(session: LensSession) -> None:
        await session.aclose()
        closed.set()

    async with client.session(IMAGE_QA, on_reconnect=on_reconnect) as session:
        emulator.faults.ws_drop_after = 1
        await session.validate()
        emulator.faults.ws_drop_after = None
        await asyncio.wait_for(closed.wait(), 10)  # a deadlock would never set it
        assert session.closed
    assert emulator.lens.sessions[session.session_id].status == "SESSION_STATUS_DESTROYED"
