"""The Kynasmith client against the real emulator over loopback."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

from aiolens import (
    APIStatusError,
    ConfigurationError,
    ConflictError,
    DetectionError,
    NotFoundError,
    PoseFrameError,
    RateLimitError,
)
from aiolens.emulator import Emulator
from aiolens.emulator.movespec_yaml import SQUAT_YAML
from aiolens.kynasmith import AsyncKynasmithClient
from aiolens.kynasmith.models import (
    EventCompleted,
    FrameAck,
    SessionDone,
    ShapeEnter,
    UnknownEvent,
    decode_detection_event,
)
from aiolens.kynasmith.synthetic import bad_frame, generate_squats
from tests.conftest import FAST_BACKOFF


@pytest.fixture
async def kyna(emulator: Emulator) -> AsyncIterator[AsyncKynasmithClient]:
    async with AsyncKynasmithClient(
        emulator.kynasmith_api_key, base_url=emulator.kynasmith_url, backoff=FAST_BACKOFF
    ) as client:
        yield client


async def squat_spec(client: AsyncKynasmithClient) -> str:
    specs = await client.movespecs.list(visibility="public")
    return next(s.movespec_id for s in specs if s.name == "squat")


async def stream(det, frames, batch: int = 15):  # type: ignore[no-untyped-def]
    chunks = [frames[i : i + batch] for i in range(0, len(frames), batch)]
    return await asyncio.gather(*(det.send(c) for c in chunks))


def test_key_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KYNASMITH_API_KEY", raising=False)
    with pytest.raises(ConfigurationError):
        AsyncKynasmithClient()
    with pytest.raises(ConfigurationError):
        AsyncKynasmithClient("no-colon")


async def test_concurrent_callers_share_one_mint_and_refresh(emulator: Emulator) -> None:
    # Fresh for 5 s, then inside the 5 s refresh margin: wide windows, so that a loaded
    # machine cannot push a batch across the boundary.
    emulator.kynasmith.token_ttl = 10
    async with AsyncKynasmithClient(
        emulator.kynasmith_api_key, base_url=emulator.kynasmith_url, token_refresh_margin=5.0
    ) as client:
        spec = await squat_spec(client)
        assert client.tokens.minted == 1
        await asyncio.gather(*(client.movespecs.get(spec) for _ in range(20)))
        assert client.tokens.minted == 1
        await asyncio.sleep(5.1)  # inside the refresh margin now
        await asyncio.gather(*(client.movespecs.get(spec) for _ in range(20)))
        assert client.tokens.minted == 2


async def test_first_create_mints_only_the_token_it_needs(emulator: Emulator) -> None:
    spec = next(i for i, s in emulator.kynasmith.movespecs.items() if s.name == "squat")
    async with AsyncKynasmithClient(
        emulator.kynasmith_api_key, base_url=emulator.kynasmith_url
    ) as client:
        created = await client.sessions.create(movespec_id=spec)  # project from the token
        assert created.project_id == emulator.kynasmith.project_id
        assert client.tokens.minted == 1


async def test_tokens_shorter_lived_than_the_margin_are_reused(emulator: Emulator) -> None:
    # A 60 s token under a 120 s refresh margin: refreshed half-way (after 30 s), not at
    # once; the half-way mark is far enough that a loaded machine cannot reach it.
    emulator.kynasmith.token_ttl = 60
    async with AsyncKynasmithClient(
        emulator.kynasmith_api_key,
        base_url=emulator.kynasmith_url,
        token_refresh_margin=120,
    ) as client:
        spec = await squat_spec(client)
        await asyncio.gather(*(client.movespecs.get(spec) for _ in range(10)))
        assert client.tokens.minted == 1


async def test_expired_token_is_reminted(kyna: AsyncKynasmithClient, emulator: Emulator) -> None:
    spec = await squat_spec(kyna)
    for token in emulator.kynasmith.tokens.values():
        token.expires_at = 0.0  # the server now answers access_token_expired
    assert (await kyna.movespecs.get(spec)).name == "squat"
    assert kyna.tokens.minted == 2


async def test_idempotent_create_retried_after_failure_creates_one_session(
    kyna: AsyncKynasmithClient, emulator: Emulator
) -> None:
    spec = await squat_spec(kyna)
    emulator.faults.fail_next(
        500, method="POST", path="/api/detection/sessions", after_processing=True
    )
    created = await kyna.sessions.create(movespec_id=spec)
    assert list(emulator.kynasmith.sessions) == [created.session_id]
    with pytest.raises(ConflictError) as err:  # same key, other body
        await kyna.sessions.create(movespec_id=spec, mode="live", idempotency_key="k1")
        await kyna.sessions.create(movespec_id=spec, mode="replay", idempotency_key="k1")
    assert err.value.details == {"reason": "idempotency_key_reuse"}


async def test_pipelined_batches_acked_and_reps_counted_exactly(
    kyna: AsyncKynasmithClient,
) -> None:
    frames = generate_squats(5, seed=3)
    async with kyna.detection_session(movespec_id=await squat_spec(kyna), window=8) as det:
        acks = await stream(det, frames)
        assert [a.batch_seq for a in acks] == list(range(1, len(acks) + 1))
        assert acks[-1].accepted_frames_total == len(frames)
        done = await det.finalize()
        items = [item async for item in det.events()]
    assert isinstance(done, SessionDone) and done.status == "completed"
    assert done.accepted_frames_total == len(frames)
    assert sum(isinstance(e, EventCompleted) for e in items) == 5
    assert any(isinstance(e, ShapeEnter) and e.payload.shape_key == "bottom" for e in items)
    assert isinstance(items[-1], SessionDone)
    record = await kyna.sessions.get(det.session_id)
    assert record.status == "completed" and record.accepted_frames_total == len(frames)


async def test_events_end_even_when_the_consumer_lagged(kyna: AsyncKynasmithClient) -> None:
    frames = generate_squats(3)
    spec = await squat_spec(kyna)
    async with kyna.detection_session(movespec_id=spec, event_queue_size=4) as det:
        await stream(det, frames)
        done = await det.finalize()
        async with asyncio.timeout(10):  # a lost end of stream would hang here
            items = [item async for item in det.events()]
    assert len(items) == 3 and items[-1] is done  # the queue held them and the end
    assert det.dropped_events > 0


async def test_rejected_frames_are_reported(kyna: AsyncKynasmithClient) -> None:
    good = generate_squats(0)[:3]
    async with kyna.detection_session(movespec_id=await squat_spec(kyna), validate=False) as det:
        ack = await det.send([good[0], bad_frame("missing", frame_seq=2), good[2]])
    assert isinstance(ack, FrameAck)
    assert ack.rejected_frame_indexes == [1]
    assert ack.accepted_frame_count == 2


async def test_invalid_frame_is_a_local_error(
    kyna: AsyncKynasmithClient, emulator: Emulator
) -> None:
    async with kyna.detection_session(movespec_id=await squat_spec(kyna)) as det:
        for kind in ("missing", "duplicate", "unknown", "confidence"):
            with pytest.raises(PoseFrameError) as err:
                await det.send([bad_frame(kind)])  # type: ignore[arg-type]
            assert err.value.index == 0
        session = emulator.kynasmith.sessions[det.session_id]
        assert session.accepted_frames_total == 0 and session.last_batch_seq == 0


async def test_rejected_batch_leaves_frame_numbering_untouched(
    kyna: AsyncKynasmithClient, emulator: Emulator
) -> None:
    frames = generate_squats(0)[:3]  # frame_seq 1, 2, 3
    async with kyna.detection_session(movespec_id=await squat_spec(kyna)) as det:
        with pytest.raises(PoseFrameError) as err:
            await det.send([frames[0], bad_frame("missing", frame_seq=2)])
        assert err.value.index == 1
        ack = await det.send(frames)  # the same numbers again, now all valid
    assert ack.accepted_frame_count == 3 and ack.rejected_frame_indexes == []


async def test_reconnect_mid_stream_loses_nothing_duplicates_nothing(
    kyna: AsyncKynasmithClient, emulator: Emulator
) -> None:
    frames = generate_squats(3, seed=1)
    async with kyna.detection_session(movespec_id=await squat_spec(kyna), window=4) as det:
        emulator.faults.ws_drop_after = 7
        acks = await stream(det, frames)
        emulator.faults.ws_drop_after = None
        done = await det.finalize()
        items = [item async for item in det.events()]
        assert det.reconnects >= 1
    assert acks[-1].accepted_frames_total == len(frames) == done.accepted_frames_total
    assert sum(isinstance(e, EventCompleted) for e in items) == 3
    ids = [e.event_id for e in items if hasattr(e, "event_id")]
    assert len(ids) == len(set(ids))


async def test_finalize_survives_a_drop_before_session_done(
    kyna: AsyncKynasmithClient, emulator: Emulator
) -> None:
    async with kyna.detection_session(movespec_id=await squat_spec(kyna)) as det:
        await det.send(generate_squats(1)[:15])
        session = emulator.kynasmith.sessions[det.session_id]
        # attach update + streaming update + the batch's replies, then drop right
        # after session_update(finalizing): session_done is never delivered.
        emulator.faults.ws_drop_after = 2 + len(session.replies[1]) + 1
        done = await det.finalize(timeout=10)
        assert det.reconnects == 1
        assert await det.finalize() is done
    assert done.status == "completed" and done.accepted_frames_total == 15
    assert session.status == "completed"


async def test_leaving_without_finalize_cancels(
    kyna: AsyncKynasmithClient, emulator: Emulator
) -> None:
    with pytest.raises(RuntimeError):
        async with kyna.detection_session(movespec_id=await squat_spec(kyna)) as det:
            await det.send(generate_squats(1)[:15])
            raise RuntimeError("boom")
    assert emulator.kynasmith.sessions[det.session_id].status == "cancelled"


@pytest.mark.parametrize("cancels", [1, 2])
async def test_cancelled_block_still_cancels_the_session(
    kyna: AsyncKynasmithClient, emulator: Emulator, cancels: int
) -> None:
    # With two, the second cancel lands while the cancel request is in flight: anyio's
    # shield does not stop asyncio's own Task.cancel(), and used to let it abort the
    # request and leave the session streaming.
    spec = await squat_spec(kyna)
    sent = asyncio.Event()
    ids: list[str] = []

    async def body() -> None:
        async with kyna.detection_session(movespec_id=spec) as det:
            ids.append(det.session_id)
            await det.send(generate_squats(1)[:15])
            sent.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(body())
    await sent.wait()
    # The cancel request stalls at the server, then is processed.
    fault = emulator.faults.fail_next(200, path="/cancel", delay=0.1, after_processing=True)
    task.cancel()
    if cancels == 2:
        while fault.count:  # noqa: ASYNC110  (the emulator's state has no event to wait on)
            await asyncio.sleep(0.005)
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert emulator.kynasmith.sessions[ids[0]].status == "cancelled"


async def test_a_bad_session_option_fails_before_anything_is_created(
    kyna: AsyncKynasmithClient, emulator: Emulator
) -> None:
    spec = await squat_spec(kyna)
    with pytest.raises(ValueError, match="window"):
        async with kyna.detection_session(movespec_id=spec, window=0):
            pass
    with pytest.raises(TypeError):
        async with kyna.detection_session(movespec_id=spec, windw=4):
            pass
    assert emulator.kynasmith.sessions == {}


async def test_errors_are_typed_with_codes(kyna: AsyncKynasmithClient) -> None:
    with pytest.raises(ValueError):
        await kyna.sessions.create()
    with pytest.raises(NotFoundError) as err:
        await kyna.sessions.create(movespec_id="ms_nope")
    assert err.value.code == "not_found" and err.value.request_id
    spec = await squat_spec(kyna)
    with pytest.raises(ConflictError) as conflict:
        await kyna.sessions.create(movespec_id=spec, contract_major=2)
    assert conflict.value.code == "contract_version_unsupported"
    assert conflict.value.details == {"supported_contract_major": 1}
    assert not conflict.value.retryable


async def test_rate_limit_headers_and_error() -> None:
    async with (
        Emulator(kynasmith_limits={"movespecs": 3}) as emu,
        AsyncKynasmithClient(
            emu.kynasmith_api_key, base_url=emu.kynasmith_url, max_retries=0
        ) as client,
    ):
        spec = await squat_spec(client)
        await client.movespecs.get(spec)
        await client.movespecs.get(spec)
        with pytest.raises(RateLimitError) as err:
            await client.movespecs.get(spec)
    assert err.value.code == "rate_limited" and err.value.retryable
    assert err.value.retry_after is not None and err.value.retry_after > 0


async def test_movespec_authoring_flow(kyna: AsyncKynasmithClient) -> None:
    spec = await kyna.movespecs.create("my squat", description="test")
    draft = await kyna.movespecs.put_draft(spec.movespec_id, SQUAT_YAML)
    assert draft.yaml_source == SQUAT_YAML
    assert (await kyna.movespecs.validate(spec.movespec_id)).ok
    version = await kyna.movespecs.create_version(spec.movespec_id)
    assert version.version_number == 1
    assert version.content_hash == hashlib.sha256(SQUAT_YAML.encode()).hexdigest()
    released = await kyna.movespecs.release(spec.movespec_id, version.movespec_version_id)
    assert released.current_released_version_id == version.movespec_version_id
    assert [v.movespec_version_id for v in await kyna.movespecs.versions(spec.movespec_id)] == [
        version.movespec_version_id
    ]
    renamed = await kyna.movespecs.update(spec.movespec_id, name="renamed")
    assert renamed.name == "renamed"
    fork = await kyna.movespecs.fork(spec.movespec_id, name="forked", idempotency_key="f1")
    again = await kyna.movespecs.fork(spec.movespec_id, name="forked", idempotency_key="f1")
    assert fork.movespec_id == again.movespec_id
    assert (await kyna.movespecs.get_draft(fork.movespec_id)).yaml_source == SQUAT_YAML
    frames = generate_squats(2)
    async with kyna.detection_session(movespec_version_id=version.movespec_version_id) as det:
        await stream(det, frames)
        done = await det.finalize()
        reps = [e async for e in det.events() if isinstance(e, EventCompleted)]
    assert done.status == "completed" and len(reps) == 2


async def test_bad_yaml_reported_with_its_line(kyna: AsyncKynasmithClient) -> None:
    spec = await kyna.movespecs.create("broken")
    broken = SQUAT_YAML.replace(
        "sequence: [standing, bottom, standing]", "sequence: [standing, bottom, sitting]"
    )
    await kyna.movespecs.put_draft(spec.movespec_id, broken)
    result = await kyna.movespecs.validate(spec.movespec_id)
    assert not result.ok
    (issue,) = result.errors
    assert issue.code == "unknown_phase"
    assert issue.line == broken.splitlines().index("    sequence: [standing, bottom, sitting]") + 1
    await kyna.movespecs.put_draft(spec.movespec_id, "name: [unclosed\n")
    result = await kyna.movespecs.validate(spec.movespec_id)
    assert result.errors[0].code == "yaml_syntax_error" and result.errors[0].line == 2


def test_unknown_event_type_is_kept() -> None:
    known = decode_detection_event(
        b'{"type":"shape_enter","event_id":"e","session_id":"s","ts_ms":1,'
        b'"payload":{"shape_key":"standing","confidence":0.9}}'
    )
    unknown = decode_detection_event(b'{"type":"new_kind","event_id":"e2","x":1}')
    assert isinstance(known, ShapeEnter)
    assert isinstance(unknown, UnknownEvent) and unknown.raw["x"] == 1


async def test_a_session_the_server_fails_ends_typed_and_is_not_cancelled(
    kyna: AsyncKynasmithClient, emulator: Emulator
) -> None:
    spec = await squat_spec(kyna)
    frames = generate_squats(3)
    emulator.faults.detection_fail_after = 30  # fails once the second batch is accepted
    async with kyna.detection_session(movespec_id=spec, window=1) as det:
        await det.send(frames[:15])
        ack = await det.send(frames[15:30])
        assert ack.accepted_frames_total == 30
        done = await det.finalize()
        assert done.status == "failed" and done.error is not None
        assert done.error.code == "internal_error"
        with pytest.raises(DetectionError) as err:  # the outcome is known: not "lost"
            await det.send(frames[30:45])
        assert err.value.code == "session_terminal" and "failed" in str(err.value)
        assert "internal_error" in str(err.value)
        events = [e async for e in det.events()]  # the stream has ended
        assert events, "the events before the failure are delivered"
    assert emulator.kynasmith.sessions[det.session_id].status == "failed"


@pytest.mark.parametrize(("action", "status"), [("cancel", "cancelled"), ("finalize", "completed")])
async def test_ending_a_session_over_rest_tells_its_stream(
    kyna: AsyncKynasmithClient, emulator: Emulator, action: str, status: str
) -> None:
    spec = await squat_spec(kyna)
    frames = generate_squats(2)
    async with kyna.detection_session(movespec_id=spec) as det:
        await det.send(frames[:15])
        await getattr(kyna.sessions, action)(det.session_id)  # e.g. from another process
        # A client that only listens learns it: its events end (before, they never did).
        await asyncio.wait_for(_drain(det.events()), 10)
        assert det.done is not None and det.done.status == status
        with pytest.raises(DetectionError) as err:
            await det.send(frames[15:30])
        assert err.value.code == "session_terminal"
    assert emulator.kynasmith.sessions[det.session_id].status == status


async def _drain(events: AsyncIterator[object]) -> None:
    async for _ in events:
        pass


async def test_the_rate_limit_window_is_reported_after_each_answer(
    kyna: AsyncKynasmithClient,
) -> None:
    assert kyna.rate_limit is None  # nothing answered yet
    await kyna.movespecs.list()
    first = kyna.rate_limit
    assert first is not None and first.limit > 0 and 0 < first.resets_in <= first.reset
    await kyna.with_options(timeout=5).movespecs.list()  # a copy shares what it sees
    second = kyna.rate_limit
    assert second is not None and second.limit == first.limit
    assert second.remaining == first.remaining - 1


async def test_with_options_shares_connections_and_tokens(
    kyna: AsyncKynasmithClient, emulator: Emulator
) -> None:
    once = kyna.with_options(max_retries=0)
    assert once.tokens is kyna.tokens
    emulator.faults.fail_next(503, path="/movespecs")
    with pytest.raises(APIStatusError) as err:
        await once.movespecs.list()  # no retry on the copy
    assert err.value.status == 503
    emulator.faults.fail_next(503, path="/movespecs")
    await kyna.movespecs.list()  # the original still retries
    await once.aclose()
    assert once.closed and not kyna.closed
    await kyna.movespecs.list()
