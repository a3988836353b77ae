"""The client reads both shapes wherever the seed pages and the official examples differ,
and a live SSE consumer opened before the input misses nothing."""

from __future__ import annotations

import pytest

from aiolens import AsyncArchetypeClient, NotFoundError, SessionStatus
from aiolens._transport.sse import EventStream
from aiolens.archetype.events import InferenceResult, LogInfo, SSEStreamEnd, decode_event
from aiolens.emulator import Emulator
from tests.archetype.test_session import CSV_ROWS, IMAGE_QA, csv_lens, start_csv

SEED_RESULT = (
    b'{"type": "inference.result", "timestamp": 1741843200.123, "data": {"result": "A worker"}}'
)
EXAMPLE_RESULT = (
    b'{"type": "inference.result", "event_data": {"response": ["A worker"], "query_id": "qry-1"}}'
)


@pytest.mark.parametrize("raw", [SEED_RESULT, EXAMPLE_RESULT], ids=["seed", "examples"])
def test_inference_result_text_reads_either_shape(raw: bytes) -> None:
    event = decode_event(raw)
    assert isinstance(event, InferenceResult)
    assert event.text == "A worker"


def test_seed_result_timestamp_and_a_log_line_whose_data_is_a_string() -> None:
    event = decode_event(SEED_RESULT)
    assert isinstance(event, InferenceResult) and event.timestamp == 1741843200.123
    log = decode_event(b'{"timestamp": 1.0, "type": "log.info", "data": "Frame processed"}')
    assert isinstance(log, LogInfo) and log.data == "Frame processed"


async def test_status_with_or_without_the_enum_prefix(client: AsyncArchetypeClient) -> None:
    async with client.session(IMAGE_QA) as session:
        info = await session.status()  # the emulator sends the prefix, like the seed
        assert info.status is SessionStatus.RUNNING
        assert info.num_active_connections == 0
        reply = await client.sessions.process_event(session.session_id, "session.status")
        assert SessionStatus.parse(reply.event_data["session_status"]) is SessionStatus.RUNNING
        assert SessionStatus.parse("SESSION_STATUS_RUNNING") is SessionStatus.RUNNING


async def test_query_and_mailbox_read_carry_the_seed_fields(client: AsyncArchetypeClient) -> None:
    async with client.session(IMAGE_QA) as session:
        answer = await session.query(focus="What is there?")
        assert answer["result"] == answer["response"][0]
    lens_id = await csv_lens(client)
    async with client.session(lens_id) as session:
        await start_csv(session, sse=False)
        results = [e async for e in session.mailbox("reader-1") if isinstance(e, InferenceResult)]
    assert len(results) == CSV_ROWS // 5
    assert all(r.text and r.data and r.data["result"] == r.text for r in results)


async def test_a_consumer_opened_before_the_input_is_connected_before_it_starts(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    # The consumer's first connect is refused once and retried later: the input must
    # wait for it, or a live consumer would miss the first results.
    lens_id = await csv_lens(client)
    async with client.session(lens_id) as session:
        fault = emulator.faults.fail_next(
            503, count=1, path=f"/consumer/{session.session_id}", retry_after="0.2"
        )
        events = session.events()
        await start_csv(session)
        received = [event async for event in events]
    assert fault.count == 0
    assert len([e for e in received if isinstance(e, InferenceResult)]) == CSV_ROWS // 5
    assert isinstance(received[-1], SSEStreamEnd)


async def test_wait_connected_reports_a_stream_that_cannot_connect(
    client: AsyncArchetypeClient,
) -> None:
    events = EventStream(
        client._http,
        "/lens/sessions/consumer/lsn-000000doesnotexist",
        decode=lambda raw: raw.data,
        is_end=lambda data: False,
        max_reconnects=0,
    )
    async with events:
        assert await events.wait_connected() is False
        with pytest.raises(NotFoundError):
            await anext(events)
