"""A bounded window of recently seen keys, to drop repeats (pure, no I/O).

Both resumable streams need one: the SSE resume cursor remembers the last opaque event ids
(:mod:`aiolens._core.resume`), and a detection session the last event ids it delivered, so
that events replayed after a reconnect are dropped. Memory is bounded: only the keys among
the last ``capacity`` recorded count as seen; older ones are forgotten.
"""

from __future__ import annotations

import collections
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["SeenWindow"]

K = TypeVar("K", bound=Hashable)


class SeenWindow(Generic[K]):
    """The keys among the last ``capacity`` entries recorded.

    Entries are recorded with :meth:`add` (a key) or :meth:`tick` (a step that keeps no key,
    e.g. an ordered id the caller tracks on its own): a key counts as seen while it was
    recorded within the last ``capacity`` entries. Recording a key again moves it to the
    newest entry. At most ``capacity`` keys are held.

    Args:
        capacity: how many of the latest entries count (a whole number >= 1).
    """

    __slots__ = ("_at", "_clock", "_order", "capacity")

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a whole number >= 1: {capacity!r}")
        self.capacity = capacity
        self._clock = 0  # entries recorded so far; the next one's position
        self._at: dict[K, int] = {}  # each key's latest position
        self._order: collections.deque[tuple[int, K]] = collections.deque()

    def __contains__(self, key: K) -> bool:
        """Whether ``key`` was recorded within the last ``capacity`` entries."""
        position = self._at.get(key)
        return position is not None and position >= self._clock - self.capacity

    def __len__(self) -> int:
        """How many keys are held (at most ``capacity``)."""
        return len(self._at)

    def tick(self, count: int = 1) -> None:
        """Record ``count`` entries without a key: the window moves on by that many."""
        self._clock += count

    def add(self, key: K) -> None:
        """Record ``key`` as the newest entry, forgetting keys that fell out of the window."""
        position = self._clock
        self._clock = position + 1
        self._at[key] = position
        order = self._order
        order.append((position, key))
        horizon = position + 1 - self.capacity
        while order[0][0] < horizon:
            old_position, old = order.popleft()
            if self._at.get(old) == old_position:  # not recorded again since
                del self._at[old]

    def seen(self, key: K) -> bool:
        """Whether ``key`` is in the window; if it is not, record it (as :meth:`add`)."""
        if key in self:
            return True
        self.add(key)
        return False
