"""A worker running hundreds of feeds: SIGTERM ends it (exit 0) and hands every feed back.

Cancelling a task inside a redis-py command that waits for a ``BlockingConnectionPool``
connection sometimes loses the cancellation (redis-py 8.2, Python 3.11): a feed cancelled
at that moment went on streaming, and the hand-back waited for it forever.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import pytest

from aiolens.emulator import Emulator
from aiolens.fleet import FeedStatus, Fleet
from tests.fleet.conftest import Feeds, Workers, wait_for

FEEDS = 300
WINDOWS = 120
"""Results per feed: at 0.1 s per window, ~12 s of stream (SIGTERM arrives mid-stream)."""
ENDLESS = 10**6
"""Results of a feed that runs until it is stopped."""


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    # Slower events than the other fleet tests: 300 feeds at 10 events/s each.
    async with Emulator(event_interval=0.1, sse_heartbeat_interval=0.5) as emu:
        yield emu


async def _all(fleet: Fleet, ids: list[str]) -> list[FeedStatus]:
    return [await fleet.status_of(f) for f in ids]


async def test_sigterm_with_hundreds_of_feeds_exits_and_hands_them_back(
    fleet: Fleet, feeds: Feeds, workers: Workers, emulator: Emulator
) -> None:
    ids = [f"feed-{n}" for n in range(FEEDS)]
    for feed_id in ids:
        await fleet.submit(feeds.spec(feed_id, WINDOWS))
    w1 = await workers.start("w1", capacity=FEEDS)

    async def streaming() -> list[FeedStatus] | None:
        statuses = await _all(fleet, ids)
        ok = all(s.status == "running" and s.owner == "w1" and s.delivered > 0 for s in statuses)
        return statuses if ok else None

    before = await wait_for(streaming)
    w1.signal(signal.SIGTERM)
    # Generous: only a hang reaches it.
    assert await w1.wait(timeout=60) == 0
    # Handed back (the docs' promise): no owner, sessions left running, not over.
    handed_back = await _all(fleet, ids)
    for old, new in zip(before, handed_back, strict=True):
        assert (new.owner, new.epoch, new.session_id) == ("", 1, old.session_id), new
        assert not new.finished
        assert emulator.lens.session(old.session_id).active
    # ... and claimable at once: a second worker takes every feed and finishes it.
    await workers.start("w2", capacity=FEEDS)

    async def all_over() -> list[FeedStatus] | None:
        statuses = await _all(fleet, ids)
        return statuses if all(s.finished for s in statuses) else None

    after = await wait_for(all_over)
    for old, new in zip(before, after, strict=True):
        assert (new.status, new.session_id, new.epoch) == ("ended", old.session_id, 2)
        results = [r async for r in fleet.results(new.feed_id)]
        assert [int(r.event_id) for r in results] == list(range(1, len(results) + 1))
        assert results[-1].type == "sse.stream.end"
        assert sum(r.type == "inference.result" for r in results) == WINDOWS
    assert emulator.lens.active_sessions() == []


async def test_sigterm_while_opening_hands_back_the_feeds_not_yet_taken(
    fleet: Fleet, feeds: Feeds, workers: Workers
) -> None:
    ids = [f"feed-{n}" for n in range(FEEDS)]
    for feed_id in ids:
        await fleet.submit(feeds.spec(feed_id, ENDLESS))
    w1 = await workers.start("w1", capacity=FEEDS)

    async def some_taken() -> bool:
        return any(s.owner == "w1" for s in await _all(fleet, ids))

    await wait_for(some_taken)  # claimed all, opening a bounded number at a time
    w1.signal(signal.SIGTERM)
    # Generous: only a hang reaches it (a feed whose cancellation was lost streams on).
    assert await w1.wait(timeout=60) == 0
    # Nothing left pending for w1 (to lapse a lease later): one fresh entry per feed.
    redis, queue = fleet.store.redis, fleet.store.queue
    assert (await redis.xpending(queue, "workers"))["pending"] == 0
    entries = await redis.xrange(queue)
    assert sorted(fields[b"feed"].decode() for _, fields in entries) == sorted(ids)
    assert not any(s.finished for s in await _all(fleet, ids))
