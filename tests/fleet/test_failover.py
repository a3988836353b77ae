"""Failover of worker subprocesses: kill -9, SIGSTOP past the lease, SIGTERM hand-off,
a Redis restart, and cancel — each (feed, event id) in the results exactly once."""

from __future__ import annotations

import signal

from aiolens.emulator import Emulator
from aiolens.fleet import FeedStatus, Fleet
from tests.fleet.conftest import Feeds, RedisServer, Workers, wait_for

WINDOWS = 1500
"""Results per feed: at the test emulator's pace, several seconds of stream."""


async def _all(fleet: Fleet, feed_ids: list[str]) -> list[FeedStatus]:
    return [await fleet.status_of(f) for f in feed_ids]


async def _submit(fleet: Fleet, feeds: Feeds, count: int, windows: int = WINDOWS) -> list[str]:
    ids = [f"feed-{n}" for n in range(count)]
    for feed_id in ids:
        await fleet.submit(feeds.spec(feed_id, windows))
    return ids


async def _running_on(fleet: Fleet, ids: list[str], owner: str) -> list[FeedStatus] | None:
    """All feeds running on ``owner`` with some results written (mid-stream)."""
    statuses = await _all(fleet, ids)
    if all(s.status == "running" and s.owner == owner and s.delivered >= 20 for s in statuses):
        return statuses
    return None


async def _all_over(fleet: Fleet, ids: list[str]) -> list[FeedStatus] | None:
    statuses = await _all(fleet, ids)
    return statuses if all(s.finished for s in statuses) else None


async def _check_exactly_once(fleet: Fleet, feed_id: str, windows: int | None = WINDOWS) -> list:
    """Every event of the feed's session once, in order, ending with the stream's end."""
    results = [r async for r in fleet.results(feed_id)]
    ids = [int(r.event_id) for r in results]
    assert ids == list(range(1, len(ids) + 1)), f"{feed_id}: gap or duplicate"
    assert results[-1].type == "sse.stream.end"
    if windows is not None:
        assert sum(r.type == "inference.result" for r in results) == windows
    return results


async def test_kill_9_feeds_resume_elsewhere_exactly_once(
    fleet: Fleet, feeds: Feeds, workers: Workers, emulator: Emulator
) -> None:
    w1 = await workers.start("w1")
    ids = await _submit(fleet, feeds, 4)
    before = await wait_for(lambda: _running_on(fleet, ids, "w1"))
    await workers.start("w2")
    w1.signal(signal.SIGKILL)
    after = await wait_for(lambda: _all_over(fleet, ids))
    for old, new in zip(before, after, strict=True):
        assert new.status == "ended"
        assert new.session_id == old.session_id  # attached, not a new session
        assert new.epoch == 2
        results = await _check_exactly_once(fleet, new.feed_id)
        assert {r.epoch for r in results} == {1, 2}
    assert len(emulator.lens.sessions) == len(ids)
    assert emulator.lens.active_sessions() == []


async def test_sigstop_past_the_lease_then_sigcont_writes_nothing(
    fleet: Fleet, feeds: Feeds, workers: Workers, emulator: Emulator
) -> None:
    w1 = await workers.start("w1")
    ids = await _submit(fleet, feeds, 4)
    await wait_for(lambda: _running_on(fleet, ids, "w1"))
    w1.signal(signal.SIGSTOP)
    await workers.start("w2")

    async def taken_over() -> bool:
        return all(s.epoch == 2 for s in await _all(fleet, ids))

    await wait_for(taken_over)
    stale = {f: [r.event_id async for r in fleet.results(f) if r.epoch == 1] for f in ids}
    w1.signal(signal.SIGCONT)
    await wait_for(lambda: _all_over(fleet, ids))
    for feed_id in ids:
        results = await _check_exactly_once(fleet, feed_id)
        assert [r.event_id for r in results if r.epoch == 1] == stale[feed_id]
    # The paused worker noticed, stopped its feeds, and still shuts down cleanly.
    assert w1.process.returncode is None
    w1.signal(signal.SIGTERM)
    assert await w1.wait() == 0
    assert emulator.lens.active_sessions() == []


async def test_sigterm_hands_feeds_back_without_destroying_sessions(
    fleet: Fleet, feeds: Feeds, workers: Workers, emulator: Emulator
) -> None:
    w1 = await workers.start("w1")
    ids = await _submit(fleet, feeds, 4)
    before = await wait_for(lambda: _running_on(fleet, ids, "w1"))
    await workers.start("w2")
    w1.signal(signal.SIGTERM)
    assert await w1.wait() == 0
    for status in before:
        assert emulator.lens.session(status.session_id).active
    after = await wait_for(lambda: _all_over(fleet, ids))
    for old, new in zip(before, after, strict=True):
        assert (new.status, new.session_id, new.epoch) == ("ended", old.session_id, 2)
        await _check_exactly_once(fleet, new.feed_id)
    assert len(emulator.lens.sessions) == len(ids)
    assert emulator.lens.active_sessions() == []


async def test_redis_restart_mid_stream_loses_and_repeats_nothing(
    fleet: Fleet, feeds: Feeds, workers: Workers, redis_server: RedisServer, emulator: Emulator
) -> None:
    await workers.start("w1")
    ids = await _submit(fleet, feeds, 4)
    await wait_for(lambda: _running_on(fleet, ids, "w1"))
    await workers.start("w2")
    await redis_server.restart(down_for=1.5)
    after = await wait_for(lambda: _all_over(fleet, ids))
    for status in after:
        assert status.status == "ended"
        await _check_exactly_once(fleet, status.feed_id)
    assert len(emulator.lens.sessions) == len(ids)
    assert emulator.lens.active_sessions() == []


async def test_cancel_destroys_every_session(
    fleet: Fleet, feeds: Feeds, workers: Workers, emulator: Emulator
) -> None:
    # One feed is cancelled before any worker runs: it ends without a session.
    await fleet.submit(feeds.spec("early", 10))
    assert (await fleet.cancel("early")).status == "cancelling"
    await workers.start("w1")
    await workers.start("w2")
    ids = await _submit(fleet, feeds, 6, windows=1_000_000)

    async def streaming() -> bool:
        return all(s.status == "running" and s.delivered >= 5 for s in await _all(fleet, ids))

    await wait_for(streaming)
    for feed_id in ids:
        assert (await fleet.cancel(feed_id, wait=60)).status == "cancelled"
        await _check_exactly_once(fleet, feed_id, windows=None)
    assert (await fleet.status_of("early")).status == "cancelled"
    assert [r async for r in fleet.results("early")] == []
    assert len(emulator.lens.sessions) == len(ids)
    assert emulator.lens.active_sessions() == []
