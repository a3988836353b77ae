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
A scope must be entered and exited in the task it bounds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from types import TracebackType
from typing import Final

__all__ = ["DeadlineScope", "Deadlines"]

_RUNNING: Final = 0
_EXPIRED: Final = 1
_DONE: Final = 2
# Finished scopes tolerated in the heap beyond twice the running ones before it is rebuilt.
_COMPACT_SLACK: Final = 64
_RESOLUTION: Final = time.get_clock_info("monotonic").resolution  # as asyncio's loop uses


class DeadlineScope:
    """One bounded block; see :meth:`Deadlines.scope`."""

    __slots__ = ("_cancelling", "_owner", "_state", "_task", "deadline", "expired")

    def __init__(self, owner: Deadlines | None, deadline: float | None) -> None:
        self._owner = owner
        self.deadline = deadline
        """Loop time at which the block is cancelled; ``None``: never."""
        self.expired = False
        """Whether the deadline passed while the block ran (the task was cancelled)."""
        self._state = _RUNNING
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0

    def __enter__(self) -> DeadlineScope:
        if self._owner is None:  # no deadline
            return self
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline scope must be entered inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        owner = self._owner
        deadline = self.deadline
        assert deadline is not None
        # Deadlines._push, inlined (once per request): the heap, and the timer if earlier.
        heapq.heappush(owner._heap, (deadline, next(owner._counter), self))
        owner._running += 1
        if owner._timer is None or deadline < owner._timer_at:
            owner._set_timer(deadline)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        owner = self._owner
        if owner is None:
            return
        state = self._state
        self._state = _DONE
        # Deadlines._finished, inlined: replies come mostly in order, so the scope that
        # just ended is usually on top of the heap.
        owner._running -= 1
        heap = owner._heap
        while heap and heap[0][2]._state == _DONE:
            heapq.heappop(heap)
        if len(heap) > 2 * owner._running + _COMPACT_SLACK:
            owner._compact()
        if state == _EXPIRED:
            task = self._task
            assert task is not None
            # As asyncio.Timeout: only a cancellation that is ours alone becomes a timeout.
            if task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc


class Deadlines:
    """The deadlines of many concurrent blocks, on one event-loop timer.

    It uses the event loop running when :meth:`scope` is called (all blocks must share
    one loop); :meth:`close` cancels its timer.
    """

    __slots__ = ("_counter", "_heap", "_loop", "_running", "_timer", "_timer_at")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, DeadlineScope]] = []
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
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new event loop: start afresh
            self._loop, self._timer, self._heap, self._running = loop, None, [], 0
        return DeadlineScope(self, loop.time() + delay)

    def close(self) -> None:
        """Cancel the timer (the owner is shutting down).

        Blocks still running are not expired until another block is entered, which sets
        the timer again.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- internals --------------------------------------------------------------------------

    def _set_timer(self, deadline: float) -> None:
        """Move the one timer to ``deadline`` (earlier than the one set, or none is)."""
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer = self._loop.call_at(deadline, self._fire)
        self._timer_at = deadline

    def _compact(self) -> None:
        """Rebuild the heap without the finished scopes once those dominate."""
        heap = self._heap
        heap[:] = [item for item in heap if item[2]._state != _DONE]
        heapq.heapify(heap)
        # The timer stays set even when nothing is left: moving it costs more than letting
        # it fire once, find nothing due and set itself for the next deadline.

    def _fire(self) -> None:
        self._timer = None
        assert self._loop is not None
        horizon = self._loop.time() + _RESOLUTION
        heap = self._heap
        while heap:
            deadline, _, scope = heap[0]
            if scope._state == _DONE:
                heapq.heappop(heap)
                continue
            if deadline > horizon:
                self._timer = self._loop.call_at(deadline, self._fire)
                self._timer_at = deadline
                return
            heapq.heappop(heap)
            scope._state = _EXPIRED
            scope.expired = True
            assert scope._task is not None
            scope._task.cancel()
