"""One bounded buffer between a producer and its consumers, with a drop-oldest policy.

:class:`ItemBuffer` is what the SSE consumer (:mod:`aiolens._transport.sse`) and the
Kynasmith detection session's ``events()`` queue items in: a deque bounded by hand, its
waiting consumers and its waiting producer as futures (``asyncio.Queue``'s rules,
without its per-item coroutines and bookkeeping).

* :meth:`ItemBuffer.push` never waits: past the bound it discards the oldest items and
  counts them in :attr:`ItemBuffer.dropped` (the drop-oldest policy);
  :meth:`ItemBuffer.extend` does the same for many items at once.
* A producer that must not drop waits with :meth:`ItemBuffer.wait_for_room` until the
  consumers have made room for as many items as it needs (the block policy); consumers
  wake it only then, through :meth:`ItemBuffer.taken`.
* Consumers take items from :attr:`ItemBuffer.items` themselves (``popleft``; then
  :meth:`taken`) and wait with :meth:`ItemBuffer.wait_for_item` when it is empty.

Cancelling a waiting consumer or producer loses no item: a wake-up that a cancelled
waiter received is passed on to the next one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterable
from typing import Generic, TypeVar

__all__ = ["ItemBuffer"]

T = TypeVar("T")


class ItemBuffer(Generic[T]):
    """A FIFO of at most ``size`` items (see the module docs for the policies).

    Attributes:
        items: the queued items, oldest first; consumers ``popleft`` from it.
        size: the bound.
        dropped: items discarded by :meth:`push` and :meth:`extend` to stay in bound.
        producers: the waiting producer, if any (consumers call :meth:`taken` only
            while it is not empty: the check costs less than the call).
    """

    __slots__ = ("_getters", "_room", "dropped", "items", "producers", "size")

    def __init__(self, size: int) -> None:
        self.items: collections.deque[T] = collections.deque()
        self.size = size
        self.dropped = 0
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.producers: collections.deque[asyncio.Future[None]] = collections.deque()
        self._room = 1  # the room the waiting producer needs

    def push(self, item: T) -> None:
        """Queue ``item``; past the bound the oldest items are dropped and counted."""
        items = self.items
        items.append(item)
        while len(items) > self.size:
            items.popleft()
            self.dropped += 1
        if self._getters:
            _wake_first(self._getters)

    def extend(self, new: Iterable[T], count: int) -> None:
        """Queue ``count`` items at once (as :meth:`push` on each would)."""
        items = self.items
        items.extend(new)
        for _ in range(len(items) - self.size):
            items.popleft()
            self.dropped += 1
        self.wake_consumers(count)

    def append(self, item: T) -> None:
        """Queue ``item`` even past the bound (a last word that must not wait or drop)."""
        self.items.append(item)
        self.wake_consumers(1)

    def has_room(self, count: int = 1) -> bool:
        """Whether ``count`` more items fit without dropping any."""
        return self.size - len(self.items) >= count

    def wake_consumers(self, count: int) -> None:
        """Wake up to ``count`` waiting consumers (that many items arrived)."""
        getters = self._getters
        for _ in range(min(count, len(getters))):
            _wake_first(getters)

    def wake_all_consumers(self) -> None:
        """Wake every waiting consumer (the stream is over)."""
        for getter in self._getters:
            if not getter.done():
                getter.set_result(None)
        self._getters.clear()

    def taken(self) -> None:
        """A consumer took an item: wake the producer once there is the room it waits for."""
        if self.producers and self.size - len(self.items) >= self._room:
            _wake_first(self.producers)

    async def wait_for_item(self) -> None:
        """Wait until an item is queued (or :meth:`wake_all_consumers` is called)."""
        # No helper coroutine or closure: this runs once per wait, and with thousands of
        # streams such short-lived objects are promoted and walked by full collections.
        waiter = _enqueue(self._getters)
        try:
            await waiter
        except BaseException:
            _give_up(self._getters, waiter, bool(self.items))
            raise

    async def wait_for_room(self, room: int) -> None:
        """Wait until the consumers have made room for ``room`` items."""
        self._room = room
        waiter = _enqueue(self.producers)
        try:
            await waiter
        except BaseException:
            _give_up(self.producers, waiter, self.has_room(room))
            raise


def _enqueue(waiters: collections.deque[asyncio.Future[None]]) -> asyncio.Future[None]:
    """A new waiter, queued last in ``waiters``."""
    waiter = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    return waiter


def _give_up(
    waiters: collections.deque[asyncio.Future[None]], waiter: asyncio.Future[None], ready: bool
) -> None:
    """``waiter`` stops waiting (cancelled): withdraw it; woken already while what it
    waited for is there (``ready``), pass the wake-up on rather than swallow it."""
    waiter.cancel()
    with contextlib.suppress(ValueError):
        waiters.remove(waiter)
    if ready and not waiter.cancelled():
        _wake_first(waiters)


def _wake_first(waiters: collections.deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return
