"""The per-feed half of a fleet worker: take a feed, run its session, close it out.

:class:`FeedRunner` is :class:`~aiolens.fleet.worker.FleetWorker`'s base: it holds
what a feed needs (the Redis store, the Lens client, the results writer, the
opening bound) and runs one feed from its claim to its end. The claim, renew and
hand-back loop is in :mod:`aiolens.fleet.worker`.

* **Taking a feed** increments its fencing epoch. A feed without a session gets
  one (``sessions.create``; its lens registered first when the spec gives a
  config), recorded in Redis under the epoch before anything else. A feed with a
  session is attached to (no new session) and its SSE stream resumed with
  ``Last-Event-ID`` = the checkpoint.
* **Events** go through the worker's :class:`~aiolens.fleet.writer.ResultWriter`.
* **End.** When the stream ends (``sse.stream.end``, written last), the feed is
  closed out: session destroyed, lens deleted if the feed registered it, status
  ``ended``, queue entry removed.

Cancel / stop: a feed's task is cancelled to stop it (hand-back, shutdown); the
session's connections are closed (shielded), the session itself is left
running. A feed being handed back (:attr:`RunningFeed.handing_off`) also stops
at its next event or reconnect (:class:`Stopped`, caught: its task just ends)
even when the cancellation was lost below it, as it can be inside a redis-py
command waiting for a ``BlockingConnectionPool`` connection; so a hand-back
never waits on a reader that goes on streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import redis.exceptions as rexc

from aiolens._core.backoff import Backoff
from aiolens._core.redact import get_logger
from aiolens._transport.shielded import finish_or_undo
from aiolens.archetype.client import AsyncArchetypeClient
from aiolens.archetype.events import RawEvent
from aiolens.errors import APIConnectionError, APIStatusError, StreamResumeError
from aiolens.fleet.spec import TERMINAL
from aiolens.fleet.store import Claim, FeedState, FleetStore
from aiolens.fleet.writer import ResultWriter

__all__ = ["REDIS_DOWN", "FeedRunner", "Lost", "RunningFeed", "Stopped"]

log: logging.Logger = get_logger("fleet")

T = TypeVar("T")

_START: Final = "sse.stream.start"
_END: Final = "sse.stream.end"
REDIS_DOWN: Final = (rexc.ConnectionError, rexc.TimeoutError, OSError)
"""What redis-py raises when Redis cannot be reached (retried, never a bug)."""


class Lost(Exception):
    """The feed is no longer ours (fenced or lease lost)."""


class Stopped(Exception):
    """The feed is being handed back: its reader stops here."""


class RunningFeed:
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

    def check(self) -> None:
        """Raise :class:`Lost` or :class:`Stopped` when the feed must not go on."""
        if self.lost:
            raise Lost
        if self.handing_off:
            raise Stopped


class FeedRunner:
    """Runs single feeds for a worker; see the module docs.

    Args:
        store: the fleet's Redis calls.
        lens: the Lens client the feeds' sessions are made and attached with.
        name: the consumer name (the owner recorded in each feed's state).
        max_pending: events waiting for Redis at most (see ``ResultWriter``).
        max_opening: sessions created or attached at once.
        cancel_grace: after a cancel destroyed a session, seconds to wait for its
            stream's end event before closing the feed out anyway.
        session_options: options for ``client.attach``.
        stream_queue: each feed's SSE queue bound (events).
        backoff: delays between retries (Redis and the Lens service).
    """

    def __init__(
        self,
        store: FleetStore,
        lens: AsyncArchetypeClient,
        name: str,
        *,
        max_pending: int,
        max_opening: int,
        cancel_grace: float,
        session_options: dict[str, Any] | None,
        stream_queue: int,
        backoff: Backoff,
    ) -> None:
        self.store = store
        self.lens = lens
        self.name = name
        self.cancel_grace = cancel_grace
        self.session_options: dict[str, Any] = dict(session_options or {})
        self.stream_queue = stream_queue
        self.writer: ResultWriter = ResultWriter(store, max_pending=max_pending)
        self.backoff = backoff
        self._opening = asyncio.Semaphore(max_opening)
        self._redis_back_at = 0.0  # monotonic time Redis answered again after an outage

    async def _retry(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        attempt = 0
        while True:
            try:
                result = await call()
            except REDIS_DOWN as exc:
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("fleet %s: cannot %s (%s); retry in %.2fs", self.name, what, exc, delay)
                self._redis_back_at = float("inf")
                await asyncio.sleep(delay)
                continue
            if attempt:
                self._redis_back_at = time.monotonic()
            return result

    # ---- one feed -------------------------------------------------------------------------

    async def _run_feed(self, feed: RunningFeed) -> None:
        """Take the feed, stream it to its end, close it out (the body of ``feed.task``).

        Cancel (hand-back, shutdown): the session's connections are closed and the
        session left running; queued events stay with the writer. A feed whose
        lease was lost, or that is being handed back, ends without closing out.
        """
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
        except Lost:
            log.info("fleet %s: feed %s stopped (taken over)", self.name, feed.feed_id)
        except Stopped:
            log.info("fleet %s: feed %s stopped (handed back)", self.name, feed.feed_id)
        except (StreamResumeError, APIStatusError) as exc:
            if feed.lost or feed.handing_off:
                raise
            log.error("fleet %s: feed %s failed: %s", self.name, feed.feed_id, exc)
            await self._fail(feed, state, exc)

    async def _stream(self, feed: RunningFeed, state: FeedState) -> None:
        """Make or attach the session, then write its events until the stream ends.

        Each (re)connection first checks the feed is still ours and not being handed
        back (:meth:`RunningFeed.check`), so a cancellation lost in a close below does
        not keep the feed streaming.
        """
        lens = self.lens
        if not state.session_id:
            await self._make_session(feed, state)
        cursor = state.last_id or ("0" if state.started else "")
        attempt = 0
        while True:
            feed.check()
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
            except TimeoutError as exc:
                if not feed.cancel_requested.is_set():  # not the cancel grace: retried below
                    await self._lens_retry(feed, exc, attempt)
                    attempt += 1
                    continue
                log.warning("fleet %s: feed %s: no end event after cancel", self.name, feed.feed_id)
                await self.writer.flushed(feed)
                return
            except (APIConnectionError, APIStatusError) as exc:
                if isinstance(exc, APIStatusError) and not exc.retryable:
                    raise
                await self._lens_retry(feed, exc, attempt)
                attempt += 1

    async def _lens_retry(self, feed: RunningFeed, exc: BaseException, attempt: int) -> None:
        delay = self.backoff.delay(attempt)
        log.warning(
            "fleet %s: feed %s: Lens unreachable (%s); retry in %.2fs",
            self.name,
            feed.feed_id,
            str(exc) or type(exc).__name__,
            delay,
        )
        await asyncio.sleep(delay)

    async def _on_cancel(
        self, feed: RunningFeed, state: FeedState, deadline: asyncio.Timeout
    ) -> None:
        await feed.cancel_requested.wait()
        log.info("fleet %s: cancelling feed %s", self.name, feed.feed_id)
        await self.lens.sessions.destroy_quietly(state.session_id)
        deadline.reschedule(asyncio.get_running_loop().time() + self.cancel_grace)

    async def _put(self, feed: RunningFeed, event: RawEvent, cursor: str) -> None:
        """Queue one event; ``cursor`` is the id before it (an event that repeats it has
        no id of its own: the SSE id persists across frames)."""
        feed.check()
        own_id = event.id if event.id != cursor else ""
        await self.writer.put(feed, (own_id, event.type, event.data), final=event.type == _END)

    async def _set(self, feed: RunningFeed, **fields: str) -> None:
        ok = await self._retry(
            lambda: self.store.set_fields(feed.feed_id, feed.epoch, **fields), "record state"
        )
        if not ok:
            feed.lost = True
            raise Lost

    async def _make_session(self, feed: RunningFeed, state: FeedState) -> None:
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
                except Lost:
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
        except Lost:
            await lens.sessions.destroy_quietly(info.session_id)
            raise
        state.session_id, state.endpoint = info.session_id, info.session_endpoint or ""

    async def _close_out(
        self, feed: RunningFeed, state: FeedState, status: str, **fields: str
    ) -> None:
        """The feed is over: destroy its session (and lens), record ``status`` (and
        ``fields``), dequeue it."""
        feed.closing = True
        if state.session_id:
            await self.lens.sessions.destroy_quietly(state.session_id)
        if state.lens_owned and state.lens_id:
            await _quietly(self.lens.lenses.delete(state.lens_id))
        with contextlib.suppress(Lost):
            await self._set(feed, status=status, owner="", **fields)
        await self._retry(lambda: self.store.finish(feed.claim), "finish feed")
        log.info("fleet %s: feed %s %s", self.name, feed.feed_id, status)

    async def _fail(self, feed: RunningFeed, state: FeedState, error: BaseException) -> None:
        """Write what the feed read, then close it out as ``failed`` with the error."""
        feed.closing = True
        await self.writer.flushed(feed)
        await self._close_out(feed, state, "failed", error=str(error)[:500])


async def _quietly(call: Awaitable[Any]) -> None:
    try:
        await call
    except Exception as exc:
        log.warning("fleet: clean-up call failed: %s", exc)
