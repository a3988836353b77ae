"""``Fleet``: submit, cancel and watch feeds, and read their results, from anywhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from aiolens._transport.closing import AsyncClosing
from aiolens.fleet.spec import FeedNotFoundError, FeedResult, FeedSpec, FeedStatus
from aiolens.fleet.store import DEFAULT_PREFIX, FleetStore

__all__ = ["Fleet"]

_END = "sse.stream.end"


class Fleet(AsyncClosing):
    """The user's side of a fleet: a Redis URL is all it needs (no Lens key).

    ::

        async with Fleet("redis://127.0.0.1:6379/0") as fleet:
            await fleet.submit(LensFeed(feed_id="cam-1", lens_id=lens, input_stream=...))
            async for result in fleet.results("cam-1", follow=True):
                print(result.event_id, result.event())

    Args:
        redis_url: ``redis://host:port/db`` (or ``rediss://``, ``unix://``).
        prefix: the fleet's key prefix (several fleets can share one Redis).
        redis: a ``redis.asyncio.Redis`` to use instead of ``redis_url``
            (``decode_responses`` off); not closed by :meth:`aclose`.

    Every call raises what redis-py raises when Redis cannot be reached
    (``redis.exceptions.ConnectionError``); none retries on its own.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        redis: aioredis.Redis | None = None,
    ) -> None:
        if redis is None:
            if not redis_url:
                raise ValueError("Fleet needs a redis_url (or a redis client)")
            redis = aioredis.Redis.from_url(redis_url)
            self._owns_redis = True
        else:
            self._owns_redis = False
        self.redis = redis
        self.store: FleetStore = FleetStore(redis, prefix)

    async def aclose(self) -> None:
        """Close the Redis connections it opened. Idempotent."""
        if self._owns_redis:
            await self.redis.aclose()

    async def submit(self, spec: FeedSpec, *, replace: bool = False) -> None:
        """Queue a feed; a worker with room claims it.

        Raises:
            FeedExistsError: a feed with this id exists (``replace=True``
                replaces one that is over, and deletes its results).
        """
        await self.store.submit(spec, replace=replace)

    async def cancel(self, feed_id: str, *, wait: float | None = None) -> FeedStatus:
        """End a feed: its worker destroys its session and closes it out (``cancelled``).

        A feed that is already over is left as it is. With ``wait``, waits up to
        that many seconds for the feed to be over.

        Returns:
            The feed's status after the request (or after the wait).

        Raises:
            FeedNotFoundError: no such feed.
            TimeoutError: ``wait`` passed and the feed is not over yet (no
                worker running, or the Lens service unreachable).
        """
        await self.store.cancel(feed_id)
        if wait is None:
            return await self.status_of(feed_id)
        async with asyncio.timeout(wait):
            while True:
                status = await self.status_of(feed_id)
                if status.finished:
                    return status
                await asyncio.sleep(0.05)

    async def status_of(self, feed_id: str) -> FeedStatus:
        """One feed's status.

        Raises:
            FeedNotFoundError: no such feed.
        """
        (status,) = await self.store.statuses([feed_id])
        if status is None:
            raise FeedNotFoundError(f"no feed {feed_id!r} in the fleet")
        return status

    async def status(self) -> list[FeedStatus]:
        """Every feed's status, sorted by id (two round trips)."""
        found = await self.store.statuses(await self.store.feed_ids())
        return [s for s in found if s is not None]

    async def results(
        self,
        feed_id: str,
        *,
        after: str = "0",
        follow: bool = False,
        batch: int = 1000,
        poll: float = 1.0,
    ) -> AsyncIterator[FeedResult]:
        """The feed's results, oldest first, each event once.

        Args:
            feed_id: the feed.
            after: a results entry id (:attr:`FeedResult.entry_id`) to continue
                after; ``"0"`` reads from the oldest kept.
            follow: wait for new results until the feed is over (its stream's
                end event, or a status ``cancelled``/``failed`` and nothing
                left to read); otherwise stop at the newest.
            batch: entries per Redis read.
            poll: seconds each blocking read waits before the status is checked.

        Cancel: stops at once; nothing to clean up (call again with ``after``).

        Raises:
            FeedNotFoundError: no such feed.
        """
        await self.status_of(feed_id)
        block_ms = max(1, int(poll * 1000)) if follow else None
        while True:
            found = await self.store.read_results(feed_id, after, count=batch, block_ms=block_ms)
            for result in found:
                yield result
                after = result.entry_id
                if result.type == _END:
                    return
            if not found:
                if not follow:
                    return
                status = await self.status_of(feed_id)
                if status.finished:
                    # A last look: results written just before the status changed.
                    last = await self.store.read_results(feed_id, after, count=batch, block_ms=None)
                    if not last:
                        return
                    for result in last:
                        yield result
                        after = result.entry_id

    def __repr__(self) -> str:
        return f"Fleet(prefix={self.store.prefix!r})"
