"""``FleetWorker``: runs up to ``capacity`` feeds, checkpointed and fenced in Redis.

A worker is one process (or one task) with one Lens client and one Redis client:

* **Claiming.** It reads new feeds from the queue's consumer group
  (``XREADGROUP``) and takes over feeds whose owner's lease lapsed
  (``XAUTOCLAIM`` with ``min-idle-time = lease``), up to ``capacity`` feeds.
* **Lease.** Every ``lease / 3`` seconds it renews the lease of each feed it
  runs (the pending entry's idle time, reset by ``XCLAIM``, only while the entry
  is still its own) and reads their status (for ``cancel``). A feed it finds it
  no longer holds is stopped at once, without a write.
* **One feed** (taking it, its session, its events, its end) is run by
  :class:`~aiolens.fleet.runner.FeedRunner`, this class's base. ``Fleet.cancel``
  destroys the session and ends the feed (status ``cancelled``).
* **Stop** (:meth:`FleetWorker.stop`, SIGTERM in the CLI): no more claims (the
  read under way finishes and what it claimed is handed straight back); each
  feed's reader stops (cancelled, again if a cancellation is lost below it, and
  stopped at its next event regardless), its queued events are written, and
  every feed, also those not yet taken, is handed back to the queue in one
  pipeline (a fresh entry that any worker claims at once); sessions are left
  running. Every wait is bounded by ``handoff_timeout``: a feed that is not
  stopped or flushed by then is left to lapse (its new owner resumes from the
  checkpoint), so a stop never hangs on one feed.
* **Redis down**: readers wait on the writer (bounded), the writer, the renewer
  and the claimer retry with backoff; sessions stay open. After Redis comes back,
  feeds whose leases others took meanwhile are stopped; the rest go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from typing import Any

from aiolens._core.backoff import Backoff
from aiolens._core.redact import get_logger
from aiolens.archetype.client import AsyncArchetypeClient
from aiolens.errors import ConfigurationError
from aiolens.fleet.runner import REDIS_DOWN, FeedRunner, RunningFeed
from aiolens.fleet.store import Claim, FleetStore

__all__ = ["FleetWorker"]

log: logging.Logger = get_logger("fleet")


class FleetWorker(FeedRunner):
    """Run feeds of the fleet; see the module docs for the protocol.

    ::

        async with AsyncArchetypeClient() as lens, redis.asyncio.from_url(url) as r:
            worker = FleetWorker(r, lens, capacity=500)
            await worker.run()  # until worker.stop()

    Args:
        redis: a ``redis.asyncio.Redis`` client (not closed here).
        lens: the Lens client the feeds' sessions are made and attached with.
        name: the consumer name in the group; ``host-pid`` by default. Two live
            workers must not share a name.
        capacity: feeds run at once.
        lease: seconds a feed's lease lasts without renewal; another worker
            takes the feed over after it lapses.
        prefix: the fleet's key prefix.
        max_pending: events waiting for Redis at most (see ``ResultWriter``).
        max_opening: sessions created or attached at once (a worker that claims
            thousands of feeds does not open thousands of handshakes at once).
        handoff_timeout: on :meth:`stop`, seconds to wait for a feed's queued
            events to be written before handing it back; a feed not flushed by
            then is left to lapse (its new owner resumes from the checkpoint).
        cancel_grace: after a cancel destroyed a session, seconds to wait for
            its stream's end event before closing the feed out anyway.
        session_options: options for ``client.attach`` (heartbeats ...).
        stream_queue: each feed's SSE queue bound (events).

    Attributes:
        store: the Redis calls (``store.round_trips`` counts round trips).
        writer: the results writer (``writer.events_written``).
        takeovers: feeds taken over from a lapsed lease.
    """

    def __init__(
        self,
        redis: Any,
        lens: AsyncArchetypeClient,
        *,
        name: str | None = None,
        capacity: int = 100,
        lease: float = 30.0,
        prefix: str | None = None,
        max_pending: int = 20_000,
        handoff_timeout: float = 10.0,
        cancel_grace: float = 10.0,
        session_options: dict[str, Any] | None = None,
        stream_queue: int = 256,
        max_opening: int = 64,
    ) -> None:
        if capacity < 1:
            raise ConfigurationError("capacity must be at least 1")
        if not lease > 0:
            raise ConfigurationError("lease must be more than 0 seconds")
        super().__init__(
            FleetStore(redis, prefix) if prefix else FleetStore(redis),
            lens,
            name or f"{socket.gethostname()}-{os.getpid()}",
            max_pending=max_pending,
            max_opening=max_opening,
            cancel_grace=cancel_grace,
            session_options=session_options,
            stream_queue=stream_queue,
            backoff=Backoff(initial=min(0.2, lease / 4), maximum=min(5.0, lease)),
        )
        self.capacity = capacity
        self.lease = lease
        self.handoff_timeout = handoff_timeout
        self.takeovers: int = 0
        self._feeds: dict[str, RunningFeed] = {}
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        self._closed = False  # handed back: the renewer stops
        # A blocking read shorter than redis-py's default socket timeout (5 s), and short
        # enough that lapsed leases are looked for often (and a stop waits little for it).
        self._block = min(self.lease / 4, 1.0)

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def feeds(self) -> list[str]:
        """Ids of the feeds running now."""
        return sorted(self._feeds)

    def stop(self) -> None:
        """Ask :meth:`run` to stop claiming, hand its feeds back and return (see the
        module docs: bounded by ``handoff_timeout`` per step, however many feeds)."""
        self._stopping.set()
        self._room.set()  # a claimer waiting for room looks again, and sees the stop

    async def run(self) -> None:
        """Claim and run feeds until :meth:`stop`; then hand them back and return.

        Stop: the claimer finishes its read (at most a quarter lease, 1 s) and hands
        back what it got; the feeds are handed back (see :meth:`_hand_back_all`).
        Cancel: feeds are stopped without hand-off (their leases lapse) and
        their connections closed; sessions are left running. A feed task that
        does not end when cancelled (a cancellation lost below it) is cancelled
        again for up to ``handoff_timeout``, then left behind with a warning.

        Raises:
            Exception: a bug in the worker's own tasks (never swallowed).
        """
        await self._retry(self.store.ensure_group, "create the consumer group")
        try:
            async with asyncio.TaskGroup() as group:
                writer = group.create_task(self.writer.run(), name="fleet writer")
                renewer = group.create_task(self._renew_loop(), name="fleet renew")
                claimer = group.create_task(self._claim_loop(), name="fleet claim")
                await self._stopping.wait()
                # Its read returns within the block time; not while Redis is away.
                await asyncio.wait((claimer,), timeout=self._block + 2.0)
                claimer.cancel()
                await self._hand_back_all()
                self._closed = True  # the renewer and the writer end at their next turn,
                self.writer.stop()  # and are cancelled (again and again) meanwhile
                await _stop_tasks([renewer, writer], self.handoff_timeout)
        finally:
            tasks = [f.task for f in self._feeds.values() if f.task is not None]
            left = await _stop_tasks(tasks, self.handoff_timeout)
            for task in left:
                log.warning("fleet %s: %s did not stop; left behind", self.name, task.get_name())

    # ---- claiming and leases --------------------------------------------------------------

    async def _claim_loop(self) -> None:
        """Claim feeds until :meth:`stop`. What a read returns after the stop is handed
        straight back. Cancel: a read under way is abandoned (entries it claimed
        lapse after a lease)."""
        lease_ms = max(1, int(self.lease * 1000))
        block_ms = max(1, int(self._block * 1000))
        while not self._stopping.is_set():
            free = self.capacity - len(self._feeds)
            if free <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            claims: list[Claim] = []
            # After an outage, owners get one lease to renew before leases count as lapsed.
            if time.monotonic() - self._redis_back_at > self.lease:
                lapsed = await self._retry(
                    functools.partial(self.store.claim_lapsed, self.name, free, lease_ms), "claim"
                )
                self.takeovers += sum(1 for c in lapsed if c.feed_id not in self._feeds)
                claims += lapsed
            if len(claims) < free and not self._stopping.is_set():
                wanted = free - len(claims)
                claims += await self._retry(
                    functools.partial(self.store.claim_new, self.name, wanted, block_ms), "claim"
                )
            claims = [c for c in claims if c.feed_id not in self._feeds]  # ours: renewed now
            if self._stopping.is_set():
                await self._release_unstarted(claims)
                return
            for claim in claims:
                self._start(claim)

    async def _release_unstarted(self, claims: list[Claim]) -> None:
        if claims:
            with contextlib.suppress(TimeoutError, *REDIS_DOWN):
                async with asyncio.timeout(self.handoff_timeout):
                    await self.store.hand_back(self.name, [(c, 0) for c in claims])

    def _start(self, claim: Claim) -> None:
        feed = RunningFeed(claim)
        self._feeds[claim.feed_id] = feed
        feed.task = asyncio.create_task(self._run_feed(feed), name=f"fleet feed {claim.feed_id}")
        feed.task.add_done_callback(lambda task: self._forget(feed, task))

    def _forget(self, feed: RunningFeed, task: asyncio.Task[None]) -> None:
        if self._feeds.get(feed.feed_id) is feed:
            del self._feeds[feed.feed_id]
        error = None if task.cancelled() else task.exception()
        if error is not None and not feed.handing_off:  # its entry lapses: retried then
            log.error("fleet %s: feed %s stopped by %r", self.name, feed.feed_id, error)
        self.writer.forget(feed)
        self._room.set()

    async def _renew_loop(self) -> None:
        interval = self.lease / 3
        while not self._closed:
            await asyncio.sleep(interval)
            feeds = [f for f in self._feeds.values() if not (f.handing_off or f.closing)]
            if not feeds:
                continue
            try:
                lost = await self.store.renew(self.name, [f.claim.entry_id for f in feeds])
                statuses = await self.store.poll_status([f.feed_id for f in feeds])
            except REDIS_DOWN as exc:
                log.warning("fleet %s: cannot renew leases (%s)", self.name, exc)
                self._redis_back_at = float("inf")
                continue
            if self._redis_back_at == float("inf"):
                self._redis_back_at = time.monotonic()
            for feed, status in zip(feeds, statuses, strict=True):
                if feed.closing or feed.handing_off:  # finished or handed back meanwhile
                    continue
                if feed.claim.entry_id in lost:
                    log.warning("fleet %s: lease of feed %s lost", self.name, feed.feed_id)
                    feed.fenced()
                elif status == "cancelling":
                    feed.cancel_requested.set()

    # ---- stopping ---------------------------------------------------------------------------

    async def _hand_back_all(self) -> None:
        """Stop every feed's reader, write what they read, requeue them in one pipeline.

        Feeds closing out get ``handoff_timeout`` to finish; readers are cancelled
        (repeatedly, for up to ``handoff_timeout``); their events are flushed (up to
        ``handoff_timeout``); then every feed still ours, taken or not yet, gets a
        fresh queue entry. A feed not stopped or not flushed in time, or that was
        taken over, is not handed back: its lease lapses (nothing is lost, its new
        owner resumes from the checkpoint). Cancel: the hand-back stops where it is.
        """
        feeds = list(self._feeds.values())
        if not feeds:
            return
        log.info("fleet %s: handing back %d feed(s)", self.name, len(feeds))
        for feed in feeds:
            feed.handing_off = True
        closing = [f.task for f in feeds if f.closing and f.task is not None]
        if closing:  # over anyway: let them finish closing out
            await asyncio.wait(closing, timeout=self.handoff_timeout)
        tasks = [f.task for f in feeds if f.task is not None]
        stuck = set(await _stop_tasks(tasks, self.handoff_timeout))
        back: list[RunningFeed] = []
        for feed in feeds:
            if feed.task in stuck:
                log.warning(
                    "fleet %s: feed %s did not stop; its lease will lapse", self.name, feed.feed_id
                )
            elif not (feed.closing or feed.lost):
                back.append(feed)
        flushing = {f: asyncio.ensure_future(self.writer.flushed(f)) for f in back if f.epoch}
        if flushing:
            await asyncio.wait(flushing.values(), timeout=self.handoff_timeout)
        for feed, waiter in flushing.items():
            if not waiter.done():
                waiter.cancel()
                back.remove(feed)
                log.warning(
                    "fleet %s: feed %s not flushed; its lease will lapse", self.name, feed.feed_id
                )
        try:
            async with asyncio.timeout(self.handoff_timeout):
                done = await self.store.hand_back(self.name, [(f.claim, f.epoch) for f in back])
        except (TimeoutError, *REDIS_DOWN) as exc:
            log.warning(
                "fleet %s: %d feed(s) not handed back (%s); their leases will lapse",
                self.name,
                len(back),
                type(exc).__name__,
            )
            return
        if not all(done) or len(back) < len(feeds):
            log.info("fleet %s: handed back %d of %d feed(s)", self.name, sum(done), len(feeds))


async def _stop_tasks(tasks: list[asyncio.Task[None]], timeout: float) -> list[asyncio.Task[None]]:
    """Cancel ``tasks`` and wait until they end, cancelling again every 0.5 s (a
    cancellation swallowed below a task does not keep it running); returns those not
    ended after ``timeout`` seconds. Cancel: the caller stops waiting (every task was
    cancelled at least once) and nothing cancels them again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(0.5, left))
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("fleet: %s ended with %r", task.get_name(), task.exception())
    return [t for t in tasks if not t.done()]
