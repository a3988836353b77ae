"""``ResultWriter``: a worker's one path into Redis for events, batched across feeds.

Feed readers :meth:`~ResultWriter.put` events; one writer task takes everything
waiting, groups it by feed, and sends one fenced append per feed (at most
:data:`CHUNK` events each) in one pipeline: one Redis round trip for all the
feeds' events that arrived while the previous batch was being written. The
batch grows with the load, so round trips per event fall as events per second
rise.

* **Bounded memory.** At most ``max_pending`` events wait (written or not yet
  confirmed); a reader's :meth:`~ResultWriter.put` then waits, so a slow Redis
  slows the SSE readers, and through TCP the Lens service, instead of growing
  memory.
* **Redis down.** A batch that fails with a connection error (or a Redis error
  reply) is retried with capped backoff until it is written: the appends are
  idempotent (see :mod:`aiolens.fleet.store`), so a batch whose reply was lost is
  not written twice. Scripts lost to a Redis restart are loaded again.
* **Fenced.** A feed whose epoch moved on (another worker took it) gets
  ``fenced()`` called; its events are dropped (the new owner resumes from the
  checkpoint).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Final, Protocol

import redis.exceptions as rexc

from aiolens._core.backoff import Backoff
from aiolens._core.redact import get_logger
from aiolens.fleet.store import FleetStore

__all__ = ["CHUNK", "ResultWriter", "Target"]

log: logging.Logger = get_logger("fleet")

CHUNK: Final = 512
"""Most events in one append script call (a script blocks Redis while it runs)."""

Event = tuple[str, str, str]  # (id, type, data)


class Target(Protocol):
    """A feed as the writer sees it."""

    feed_id: str
    epoch: int
    maxlen: int

    def fenced(self) -> None:
        """Another worker owns the feed now: stop it (called once, from the writer)."""


class _Queue:
    __slots__ = ("events", "final")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.final = False


class ResultWriter:
    """Batches fenced appends of many feeds into pipelines; see the module docs.

    Args:
        store: the fleet's Redis calls.
        max_pending: events waiting at most (across feeds); ``put`` waits beyond.
        backoff: delays between retries of a failed batch.

    Attributes:
        events_written: events Redis appended (duplicates skipped not counted).
        batches: pipelines sent successfully.
        retries: pipelines retried after an error.
    """

    def __init__(
        self, store: FleetStore, *, max_pending: int = 20_000, backoff: Backoff | None = None
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.store = store
        self.max_pending = max_pending
        self.backoff: Backoff = backoff or Backoff(initial=0.05, maximum=2.0)
        self._waiting: dict[Target, _Queue] = {}
        self._unwritten: collections.Counter[Target] = collections.Counter()
        self._count = 0
        self._work = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._flushed: dict[Target, list[asyncio.Future[None]]] = {}
        self._stopped = False
        self.events_written: int = 0
        self.batches: int = 0
        self.retries: int = 0

    @property
    def pending(self) -> int:
        """Events accepted and not yet confirmed written."""
        return self._count

    async def put(self, target: Target, event: Event, *, final: bool = False) -> None:
        """Queue one event of ``target``; waits while ``max_pending`` events wait.

        ``final``: the event ends the feed's stream (recorded with it). Cancel:
        the event is not queued.
        """
        while self._count >= self.max_pending:
            self._room.clear()
            await self._room.wait()
        queue = self._waiting.get(target)
        if queue is None:
            queue = self._waiting[target] = _Queue()
        queue.events.append(event)
        queue.final = queue.final or final
        self._unwritten[target] += 1
        self._count += 1
        self._work.set()

    async def flushed(self, target: Target) -> None:
        """Wait until every event queued for ``target`` is written (or dropped)."""
        if not self._unwritten[target]:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._flushed.setdefault(target, []).append(waiter)
        await waiter

    def forget(self, target: Target) -> None:
        """Drop the events of ``target`` not sent yet (it was fenced or given up)."""
        queue = self._waiting.pop(target, None)
        if queue is not None:
            self._done(target, len(queue.events))

    def _done(self, target: Target, count: int) -> None:
        self._count -= count
        left = self._unwritten[target] - count
        if left > 0:
            self._unwritten[target] = left
        else:
            del self._unwritten[target]
            for waiter in self._flushed.pop(target, ()):
                if not waiter.done():
                    waiter.set_result(None)
        if self._count < self.max_pending:
            self._room.set()

    def stop(self) -> None:
        """Make :meth:`run` return at its next turn (after the batch being written).

        For the owner's shutdown: a cancellation can be lost inside redis-py (a
        command awaiting a ``BlockingConnectionPool`` connection), so :meth:`run`
        must also end without one.
        """
        self._stopped = True
        self._work.set()

    async def run(self) -> None:
        """Write batches until cancelled or :meth:`stop`. Cancel: the batch being
        written is abandoned (its events are not confirmed; a new owner resumes from
        the checkpoint)."""
        while not self._stopped:
            await self._work.wait()
            self._work.clear()
            batch, self._waiting = self._waiting, {}
            if batch and not self._stopped:
                await self._write(batch)

    async def _write(self, batch: dict[Target, _Queue]) -> None:
        attempt = 0
        while batch:
            pipe = self.store.pipeline()
            calls: list[Target] = []
            for target, queue in batch.items():
                events = queue.events
                for start in range(0, len(events), CHUNK):
                    last = start + CHUNK >= len(events)
                    self.store.queue_append(
                        pipe,
                        target.feed_id,
                        target.epoch,
                        target.maxlen,
                        events[start : start + CHUNK],
                        final=queue.final and last,
                    )
                    calls.append(target)
            try:
                replies = await self.store.execute(pipe)
            except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
                delay = self.backoff.delay(attempt)
                attempt += 1
                self.retries += 1
                log.warning("fleet: Redis write failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            failed: set[Target] = set()
            fenced: set[Target] = set()
            missing_script = False
            for target, reply in zip(calls, replies, strict=True):
                if isinstance(reply, rexc.NoScriptError):
                    missing_script = True
                    failed.add(target)
                elif isinstance(reply, Exception):
                    log.warning("fleet: append for feed %s failed: %s", target.feed_id, reply)
                    failed.add(target)
                elif reply == -1:
                    fenced.add(target)
                else:
                    self.events_written += int(reply)
            self.batches += 1
            for target in list(batch):
                if target in failed and target not in fenced:
                    continue
                queue = batch.pop(target)
                if target in fenced:
                    self._fence(target, len(queue.events))
                else:
                    self._done(target, len(queue.events))
            if batch:
                self.retries += 1
                if missing_script:
                    with contextlib.suppress(rexc.RedisError, OSError):
                        await self.store.load_scripts()
                await asyncio.sleep(self.backoff.delay(attempt))
                attempt += 1

    def _fence(self, target: Target, count: int) -> None:
        log.warning("fleet: feed %s was taken over; its writer stops", target.feed_id)
        self._done(target, count)
        self.forget(target)
        try:
            target.fenced()
        except Exception:
            log.exception("fleet: fenced() of feed %s failed", target.feed_id)
