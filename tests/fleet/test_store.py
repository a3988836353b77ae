"""The fleet's Redis protocol against a real redis-server: fencing, idempotence, leases."""

from __future__ import annotations

import asyncio
import signal

import pytest
import redis.asyncio as aioredis

from aiolens.errors import ConfigurationError
from aiolens.fleet import (
    FeedExistsError,
    FeedNotFoundError,
    Fleet,
    InputStream,
    LensFeed,
    decode_spec,
    encode_spec,
)
from aiolens.fleet.store import GROUP, FleetStore
from aiolens.fleet.writer import ResultWriter
from tests.fleet.conftest import RedisServer, wait_for


def _spec(feed_id: str = "f1", **kw: object) -> LensFeed:
    return LensFeed(feed_id=feed_id, lens_id="lns-1", **kw)  # type: ignore[arg-type]


def _events(first: int, last: int) -> list[tuple[str, str, str]]:
    return [
        (str(i), "inference.result", f'{{"type":"inference.result","n":{i}}}')
        for i in range(first, last + 1)
    ]


async def _append(
    store: FleetStore,
    feed_id: str,
    epoch: int,
    events: list[tuple[str, str, str]],
    maxlen: int = 1000,
) -> int:
    pipe = store.pipeline()
    store.queue_append(pipe, feed_id, epoch, maxlen, events, final=False)
    (reply,) = await store.execute(pipe)
    if isinstance(reply, Exception):
        await store.load_scripts()
        return await _append(store, feed_id, epoch, events, maxlen)
    return int(reply)


def test_spec_validation() -> None:
    with pytest.raises(ConfigurationError, match="feed_id"):
        LensFeed(feed_id="bad id with spaces", lens_id="x")
    with pytest.raises(ConfigurationError, match="exactly one"):
        LensFeed(feed_id="f", lens_id="x", lens_config={"a": 1})
    with pytest.raises(ConfigurationError, match="exactly one"):
        LensFeed(feed_id="f")
    with pytest.raises(ConfigurationError, match="invalid feed spec"):
        decode_spec(b'{"feed_id": "f", "lens_id": "x", "results_maxlen": 0}')
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        decode_spec(b"{nope")
    spec = _spec(input_stream=InputStream("csv_file_reader", {"file_id": "x"}))
    assert decode_spec(encode_spec(spec)) == spec
    assert b'"kind":"lens"' in encode_spec(spec)


async def test_taking_a_feed_fences_the_previous_owner(redis_server: RedisServer) -> None:
    async with aioredis.Redis.from_url(redis_server.url) as r:
        store = FleetStore(r)
        await store.submit(_spec())
        first = await store.take("f1", "a")
        assert first is not None and first.epoch == 1 and first.status == "running"
        assert await _append(store, "f1", 1, _events(1, 5)) == 5
        second = await store.take("f1", "b")
        assert second is not None and second.epoch == 2 and second.last_id == "5"
        # The old owner can neither append nor record anything any more.
        assert await _append(store, "f1", 1, _events(6, 9)) == -1
        assert not await store.set_fields("f1", 1, session_id="stale")
        assert await _append(store, "f1", 2, _events(6, 7)) == 2
        entries = await r.xrange(store.results_key("f1"))
        assert [e[1][b"id"] for e in entries] == [str(i).encode() for i in range(1, 8)]
        assert [e[1][b"epoch"] for e in entries] == [b"1"] * 5 + [b"2"] * 2
        (status,) = await store.statuses(["f1"])
        assert status is not None
        assert (status.owner, status.epoch, status.delivered, status.last_event_id) == (
            "b",
            2,
            7,
            "7",
        )


async def test_append_is_idempotent_and_trimmed(redis_server: RedisServer) -> None:
    async with aioredis.Redis.from_url(redis_server.url) as r:
        store = FleetStore(r)
        await store.submit(_spec())
        state = await store.take("f1", "a")
        assert state is not None
        assert await _append(store, "f1", 1, _events(1, 3)) == 3
        # A batch retried after its reply was lost, overlapping the checkpoint.
        assert await _append(store, "f1", 1, _events(1, 4)) == 1
        assert await r.xlen(store.results_key("f1")) == 4
        assert await _append(store, "f1", 1, _events(5, 2000), maxlen=10) == 1996
        length = await r.xlen(store.results_key("f1"))
        assert 10 <= length < 2000  # MAXLEN ~: trimmed in whole nodes
        # An end event without an id of its own: written once, also when retried.
        end = [("", "sse.stream.end", '{"type":"sse.stream.end"}')]
        for expected in (1, 0):
            pipe = store.pipeline()
            store.queue_append(pipe, "f1", 1, 10, end, final=True)
            assert await store.execute(pipe) == [expected]
        (status,) = await store.statuses(["f1"])
        assert status is not None and status.last_event_id == "2000"


async def test_submit_twice_and_unknown_feeds(fleet: Fleet) -> None:
    await fleet.submit(_spec())
    with pytest.raises(FeedExistsError):
        await fleet.submit(_spec())
    with pytest.raises(FeedExistsError):
        await fleet.submit(_spec(), replace=True)  # not over yet
    with pytest.raises(FeedNotFoundError):
        await fleet.cancel("nope")
    with pytest.raises(FeedNotFoundError):
        await fleet.status_of("nope")
    with pytest.raises(FeedNotFoundError):
        async for _ in fleet.results("nope"):
            pass
    assert (await fleet.cancel("f1")).status == "cancelling"
    assert [s.feed_id for s in await fleet.status()] == ["f1"]


async def test_renew_reports_leases_taken_over(redis_server: RedisServer) -> None:
    async with aioredis.Redis.from_url(redis_server.url) as r:
        store = FleetStore(r)
        await store.submit(_spec("f1"))
        await store.submit(_spec("f2"))
        claims = await store.claim_new("a", 10, 10)
        assert sorted(c.feed_id for c in claims) == ["f1", "f2"]
        ids = [c.entry_id for c in claims]
        assert await store.renew("a", ids) == set()
        await asyncio.sleep(0.05)
        # b takes over whatever has been idle for 20 ms: both entries (a renewed before).
        taken = await store.claim_lapsed("b", 1, 20)
        assert len(taken) == 1
        assert await store.renew("a", ids) == {taken[0].entry_id}
        # A hand-back of an entry no longer held does not requeue it.
        assert not await store.release("a", taken[0])
        assert await store.release("b", taken[0])
        again = await store.claim_new("c", 10, 10)
        assert [c.feed_id for c in again] == [taken[0].feed_id]
        pending = await r.xpending(store.queue, GROUP)
        assert pending["pending"] == 2


async def test_writer_waits_while_redis_is_stopped(redis_server: RedisServer) -> None:
    """A stalled Redis stops ``put`` at ``max_pending`` (bounded memory), nothing is lost."""
    async with aioredis.Redis.from_url(redis_server.url, socket_timeout=0.5) as r:
        store = FleetStore(r)
        await store.submit(_spec())
        state = await store.take("f1", "a")
        assert state is not None

        class Feed:
            feed_id, epoch, maxlen = "f1", 1, 10_000

            def fenced(self) -> None:
                raise AssertionError("not fenced")

        feed = Feed()
        writer = ResultWriter(store, max_pending=50)
        runner = asyncio.create_task(writer.run())

        async def produce() -> None:
            for event in _events(1, 500):
                await writer.put(feed, event)

        assert redis_server.process is not None
        redis_server.process.send_signal(signal.SIGSTOP)
        try:
            producer = asyncio.create_task(produce())
            await wait_for(lambda: _true(writer.pending == 50), timeout=30)
            await asyncio.sleep(0.2)
            assert writer.pending == 50 and not producer.done()
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
        await asyncio.wait_for(producer, 60)
        await asyncio.wait_for(writer.flushed(feed), 60)
        runner.cancel()
        entries = await r.xrange(store.results_key("f1"))
        assert [int(e[1][b"id"]) for e in entries] == list(range(1, 501))
        assert writer.events_written == 500


async def _true(value: bool) -> bool:
    return value
