"""LensSession against the real emulator over loopback: correlator, cancel, loss, SSE."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aiolens import (
    APITimeoutError,
    AsyncArchetypeClient,
    ConnectionLostError,
    EventError,
    QueryTimeoutError,
)
from aiolens.archetype.events import InferenceResult, SSEStreamEnd, SSEStreamStart
from aiolens.emulator import Emulator

IMAGE_QA = "lns-fd669361822b07e2-237ab3ffd79199b0"  # has a model-query processor
CAMERA = "lns-fd669361822b07e2-bc608aa3fdf8b4f9"

CSV_ROWS = 60


def sensor_csv(rows: int = CSV_ROWS) -> bytes:
    lines = ["timestamp,ax,ay"]
    for i in range(rows):
        lines.append(f"{i},{(i % 7) * 0.1:.2f},{(i % 5) * 0.2:.2f}")
    return ("\n".join(lines) + "\n").encode()


async def csv_lens(client: AsyncArchetypeClient, *, sse: bool = True) -> str:
    await client.files.upload(sensor_csv(), filename="sensor.csv")
    config = {"model_pipeline": [{"processor_name": "lens_sensor_logs_processor"}]}
    lens = await client.lenses.register(config, lens_name="csv describer")
    return lens.lens_id


async def start_csv(session, *, sse: bool = True) -> None:  # type: ignore[no-untyped-def]
    if sse:
        await session.set_output_stream("server_sent_events_writer")
    await session.set_input_stream(
        "csv_file_reader", file_id="sensor.csv", window_size=5, step_size=5
    )


async def test_pipelined_requests_from_many_tasks_get_their_own_replies(
    client: AsyncArchetypeClient,
) -> None:
    async with client.session(IMAGE_QA, max_in_flight=32) as session:

        async def ask(i: int) -> None:
            reply = await session.query(focus=f"question {i}")
            assert reply["focus"] == f"question {i}"

        async def status() -> None:
            info = await session.status()
            assert info.session_id == session.session_id

        async def validate() -> None:
            assert (await session.validate()).is_valid

        jobs = [ask(i) for i in range(150)] + [status() for _ in range(25)]
        jobs += [validate() for _ in range(25)]
        await asyncio.gather(*jobs)
        assert session.unmatched_replies == 0


async def test_cancel_one_request_keeps_socket_usable(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    async with client.session(IMAGE_QA) as session:
        emulator.faults.reply_delay = 0.2
        first = asyncio.create_task(session.query(focus="abandoned"))
        await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        # The abandoned reply arrives first; it must not be handed to this caller.
        reply = await session.query(focus="kept")
        assert reply["focus"] == "kept"
        emulator.faults.reply_delay = 0.0
        assert (await session.validate()).is_valid


async def test_request_timeout_is_typed_and_late_reply_dropped(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    async with client.session(IMAGE_QA) as session:
        emulator.faults.reply_delay = 0.3
        with pytest.raises(APITimeoutError):
            await session.query(focus="slow", timeout=0.05)
        emulator.faults.reply_delay = 0.0
        assert (await session.query(focus="next"))["focus"] == "next"


async def test_connection_loss_fails_every_pending_request_then_reconnects(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    reconnected = asyncio.Event()

    async def on_reconnect(_session: object) -> None:
        reconnected.set()

    async with client.session(IMAGE_QA, on_reconnect=on_reconnect) as session:
        emulator.faults.reply_delay = 0.05
        emulator.faults.ws_drop_after = 1
        results = await asyncio.gather(
            *(session.query(focus=str(i)) for i in range(10)), return_exceptions=True
        )
        lost = [r for r in results if isinstance(r, ConnectionLostError)]
        answered = [r for r in results if isinstance(r, dict)]
        assert len(answered) == 1 and len(lost) == 9
        assert all("unknown" in str(e) for e in lost)
        emulator.faults.ws_drop_after = None
        emulator.faults.reply_delay = 0.0
        await asyncio.wait_for(reconnected.wait(), 5)
        assert (await session.validate()).is_valid
        assert session.reconnects == 1


async def test_error_reply_and_query_timeout_are_typed(client: AsyncArchetypeClient) -> None:
    async with client.session(CAMERA) as session:
        with pytest.raises(QueryTimeoutError):
            await session.query(focus="what is this?")
        with pytest.raises(EventError) as err:
            await session.request("no.such.event", {})
        assert err.value.event_type == "no.such.event"
        assert (await session.validate()).is_valid  # still usable


async def test_session_destroyed_on_exit_after_exception(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    with pytest.raises(RuntimeError):
        async with client.session(IMAGE_QA) as session:
            raise RuntimeError("boom")
    assert emulator.lens.sessions[session.session_id].status == "SESSION_STATUS_DESTROYED"


@pytest.mark.parametrize("cancels", [1, 2])
async def test_session_destroyed_on_exit_after_cancellation(
    client: AsyncArchetypeClient, emulator: Emulator, cancels: int
) -> None:
    # With two, the second cancel lands while the destroy call is in flight: anyio's
    # shield does not stop asyncio's own Task.cancel(), and used to let it abort the
    # destroy and leave the session running.
    entered = asyncio.Event()
    ids: list[str] = []

    async def body() -> None:
        async with client.session(IMAGE_QA) as session:
            ids.append(session.session_id)
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(body())
    await entered.wait()
    # The destroy call stalls at the server, then is processed.
    fault = emulator.faults.fail_next(
        200, path="/lens/sessions/destroy", delay=0.1, after_processing=True
    )
    task.cancel()
    if cancels == 2:
        while fault.count:  # noqa: ASYNC110  (the emulator's state has no event to wait on)
            await asyncio.sleep(0.005)
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert emulator.lens.sessions[ids[0]].status == "SESSION_STATUS_DESTROYED"


async def test_bad_session_options_fail_before_anything_is_created(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    with pytest.raises(TypeError):
        async with client.session(IMAGE_QA, max_in_fligth=4):
            raise AssertionError("the block must not be entered")
    assert emulator.lens.sessions == {}


async def test_attach_leaves_session_running(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    created = await client.sessions.create(IMAGE_QA)
    async with client.attach(created.session_id) as session:
        assert (await session.status()).session_id == created.session_id
    assert emulator.lens.sessions[created.session_id].status != "SESSION_STATUS_DESTROYED"
    await client.sessions.destroy(created.session_id)


async def test_sse_events_typed_and_ended(client: AsyncArchetypeClient) -> None:
    lens_id = await csv_lens(client)
    async with client.session(lens_id) as session:
        events = session.events()
        events.start()
        await start_csv(session)
        received = [event async for event in events]
    assert isinstance(received[0], SSEStreamStart)
    assert isinstance(received[-1], SSEStreamEnd)
    results = [e for e in received if isinstance(e, InferenceResult)]
    assert len(results) == CSV_ROWS // 5


async def test_streams_that_are_over_are_not_kept_by_the_session(
    client: AsyncArchetypeClient,
) -> None:
    async with client.session(IMAGE_QA) as session:
        refs = []
        for _ in range(3):
            async with session.events() as events:
                await anext(events)  # sse.stream.start: the stream really ran
            refs.append(weakref.ref(events))
        del events
        later = session.events()  # opening a stream lets the finished ones go
        await asyncio.sleep(0)  # let the closed readers' done-callbacks run
        gc.collect()
        assert [ref() for ref in refs] == [None, None, None]
        await later.aclose()


async def test_sse_resume_after_drop_delivers_every_event_once(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    lens_id = await csv_lens(client)
    emulator.faults.sse_drop_after = 4
    async with client.session(lens_id) as session:
        events = session.events()
        events.start()
        await start_csv(session)
        received = [event async for event in events]
        assert events.reconnects >= 2
    results = [e for e in received if isinstance(e, InferenceResult)]
    assert len(results) == CSV_ROWS // 5
    ids = [e.query_id for e in results]
    assert len(set(ids)) == len(ids)


async def test_malformed_sse_frame_is_skipped_and_stream_goes_on(
    client: AsyncArchetypeClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    lens_id = await csv_lens(client)
    emulator.faults.malformed_after = 3
    async with client.session(lens_id) as session:
        events = session.events()
        events.start()
        await start_csv(session)
        received = [event async for event in events]
    assert events.malformed == 1
    assert "malformed" in caplog.text
    assert len([e for e in received if isinstance(e, InferenceResult)]) == CSV_ROWS // 5


async def test_slow_consumer_drop_oldest_policy(client: AsyncArchetypeClient) -> None:
    lens_id = await csv_lens(client)
    async with client.session(lens_id) as session:
        events = session.events(queue_size=2, overflow="drop_oldest")
        events.start()
        await start_csv(session)
        await asyncio.sleep(0.5)  # let the reader overrun the queue
        received = [event async for event in events]
    assert events.dropped > 0
    assert isinstance(received[-1], SSEStreamEnd)
    assert len(received) + events.dropped == events.delivered


async def test_mailbox_lens(client: AsyncArchetypeClient) -> None:
    lens_id = await csv_lens(client)
    async with client.session(lens_id) as session:
        await start_csv(session, sse=False)
        results = [e async for e in session.mailbox("reader-1") if isinstance(e, InferenceResult)]
    assert len(results) == CSV_ROWS // 5


async def test_unsolicited_reply_is_dropped_not_misrouted() -> None:
    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str('{"type": "session.get.response", "event_data": {"stray": 1}}')
            await ws.send_str(
                '{"type": "session.validate.response", "event_data": '
                '{"is_valid": true, "error_messages": []}}'
            )
            del msg
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    async with TestServer(app, host="127.0.0.1") as server:
        from aiolens.archetype.session import LensSession

        client = AsyncArchetypeClient("k" * 16, str(server.make_url("")))
        session = LensSession(client, "lsn-x", str(server.make_url("/ws")).replace("http", "ws"))
        await session.connect()
        try:
            assert (await session.validate()).is_valid
            assert session.unmatched_replies == 1
        finally:
            await session.aclose()
            await client.aclose()


async def test_full_realtime_flow_never_logs_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "atai-REALTIME-secret-feedfacecafe"
    caplog.set_level(logging.DEBUG)
    async with (
        Emulator(api_key=key) as emu,
        AsyncArchetypeClient(key, emu.lens_url) as client,
    ):
        lens_id = await csv_lens(client)
        async with client.session(lens_id) as session:
            events = session.events()
            events.start()
            await start_csv(session)
            async for _ in events:
                pass
            logging.getLogger("aiolens").debug("session info %r", session.info)
    assert caplog.records
    assert key not in caplog.text


async def test_silent_stream_is_reconnected_after_liveness_window(
    client: AsyncArchetypeClient,
) -> None:
    from aiolens import APIConnectionError

    async with client.session(IMAGE_QA) as session:
        events = session.events(liveness_timeout=0.2, max_reconnects=2)
        first = await events.__anext__()  # sse.stream.start, then silence (no input)
        assert isinstance(first, SSEStreamStart)
        with pytest.raises(APIConnectionError):
            await events.__anext__()
        assert events.reconnects >= 1


async def test_resume_impossible_is_an_error_not_a_silent_restart() -> None:
    from aiolens import StreamResumeError
    from aiolens.archetype.session import LensSession

    seen_cursors: list[str | None] = []

    async def consumer(request: web.Request) -> web.StreamResponse:
        seen_cursors.append(request.headers.get("Last-Event-ID"))
        if request.headers.get("Last-Event-ID"):
            return web.json_response(
                {"errors": [{"code": "resume_unavailable", "message": "gone"}]}, status=409
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(
            b'data: {"type": "sse.stream.start"}\n\n'
            b'id: 1\ndata: {"type": "log.info"}\n\n'
            b'id: 2\ndata: {"type": "log.info"}\n\n'
        )
        assert request.transport is not None
        request.transport.abort()  # drop mid-stream
        return response

    app = web.Application()
    app.router.add_get("/lens/sessions/consumer/lsn-x", consumer)
    async with TestServer(app, host="127.0.0.1") as server:
        client = AsyncArchetypeClient("k" * 16, str(server.make_url("")))
        session = LensSession(client, "lsn-x", "ws://unused")
        events = session.events()
        received = []
        with pytest.raises(StreamResumeError):
            async for event in events:
                received.append(event)
        await session.aclose()
        await client.aclose()
    assert [e.type for e in received] == ["sse.stream.start", "log.info", "log.info"]
    assert seen_cursors == [None, "2"]


async def test_a_caller_cancelled_while_waiting_for_a_slot_leaves_the_slots_whole(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    async with client.session(IMAGE_QA, max_in_flight=1) as session:
        emulator.faults.reply_delay = 0.2
        first = asyncio.create_task(session.validate())
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(session.validate())  # no slot: it waits
        after = asyncio.create_task(session.validate())
        await asyncio.sleep(0.05)
        waiting.cancel()
        assert (await first).is_valid
        assert (await after).is_valid
        with pytest.raises(asyncio.CancelledError):
            await waiting
        emulator.faults.reply_delay = 0.0
        results = await asyncio.gather(*(session.validate() for _ in range(5)))
        assert all(r.is_valid for r in results)
        assert session._slots._value == 1  # every slot given back, none twice
        assert session.unmatched_replies == 0
