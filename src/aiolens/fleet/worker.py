"""``FleetWorker``: runs up to ``capacity`` feeds, checkpointed and fenced in Redis.

A worker is one process (or one task) with one Lens client and one Redis client:

* **Claiming.** It reads new feeds from the queue's consumer group
  (``XREADGROUP``) and takes over feeds whose owner's lease lapsed
  (``XAUTOCLAIM`` with ``min-idle-time = lease``), up to ``capacity`` feeds.
* **Lease.** Every ``lease / 3`` seconds it renews the lease of each feed it
  runs (the pending entry's idle time, reset by ``XCLAIM``, only while the entry
  is still its own) and reads their status (for ``cancel``). A feed it finds it
  no longer holds is stopped at once, without a write.
* **Taking a feed** increments the feed's fencing epoch. A feed without a
  session gets one (``sessions.create``; its lens registered first when the spec
  gives a config), recorded in Redis under the epoch before anything else. A
  feed with a session is attached to (no new session) and its SSE stream resumed
  with ``Last-Event-ID`` = the checkpoint.
* **Events** go through the worker's :class:`~aiolens.fleet.writer.ResultWriter`:
  each is appended to the results in the same atomic step as the checkpoint
  update, conditional on the epoch.
* **End.** When the stream ends (``sse.stream.end``, written last), the feed is
  closed out: session destroyed, lens deleted if the feed registered it, status
  ``ended``, queue entry removed. ``Fleet.cancel`` destroys the session and
  ends the feed the same way (status ``cancelled``).
* **Stop** (:meth:`FleetWorker.stop`, SIGTERM in the CLI): no more claims; each
  feed's reader stops, its queued events are written, and it is handed back to
  the queue (a fresh entry that any worker claims at once); sessions are left
  running.
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
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import redis.exceptions as rexc

from aiolens._core.backoff import Backoff
from aiolens._core.redact import get_logger
from aiolens._transport.shielded import finish_or_undo
from aiolens.archetype.client import AsyncArchetypeClient
from aiolens.archetype.events import RawEvent
from aiolens.errors import (
    APIConnectionError,
    APIStatusError,
    ConfigurationError,
    StreamResumeError,
)
from aiolens.fleet.spec import TERMINAL
from aiolens.fleet.store import Claim, FeedState, FleetStore
from aiolens.fleet.writer import ResultWriter

__all__ = ["FleetWorker"]

log: logging.Logger = get_logger("fleet")

T = TypeVar("T")

_START: Final = "sse.stream.start"
_END: Final = "sse.stream.end"
_REDIS_DOWN: Final = (rexc.ConnectionError, rexc.TimeoutError, OSError)


class _Lost(Exception):
    """The feed is no longer ours (fenced or lease lost)."""


class _Feed:
    """One feed this worker runs (a writer :class:`~aiolens.fleet.writer.Target`)."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.feed_id = claim.feed_id
        self.epoch = 0
        self.maxlen = 0
        self.task: asyncio.Task[None] | None = None
        self.lost = False
        self.handing_off = False
        self.closing = False  # closing out: its queue entry is about to go
        self.cancel_requested = asyncio.Event()

    def fenced(self) -> None:
        self.lost = True
        if self.task is not None and not self.handing_off:
            self.task.cancel()


class FleetWorker:
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
        self.store: FleetStore = FleetStore(redis, prefix) if prefix else FleetStore(redis)
        self.lens = lens
        self.name: str = name or f"{socket.gethostname()}-{os.getpid()}"
        self.capacity = capacity
        self.lease = lease
        self.handoff_timeout = handoff_timeout
        self.cancel_grace = cancel_grace
        self.session_options: dict[str, Any] = dict(session_options or {})
        self.stream_queue = stream_queue
        self.writer: ResultWriter = ResultWriter(self.store, max_pending=max_pending)
        self.backoff: Backoff = Backoff(initial=min(0.2, lease / 4), maximum=min(5.0, lease))
        self.takeovers: int = 0
        self._feeds: dict[str, _Feed] = {}
        self._opening = asyncio.Semaphore(max_opening)
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        self._redis_back_at = 0.0  # monotonic time Redis answered again after an outage

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def feeds(self) -> list[str]:
        """Ids of the feeds running now."""
        return sorted(self._feeds)

    def stop(self) -> None:
        """Ask :meth:`run` to stop claiming, hand its feeds back and return."""
        self._stopping.set()

    async def run(self) -> None:
        """Claim and run feeds until :meth:`stop`; then hand them back and return.

        Cancel: feeds are stopped without hand-off (their leases lapse) and
        their connections closed; sessions are left running.

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
                claimer.cancel()
                await self._hand_back_all()
                renewer.cancel()
                writer.cancel()
        finally:
            for feed in list(self._feeds.values()):
                if feed.task is not None:
                    feed.task.cancel()
            tasks = [f.task for f in self._feeds.values() if f.task is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _retry(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        attempt = 0
        while True:
            try:
                result = await call()
            except _REDIS_DOWN as exc:
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("fleet %s: cannot %s (%s); retry in %.2fs", self.name, what, exc, delay)
                self._redis_back_at = float("inf")
                await asyncio.sleep(delay)
                continue
            if attempt:
                self._redis_back_at = time.monotonic()
            return result

    # ---- claiming and leases --------------------------------------------------------------

    async def _claim_loop(self) -> None:
        lease_ms = max(1, int(self.lease * 1000))
        # A blocking read shorter than redis-py's default socket timeout (5 s), and short
        # enough that lapsed leases are looked for often.
        block_ms = max(1, int(min(self.lease / 4, 1.0) * 1000))
        while True:
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
            if len(claims) < free:
                wanted = free - len(claims)
                claims += await self._retry(
                    functools.partial(self.store.claim_new, self.name, wanted, block_ms), "claim"
                )
            for claim in claims:
                if claim.feed_id in self._feeds:
                    continue  # our own entry, idle while Redis was away: renewed now
                self._start(claim)

    def _start(self, claim: Claim) -> None:
        feed = _Feed(claim)
        self._feeds[claim.feed_id] = feed
        feed.task = asyncio.create_task(self._run_feed(feed), name=f"fleet feed {claim.feed_id}")
        feed.task.add_done_callback(lambda _: self._forget(feed))

    def _forget(self, feed: _Feed) -> None:
        if self._feeds.get(feed.feed_id) is feed:
            del self._feeds[feed.feed_id]
        self.writer.forget(feed)
        self._room.set()

    async def _renew_loop(self) -> None:
        interval = self.lease / 3
        while True:
            await asyncio.sleep(interval)
            feeds = [f for f in self._feeds.values() if not (f.handing_off or f.closing)]
            if not feeds:
                continue
            try:
                lost = await self.store.renew(self.name, [f.claim.entry_id for f in feeds])
                statuses = await self.store.poll_status([f.feed_id for f in feeds])
            except _REDIS_DOWN as exc:
                log.warning("fleet %s: cannot renew leases (%s)", self.name, exc)
                self._redis_back_at = float("inf")
                continue
            if self._redis_back_at == float("inf"):
                self._redis_back_at = time.monotonic()
            for feed, status in zip(feeds, statuses, strict=True):
                if feed.closing:  # it finished meanwhile and removed its own entry
                    continue
                if feed.claim.entry_id in lost:
                    log.warning("fleet %s: lease of feed %s lost", self.name, feed.feed_id)
                    feed.fenced()
                elif status == "cancelling":
                    feed.cancel_requested.set()

    async def _hand_back_all(self) -> None:
        feeds = list(self._feeds.values())
        if feeds:
            log.info("fleet %s: handing back %d feed(s)", self.name, len(feeds))
            await asyncio.gather(*(self._hand_back(f) for f in feeds))

    async def _hand_back(self, feed: _Feed) -> None:
        """Stop the feed's reader, write what it read, then requeue it for another worker."""
        feed.handing_off = True
        task = feed.task
        if feed.closing and task is not None:  # over anyway: let it finish closing out
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.handoff_timeout):
                    await asyncio.gather(task, return_exceptions=True)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if feed.closing:
            return
        if feed.lost or not feed.epoch:
            return
        try:
            async with asyncio.timeout(self.handoff_timeout):
                await self.writer.flushed(feed)
                await self.store.set_fields(feed.feed_id, feed.epoch, owner="")
                await self.store.release(self.name, feed.claim)
        except (TimeoutError, *_REDIS_DOWN) as exc:
            log.warning(
                "fleet %s: feed %s not handed back (%s); its lease will lapse",
                self.name,
                feed.feed_id,
                type(exc).__name__,
            )

    # ---- one feed -------------------------------------------------------------------------

    async def _run_feed(self, feed: _Feed) -> None:
        async with self._opening:
            state = await self._retry(lambda: self.store.take(feed.feed_id, self.name), "take feed")
        if state is None or state.status in TERMINAL:
            await self._retry(lambda: self.store.finish(feed.claim), "finish feed")
            return
        feed.epoch = state.epoch
        feed.maxlen = state.spec.results_maxlen
        log.info("fleet %s: took feed %s (epoch %d)", self.name, feed.feed_id, feed.epoch)
        try:
            if state.status == "cancelling":
                feed.cancel_requested.set()
            if not state.ended and not (feed.cancel_requested.is_set() and not state.session_id):
                await self._stream(feed, state)
            ending = "cancelled" if feed.cancel_requested.is_set() else "ended"
            await self._close_out(feed, state, ending)
        except _Lost:
            log.info("fleet %s: feed %s stopped (taken over)", self.name, feed.feed_id)
        except (StreamResumeError, APIStatusError) as exc:
            if feed.lost or feed.handing_off:
                raise
            log.error("fleet %s: feed %s failed: %s", self.name, feed.feed_id, exc)
            await self._fail(feed, state, exc)

    async def _stream(self, feed: _Feed, state: FeedState) -> None:
        """Make or attach the session, then write its events until the stream ends."""
        lens = self.lens
        if not state.session_id:
            await self._make_session(feed, state)
        cursor = state.last_id or ("0" if state.started else "")
        attempt = 0
        while True:
            try:
                async with contextlib.AsyncExitStack() as stack:
                    async with self._opening:  # a bounded number of handshakes at once
                        session = await stack.enter_async_context(
                            lens.attach(
                                state.session_id, state.endpoint or None, **self.session_options
                            )
                        )
                    stream = session.raw_events(last_event_id=cursor, queue_size=self.stream_queue)
                    async with stream:
                        if not state.started:
                            await session.set_output_stream(state.spec.output_stream)
                            first = await anext(stream)  # sse.stream.start: the stream is open
                            if first.type != _START:
                                await self._put(feed, first, cursor)
                                cursor = first.id or cursor
                            spec_input = state.spec.input_stream
                            if spec_input is not None:
                                await session.set_input_stream(
                                    spec_input.stream_type, **spec_input.stream_config
                                )
                            await self._set(feed, started="1")
                            state.started = True
                        async with asyncio.timeout(None) as deadline:
                            waiter = asyncio.create_task(self._on_cancel(feed, state, deadline))
                            try:
                                async for event in stream:
                                    attempt = 0
                                    if event.type == _START:
                                        continue
                                    await self._put(feed, event, cursor)
                                    cursor = event.id or cursor
                                    if event.type == _END:
                                        await self.writer.flushed(feed)
                                        return
                            finally:
                                waiter.cancel()
                # the stream stopped before its end event (attach closed it): resume
            except TimeoutError:
                log.warning("fleet %s: feed %s: no end event after cancel", self.name, feed.feed_id)
                await self.writer.flushed(feed)
                return
            except (APIConnectionError, APIStatusError) as exc:
                if isinstance(exc, APIStatusError) and not exc.retryable:
                    raise
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning(
                    "fleet %s: feed %s: Lens unreachable (%s); retry in %.2fs",
                    self.name,
                    feed.feed_id,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
            if feed.lost:
                raise _Lost

    async def _on_cancel(self, feed: _Feed, state: FeedState, deadline: asyncio.Timeout) -> None:
        await feed.cancel_requested.wait()
        log.info("fleet %s: cancelling feed %s", self.name, feed.feed_id)
        await self.lens.sessions.destroy_quietly(state.session_id)
        deadline.reschedule(asyncio.get_running_loop().time() + self.cancel_grace)

    async def _put(self, feed: _Feed, event: RawEvent, cursor: str) -> None:
        """Queue one event; ``cursor`` is the id before it (an event that repeats it has
        no id of its own: the SSE id persists across frames)."""
        if feed.lost:
            raise _Lost
        own_id = event.id if event.id != cursor else ""
        await self.writer.put(feed, (own_id, event.type, event.data), final=event.type == _END)

    async def _set(self, feed: _Feed, **fields: str) -> None:
        ok = await self._retry(
            lambda: self.store.set_fields(feed.feed_id, feed.epoch, **fields), "record state"
        )
        if not ok:
            feed.lost = True
            raise _Lost

    async def _make_session(self, feed: _Feed, state: FeedState) -> None:
        lens = self.lens
        spec = state.spec
        if not state.lens_id:
            if spec.lens_id is not None:
                state.lens_id = spec.lens_id
            else:
                assert spec.lens_config is not None
                made = await finish_or_undo(
                    lens.lenses.register(spec.lens_config, lens_name=f"fleet {spec.feed_id}"),
                    lambda lens_made: _quietly(lens.lenses.delete(lens_made.lens_id)),
                    timeout=10.0,
                )
                state.lens_id, state.lens_owned = made.lens_id, True
                try:
                    await self._set(feed, lens_id=made.lens_id, lens_owned="1")
                except _Lost:
                    await _quietly(lens.lenses.delete(made.lens_id))
                    raise
        async with self._opening:
            info = await finish_or_undo(
                lens.sessions.create(state.lens_id),
                lambda made: lens.sessions.destroy_quietly(made.session_id),
                timeout=10.0,
            )
        try:
            await self._set(feed, session_id=info.session_id, endpoint=info.session_endpoint or "")
        except _Lost:
            await lens.sessions.destroy_quietly(info.session_id)
            raise
        state.session_id, state.endpoint = info.session_id, info.session_endpoint or ""

    async def _close_out(self, feed: _Feed, state: FeedState, status: str, **fields: str) -> None:
        """The feed is over: destroy its session (and lens), record ``status`` (and
        ``fields``), dequeue it."""
        feed.closing = True
        if state.session_id:
            await self.lens.sessions.destroy_quietly(state.session_id)
        if state.lens_owned and state.lens_id:
            await _quietly(self.lens.lenses.delete(state.lens_id))
        with contextlib.suppress(_Lost):
            await self._set(feed, status=status, owner="", **fields)
        await self._retry(lambda: self.store.finish(feed.claim), "finish feed")
        log.info("fleet %s: feed %s %s", self.name, feed.feed_id, status)

    async def _fail(self, feed: _Feed, state: FeedState, error: BaseException) -> None:
        """Write what the feed read, then close it out as ``failed`` with the error."""
        feed.closing = True
        await self.writer.flushed(feed)
        await self._close_out(feed, state, "failed", error=str(error)[:500])


async def _quietly(call: Awaitable[Any]) -> None:
    try:
        await call
    except Exception as exc:
        log.warning("fleet: clean-up call failed: %s", exc)
