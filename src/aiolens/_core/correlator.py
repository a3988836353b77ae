"""Matching replies to waiting requests on a protocol without request ids (pure).

The Lens WebSocket answers every request exactly once, in order, and carries
no request id. So a reply is matched by kind:

* ``{"type": "<X>.response", ...}`` → the oldest pending request of type ``X``;
* a session record (an object with no ``type``) → the oldest pending
  ``session.status``;
* ``{"type": "error", ...}`` → the oldest pending request of any type;
* anything else → nobody (the caller logs and drops it).

A cancelled caller's entry stays in place until its reply arrives (the caller
discards the reply), so that later replies of the same type still line up;
:meth:`Correlator.discard` is for a request that was never sent.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

__all__ = ["Correlator", "reply_request_type"]

W = TypeVar("W")

_STATUS = "session.status"
_SUFFIX = ".response"


def reply_request_type(message: Mapping[str, Any]) -> str | None:
    """The request type a reply answers, ``""`` for "any" (an error), ``None`` if unknown."""
    kind = message.get("type")
    if kind is None:
        return _STATUS
    if not isinstance(kind, str):
        return None
    if kind.endswith(_SUFFIX):
        return kind[: -len(_SUFFIX)]
    if kind == "error":
        return ""
    return None


class Correlator(Generic[W]):
    """FIFO queues of waiters per request type, with a global order for errors.

    Every operation is O(1) amortised: entries carry a global sequence number,
    and removed entries are skipped lazily.
    """

    __slots__ = ("_by_type", "_count", "_removed", "_seq")

    def __init__(self) -> None:
        self._by_type: dict[str, deque[tuple[int, W]]] = {}
        self._seq = itertools.count()
        self._removed: set[int] = set()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, request_type: str, waiter: W) -> None:
        """Register a request that was (or is about to be) sent."""
        queue = self._by_type.get(request_type)
        if queue is None:
            queue = self._by_type[request_type] = deque()
        queue.append((next(self._seq), waiter))
        self._count += 1

    def discard(self, waiter: W) -> bool:
        """Forget a waiter whose request never went out; ``True`` if it was pending."""
        for queue in self._by_type.values():
            for seq, pending in queue:
                if pending is waiter and seq not in self._removed:
                    self._removed.add(seq)
                    self._count -= 1
                    return True
        return False

    def _head(self, queue: deque[tuple[int, W]]) -> tuple[int, W] | None:
        while queue:
            seq, waiter = queue[0]
            if seq in self._removed:
                queue.popleft()
                self._removed.discard(seq)
                continue
            return seq, waiter
        return None

    def route(self, message: Mapping[str, Any]) -> tuple[W, str] | None:
        """Pop the waiter a decoded reply belongs to, with its request type, or ``None``."""
        wanted = reply_request_type(message)
        if wanted is None:
            return None
        if wanted:
            queue = self._by_type.get(wanted)
            if queue is None or self._head(queue) is None:
                return None
            _, waiter = queue.popleft()
            self._count -= 1
            return waiter, wanted
        best: tuple[int, str] | None = None
        for kind, queue in self._by_type.items():
            head = self._head(queue)
            if head is not None and (best is None or head[0] < best[0]):
                best = (head[0], kind)
        if best is None:
            return None
        _, waiter = self._by_type[best[1]].popleft()
        self._count -= 1
        return waiter, best[1]

    def drain(self) -> list[W]:
        """Remove and return every pending waiter, oldest first."""
        entries = [
            entry
            for queue in self._by_type.values()
            for entry in queue
            if entry[0] not in self._removed
        ]
        self._by_type.clear()
        self._removed.clear()
        self._count = 0
        return [waiter for _, waiter in sorted(entries, key=lambda e: e[0])]
