"""``LensSession.raw_events`` and resuming a stream from a checkpoint (``last_event_id``)."""

from __future__ import annotations

from aiolens import AsyncArchetypeClient
from aiolens.archetype.events import InferenceResult, RawEvent, SSEStreamStart
from aiolens.emulator import Emulator
from tests.archetype.test_session import CSV_ROWS, csv_lens, start_csv


async def test_raw_events_keep_ids_and_text_and_resume_from_a_checkpoint(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    lens_id = await csv_lens(client)
    async with client.session(lens_id) as session:
        stream = session.raw_events()
        stream.start()
        await start_csv(session)
        raw = [e async for e in stream]
        assert all(isinstance(e, RawEvent) for e in raw)
        assert raw[0].type == "sse.stream.start" and raw[-1].type == "sse.stream.end"
        ids = [int(e.id) for e in raw[1:]]
        assert ids == list(range(1, len(ids) + 1))
        results = [e for e in raw if e.type == "inference.result"]
        assert len(results) == CSV_ROWS // 5
        assert isinstance(results[0].decode(), InferenceResult)

        # A new stream from a checkpoint kept elsewhere: only what came after it.
        cut = raw[len(raw) // 2]
        resumed = [e async for e in session.raw_events(last_event_id=cut.id)]
        assert [e.id for e in resumed[1:]] == [e.id for e in raw if int(e.id or 0) > int(cut.id)]
        typed = [e async for e in session.events(last_event_id=cut.id)]
        assert isinstance(typed[0], SSEStreamStart)
        assert len(typed) == len(resumed)


async def test_raw_events_resume_after_drops_without_repeats(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    lens_id = await csv_lens(client)
    emulator.faults.sse_drop_after = 4
    async with client.session(lens_id) as session:
        stream = session.raw_events()
        stream.start()
        await start_csv(session)
        raw = [e async for e in stream]
        assert stream.reconnects >= 2
    ids = [int(e.id) for e in raw if e.id]
    assert ids == list(range(1, len(ids) + 1))
    assert len([e for e in raw if e.type == "inference.result"]) == CSV_ROWS // 5
