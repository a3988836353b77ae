"""Matching replies to waiting requests on a protocol without request ids (pure, no I/O).

The Lens WebSocket answers every request exactly once, in order, and its replies carry no
request id. A reply is therefore matched by its kind:

* ``{"type": "<X>.response", ...}`` goes to the oldest pending request of type ``X``;
* a session record (an object with no ``type`` key, the un-enveloped ``session.status``
  reply) goes to the oldest pending ``session.status``;
* ``{"type": "error", ...}`` goes to the oldest pending request of any type;
* anything else goes to nobody: :meth:`Correlator.route` returns ``None`` and the caller
  logs and drops it. A reply is never handed to a request it cannot belong to.

Cancellation: a request that was *sent* will still be answered, so its entry must stay
registered until the reply comes and consumes it; otherwise that reply would be handed to
the next request of the same type. The caller keeps the entry and drops the late reply
(for example by checking ``future.done()``). :meth:`Correlator.discard` removes an entry
outright and is only right for a request that never reached the wire.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar

__all__ = ["NO_TYPE", "Correlator", "kind_request_type", "reply_request_type"]

W = TypeVar("W")

STATUS_REQUEST: Final = "session.status"
"""The request whose reply is the bare session record."""

_SUFFIX: Final = ".response"
_SUFFIX_LEN: Final = len(_SUFFIX)
_ERROR: Final = "error"
NO_TYPE: Final = object()
"""The ``kind`` of a reply without a ``type`` key (see :meth:`Correlator.route_kind`)."""
# Stale slots tolerated beyond twice the live entries before the queues are compacted.
_COMPACT_SLACK: Final = 64
# Emptied per-type queues kept for reuse (a request type's queue usually empties with each
# reply; making a deque per request is garbage the collector walks). Past this many types,
# an emptied queue is dropped, so a caller inventing types cannot grow the table.
_TYPES_KEPT: Final = 32


def reply_request_type(message: Mapping[str, Any]) -> str | None:
    """Classify a decoded reply by the request type it answers.

    Args:
        message: a decoded JSON message from the socket.

    Returns:
        ``"X"`` for ``{"type": "X.response", ...}``; ``"session.status"`` for an object
        with no ``type`` key (the session record); ``None`` for ``{"type": "error"}``
        (it answers whichever request is oldest), for any other ``type``, for a
        ``type`` that is not a string, and for a message that is not a mapping.
    """
    if type(message) is not dict and not isinstance(message, Mapping):  # dict: skip the ABC
        return None
    return kind_request_type(message.get("type", NO_TYPE))


def kind_request_type(kind: object) -> str | None:
    """:func:`reply_request_type` given only the reply's ``type`` value.

    Args:
        kind: the value of the reply's ``type`` key, or :data:`NO_TYPE` when it has none.
    """
    if kind is NO_TYPE:
        return STATUS_REQUEST
    if type(kind) is str and kind.endswith(_SUFFIX):
        return kind[:-_SUFFIX_LEN]
    return None


class _Entry(Generic[W]):
    """One pending request. ``alive`` goes false when it is routed, discarded or drained."""

    __slots__ = ("alive", "request_type", "waiter")

    def __init__(self, request_type: str, waiter: W) -> None:
        self.request_type = request_type
        self.waiter = waiter
        self.alive = True


class Correlator(Generic[W]):
    """Pending requests, FIFO per request type and in global order, for reply routing.

    Each entry sits in two queues: its type's queue and the queue of all entries in the
    order they were added. Routing pops from one of them and marks the entry dead; the
    other queue skips dead entries when they reach its head (lazy deletion). When dead
    entries outnumber live ones (plus a slack), both queues are rebuilt, so memory stays
    proportional to the number pending even if an old request is never answered.
    :meth:`add` and :meth:`route` cost O(1) amortised; :meth:`discard` (rare: a request
    that never went out) and :meth:`drain` O(n).

    The waiter type ``W`` is anything the caller hands replies to, e.g.
    ``asyncio.Future[dict[str, Any]]``; the correlator only stores and returns waiters, and
    tells them apart by identity.

    ``classify`` maps a reply to the request type it answers (``None``: an ``error`` reply
    or none). The default is the Lens rule, :func:`reply_request_type`; a protocol whose
    every reply answers the oldest request (the agents serving socket) passes a function
    returning one constant type.
    """

    __slots__ = ("_by_type", "_classify", "_live", "_order", "_slots")

    def __init__(
        self, classify: Callable[[Mapping[str, Any]], str | None] = reply_request_type
    ) -> None:
        """Create an empty correlator."""
        self._classify = classify
        self._by_type: dict[str, deque[_Entry[W]]] = {}
        self._order: deque[_Entry[W]] = deque()
        self._live = 0
        self._slots = 0  # entries held by all queues, dead or alive

    def __len__(self) -> int:
        """The number of pending requests."""
        return self._live

    def __repr__(self) -> str:
        return f"<Correlator pending={self._live}>"

    def add(self, request_type: str, waiter: W) -> None:
        """Register a pending request; call it in the order the requests go on the wire.

        Args:
            request_type: the request's ``type`` (``"session.status"``, ``"model.query"``
                ...).
            waiter: what the reply is handed to. The same object may be added more than
                once; each registration takes one reply.
        """
        entry = _Entry(request_type, waiter)
        queue = self._by_type.get(request_type)
        if queue is None:
            self._by_type[request_type] = deque((entry,))
        else:
            queue.append(entry)
        self._order.append(entry)
        self._live += 1
        self._slots += 2

    def discard(self, waiter: W) -> bool:
        """Remove a pending request, so that it takes no reply.

        Use it only for a request that was never sent. A sent request will be answered,
        and without its entry that reply would go to the next request of the same type;
        keep a cancelled request's entry and drop its reply instead (see the module
        docstring).

        Args:
            waiter: the waiter given to :meth:`add`; if it was added more than once, its
                oldest pending registration is removed.

        Returns:
            ``True`` if it was pending, ``False`` if not (already routed, discarded or
            drained, or never added).
        """
        for entry in self._order:  # rare (a request that never went out): a scan
            if entry.alive and entry.waiter is waiter:
                self._kill(entry)
                self._maybe_compact()
                return True
        return False

    def route(self, message: Mapping[str, Any]) -> tuple[W, str] | None:
        """Find, remove and return the pending request that a decoded reply answers.

        See the module docstring for the rules.

        Args:
            message: the decoded reply.

        Returns:
            ``(waiter, request_type)``; or ``None`` when no pending request can own the
            reply (unknown message, or no request of its type pending), in which case
            nothing changes.
        """
        request_type = self._classify(message)
        is_error = (
            request_type is None and isinstance(message, Mapping) and message.get("type") == _ERROR
        )
        return self._take(request_type, is_error)

    def route_kind(self, kind: object) -> tuple[W, str] | None:
        """:meth:`route` given only the reply's ``type`` value (:data:`NO_TYPE`: none).

        For a caller that reads only a reply's ``type`` and decodes the rest later;
        it classifies by the default rules (:func:`kind_request_type`), whatever
        ``classify`` the correlator was made with.
        """
        if kind is NO_TYPE:  # kind_request_type(kind), inlined: once per reply
            return self._take(STATUS_REQUEST, False)
        if type(kind) is str and kind.endswith(_SUFFIX):
            return self._take(kind[:-_SUFFIX_LEN], False)
        return self._take(None, kind == _ERROR)

    def _take(self, request_type: str | None, is_error: bool) -> tuple[W, str] | None:
        """Pop the request a reply answers: the oldest of ``request_type``, or the oldest
        of all for an error."""
        if request_type is not None:
            queue = self._by_type.get(request_type)
            if queue is None:
                return None
        elif is_error:
            queue = self._order
        else:
            return None
        while queue:  # dead entries at the head (answered or discarded) are dropped
            entry = queue.popleft()
            self._slots -= 1
            if entry.alive:
                break
        else:
            if request_type is not None and len(self._by_type) > _TYPES_KEPT:
                del self._by_type[request_type]  # only dead entries were left
            return None
        if request_type is not None and not queue and len(self._by_type) > _TYPES_KEPT:
            del self._by_type[request_type]
        entry.alive = False
        self._live -= 1
        order = self._order
        # Replies come in order: the oldest entry is usually the one just answered.
        while order and not order[0].alive:
            order.popleft()
            self._slots -= 1
        if self._slots > 4 * self._live + _COMPACT_SLACK:  # _maybe_compact(), inlined
            self._maybe_compact()
        return entry.waiter, entry.request_type

    def drain(self) -> list[W]:
        """Remove and return every pending waiter, oldest first (the connection was lost).

        Returns:
            The waiters in the order they were added; the correlator is empty afterwards.
        """
        waiters = []
        for entry in self._order:
            if entry.alive:
                entry.alive = False
                waiters.append(entry.waiter)
        self._by_type.clear()
        self._order.clear()
        self._live = 0
        self._slots = 0
        return waiters

    def pending_types(self) -> list[str]:
        """The request types pending, oldest first (for debugging and logs)."""
        return [entry.request_type for entry in self._order if entry.alive]

    # ---- internals ----------------------------------------------------------------------

    def _kill(self, entry: _Entry[W]) -> None:
        """Mark a live entry dead."""
        entry.alive = False
        self._live -= 1

    def _maybe_compact(self) -> None:
        """Rebuild the queues without dead entries once those dominate."""
        if self._slots - 2 * self._live <= 2 * self._live + _COMPACT_SLACK:
            return
        self._order = deque(entry for entry in self._order if entry.alive)
        by_type: dict[str, deque[_Entry[W]]] = {}
        for entry in self._order:
            queue = by_type.get(entry.request_type)
            if queue is None:
                by_type[entry.request_type] = deque((entry,))
            else:
                queue.append(entry)
        self._by_type = by_type
        self._slots = 2 * self._live
