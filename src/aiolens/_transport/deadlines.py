"""Many timeouts on one timer: ``asyncio.timeout`` semantics at a fraction of the cost.

A :class:`Deadlines` serves the requests of one connection. Each request runs its body in
``with deadlines.scope(seconds):``; when the deadline passes first, the task is cancelled
and the scope raises :class:`TimeoutError` as it exits, exactly as ``async with
asyncio.timeout(seconds):`` does (the same ``cancel``/``uncancel`` accounting, so an outer
cancellation or timeout is never swallowed, and a body that finishes or fails first is
left alone).

Why not ``asyncio.timeout``: it schedules one loop timer per scope and cancels it on exit;
at tens of thousands of requests per second that is the largest cost of a request after
the socket itself (the benchmarks' pipelined case). Here scopes wait in a heap ordered by
deadline and a single loop timer, set for the earliest deadline, is moved only when it
fires. A scope that exits normally costs a heap push and pop.

Scopes are plain (synchronous) context managers: entering and exiting never suspends.
A scope must be entered and exited in the task it bounds. :meth:`Deadlines.enter` and
:meth:`Deadlines.leave` do the same without a scope object (a hot path's choice: with
thousands of sessions, each object that lives until a reply comes is promoted and walked
by full collections); a block is then one heap entry.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from types import TracebackType
from typing import Any, Final

__all__ = ["Bound", "DeadlineScope", "Deadlines"]

# A bounded block is one heap entry, a list: [deadline, sequence, task, cancelling, state]
# (lists compare item by item, so the heap orders entries by deadline, then sequence).
_DEADLINE: Final = 0
_TASK: Final = 2
_CANCELLING: Final = 3
_STATE: Final = 4
_RUNNING: Final = 0
_EXPIRED: Final = 1
_DONE: Final = 2  # states from here on are finished; the low bit says it had expired
# Finished scopes tolerated in the heap beyond twice the running ones before it is rebuilt.
_COMPACT_SLACK: Final = 64
_RESOLUTION: Final = time.get_clock_info("monotonic").resolution  # as asyncio's loop uses

Bound = list[Any]
"""A block entered with :meth:`Deadlines.enter`, to hand to :meth:`Deadlines.leave`."""


class DeadlineScope:
    """One bounded block; see :meth:`Deadlines.scope`."""

    __slots__ = ("_bound", "_owner", "deadline")

    def __init__(self, owner: Deadlines | None, deadline: float | None) -> None:
        self._owner = owner
        self.deadline = deadline
        """Loop time at which the block is cancelled; ``None``: never."""
        self._bound: Bound | None = None

    @property
    def expired(self) -> bool:
        """Whether the deadline passed while the block ran (the task was cancelled)."""
        bound = self._bound
        return bound is not None and bound[_STATE] & 1 == 1

    def __enter__(self) -> DeadlineScope:
        if self._owner is not None:
            assert self.deadline is not None
            self._bound = self._owner._enter_at(self.deadline)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owner is not None:
            assert self._bound is not None
            self._owner.leave(self._bound, exc)


class Deadlines:
    """The deadlines of many concurrent blocks, on one event-loop timer.

    It uses the event loop running when :meth:`scope` or :meth:`enter` is called (all
    blocks must share one loop); :meth:`close` cancels its timer.
    """

    __slots__ = ("_counter", "_heap", "_loop", "_running", "_timer", "_timer_at")

    def __init__(self) -> None:
        self._heap: list[Bound] = []
        self._counter = itertools.count()
        self._running = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def __len__(self) -> int:
        """Blocks running now (entered, not exited)."""
        return self._running

    def scope(self, delay: float | None) -> DeadlineScope:
        """A context manager that cancels the current task after ``delay`` seconds.

        ``with deadlines.scope(5):`` behaves as ``async with asyncio.timeout(5):``: if the
        block is still running after ``delay`` seconds (from this call), the task is
        cancelled and :class:`TimeoutError` is raised from the ``with`` statement. ``None``
        means no deadline; ``0`` or less expires at the block's first suspension.
        """
        if delay is None:
            return DeadlineScope(None, None)
        return DeadlineScope(self, self._now() + delay)

    def enter(self, delay: float | None) -> Bound | None:
        """:meth:`scope` entered at once, without a context manager (one object fewer
        per block, and no bound ``__exit__``): the caller must :meth:`leave` it.

        ``None`` (no deadline) returns ``None``; pass that to :meth:`leave` too.
        """
        if delay is None:
            return None
        return self._enter_at(self._now() + delay)

    def leave(self, bound: Bound | None, exc: BaseException | None) -> None:
        """End a block begun with :meth:`enter`, as the ``with`` statement ends a scope.

        Args:
            bound: what :meth:`enter` returned.
            exc: the exception leaving the block, ``None`` if it finished.

        Raises:
            TimeoutError: the deadline passed and ``exc`` is the cancellation it caused
                (``from exc``); the caller re-raises ``exc`` otherwise.
        """
        if bound is None:
            return
        state = bound[_STATE]
        bound[_STATE] = _DONE | state  # _DONE, or _DONE and expired
        # Replies come mostly in order, so the block that just ended is usually on top.
        self._running -= 1
        heap = self._heap
        while heap and heap[0][_STATE] >= _DONE:
            heapq.heappop(heap)
        if len(heap) > 2 * self._running + _COMPACT_SLACK:
            self._compact()
        if state == _EXPIRED:
            task = bound[_TASK]
            # As asyncio.Timeout: only a cancellation that is ours alone becomes a timeout.
            if task.uncancel() <= bound[_CANCELLING] and type(exc) is asyncio.CancelledError:
                raise TimeoutError from exc

    def close(self) -> None:
        """Cancel the timer (the owner is shutting down).

        Blocks still running are not expired until another block is entered, which sets
        the timer again.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- internals --------------------------------------------------------------------------

    def _now(self) -> float:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new event loop: start afresh
            self._loop, self._timer, self._heap, self._running = loop, None, [], 0
        return loop.time()

    def _enter_at(self, deadline: float) -> Bound:
        """Begin a block in the current task that is cancelled at ``deadline``."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline scope must be entered inside a task")
        bound = [deadline, next(self._counter), task, task.cancelling(), _RUNNING]
        heapq.heappush(self._heap, bound)
        self._running += 1
        if self._timer is None or deadline < self._timer_at:
            self._set_timer(deadline)
        return bound

    def _set_timer(self, deadline: float) -> None:
        """Move the one timer to ``deadline`` (earlier than the one set, or none is)."""
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer = self._loop.call_at(deadline, self._fire)
        self._timer_at = deadline

    def _compact(self) -> None:
        """Rebuild the heap without the finished blocks once those dominate."""
        heap = self._heap
        heap[:] = [bound for bound in heap if bound[_STATE] < _DONE]
        heapq.heapify(heap)
        # The timer stays set even when nothing is left: moving it costs more than letting
        # it fire once, find nothing due and set itself for the next deadline.

    def _fire(self) -> None:
        self._timer = None
        assert self._loop is not None
        horizon = self._loop.time() + _RESOLUTION
        heap = self._heap
        while heap:
            bound = heap[0]
            if bound[_STATE] >= _DONE:
                heapq.heappop(heap)
                continue
            deadline = bound[_DEADLINE]
            if deadline > horizon:
                self._timer = self._loop.call_at(deadline, self._fire)
                self._timer_at = deadline
                return
            heapq.heappop(heap)
            bound[_STATE] = _EXPIRED
            bound[_TASK].cancel()
