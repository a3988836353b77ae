"""Deadlines: the semantics of ``asyncio.timeout``, many scopes on one timer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from aiolens._transport.deadlines import Deadlines

Bound = Callable[[float | None], contextlib.AbstractAsyncContextManager[object]]


def scope_of(deadlines: Deadlines) -> Bound:
    @contextlib.asynccontextmanager
    async def bound(delay: float | None) -> AsyncIterator[object]:
        with deadlines.scope(delay) as scope:
            yield scope

    return bound


@contextlib.asynccontextmanager
async def asyncio_timeout(delay: float | None) -> AsyncIterator[object]:
    async with asyncio.timeout(delay) as timeout:
        yield timeout


async def test_a_block_that_outlives_its_deadline_is_cancelled_and_raises_timeout() -> None:
    deadlines = Deadlines()
    with pytest.raises(TimeoutError), deadlines.scope(0.01) as scope:
        await asyncio.sleep(5)
    assert scope.expired
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    assert len(deadlines) == 0


async def test_a_block_that_finishes_in_time_is_left_alone() -> None:
    deadlines = Deadlines()
    with deadlines.scope(5) as scope:
        await asyncio.sleep(0)
    assert not scope.expired
    await asyncio.sleep(0.01)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_no_deadline_and_a_zero_deadline() -> None:
    deadlines = Deadlines()
    with deadlines.scope(None):
        await asyncio.sleep(0.01)
    with deadlines.scope(0):  # no suspension: nothing to cancel
        pass
    with pytest.raises(TimeoutError), deadlines.scope(0):
        await asyncio.sleep(1)


async def test_many_scopes_one_timer_each_expires_at_its_own_deadline() -> None:
    deadlines = Deadlines()
    outcomes: dict[float, str] = {}

    async def run(delay: float, work: float) -> None:
        try:
            with deadlines.scope(delay):
                await asyncio.sleep(work)
            outcomes[delay] = "done"
        except TimeoutError:
            outcomes[delay] = "timeout"

    # Entered in an order unrelated to the deadlines.
    await asyncio.gather(
        run(0.30, 0.05), run(0.02, 0.20), run(0.50, 0.01), run(0.05, 0.25), run(0.01, 0.0)
    )
    assert outcomes == {
        0.30: "done",
        0.02: "timeout",
        0.50: "done",
        0.05: "timeout",
        0.01: "done",
    }
    assert len(deadlines) == 0


async def test_finished_scopes_do_not_pile_up_behind_a_long_one() -> None:
    deadlines = Deadlines()
    release = asyncio.Event()

    async def slow() -> None:
        with deadlines.scope(60):
            await release.wait()

    task = asyncio.create_task(slow())
    await asyncio.sleep(0)
    for _ in range(5000):
        with deadlines.scope(30):
            await asyncio.sleep(0)
    assert len(deadlines._heap) < 200  # compacted, not 5000
    release.set()
    await task
    deadlines.close()


async def test_an_outer_cancel_is_not_turned_into_a_timeout() -> None:
    deadlines = Deadlines()
    entered = asyncio.Event()

    async def body() -> None:
        with deadlines.scope(0.05):
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("make", ["deadlines", "asyncio"])
async def test_same_outcomes_as_asyncio_timeout(make: str) -> None:
    """Nested in an outer timeout, cancelled from outside, swallowing the cancel."""
    bound: Bound = scope_of(Deadlines()) if make == "deadlines" else asyncio_timeout

    # The inner bound expires first: it raises TimeoutError, the outer one does not.
    async with asyncio.timeout(5):
        with pytest.raises(TimeoutError):
            async with bound(0.01):
                await asyncio.sleep(1)
        await asyncio.sleep(0)  # the task is not left cancelled

    # The outer timeout expires first: the inner bound passes the cancellation on.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            async with bound(5):
                await asyncio.sleep(1)

    # A body that swallows the cancellation finishes normally.
    async with bound(0.01) as scope:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(1)
    assert scope.expired() if make == "asyncio" else scope.expired  # type: ignore[attr-defined]

    # Both bounds expire in the same pass: one TimeoutError, the task not left cancelled.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02), bound(0.02):
            await asyncio.sleep(1)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_close_cancels_the_timer_and_a_new_scope_sets_it_again() -> None:
    deadlines = Deadlines()
    with deadlines.scope(10):
        await asyncio.sleep(0)
    assert deadlines._timer is not None
    deadlines.close()
    assert deadlines._timer is None
    with pytest.raises(TimeoutError), deadlines.scope(0.01):
        await asyncio.sleep(1)


def test_a_scope_outside_a_task_is_refused() -> None:
    loop = asyncio.new_event_loop()
    try:
        deadlines = Deadlines()

        async def make() -> object:
            return deadlines.scope(1)

        scope = loop.run_until_complete(make())
        with pytest.raises(RuntimeError), scope:  # type: ignore[attr-defined]
            pass
    finally:
        loop.close()
