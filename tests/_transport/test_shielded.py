"""run_to_completion: cleanup that repeated native cancellation cannot interrupt."""

from __future__ import annotations

import asyncio

import pytest

from aiolens._transport.shielded import cancel_and_wait, finish_or_undo, run_to_completion


async def test_returns_the_result_when_not_cancelled() -> None:
    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    assert await run_to_completion(work()) == 7


async def test_raises_what_the_work_raised() -> None:
    async def work() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await run_to_completion(work())


@pytest.mark.parametrize("cancels", [1, 2, 5])
async def test_work_finishes_through_repeated_cancels_then_the_caller_is_cancelled(
    cancels: int,
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def work() -> None:
        started.set()
        await release.wait()
        finished.append("done")

    async def caller() -> None:
        await run_to_completion(work())
        finished.append("caller went on")  # must not happen: it was cancelled

    task = asyncio.create_task(caller())
    await started.wait()
    for _ in range(cancels):
        task.cancel()
        await asyncio.sleep(0)
        assert not task.done()  # still waiting for the work
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == ["done"]


async def test_an_outer_timeout_still_becomes_timeout_error() -> None:
    finished: list[str] = []

    async def work() -> None:
        await asyncio.sleep(0.05)
        finished.append("done")

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await run_to_completion(work())
    assert finished == ["done"]


async def test_the_error_of_work_outlived_by_a_cancel_is_marked_retrieved() -> None:
    # An unretrieved exception would be logged ("Task exception was never retrieved")
    # and, with warnings as errors in this suite, reported.
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(0.01)
        raise RuntimeError("cleanup failed")

    task = asyncio.create_task(run_to_completion(work()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_finish_or_undo_returns_what_the_work_made() -> None:
    undone: list[int] = []

    async def undo(made: int) -> None:
        undone.append(made)

    async def work() -> int:
        await asyncio.sleep(0)
        return 3

    assert await finish_or_undo(work(), undo, timeout=1) == 3
    assert undone == []


async def test_a_cancelled_caller_waits_for_the_work_and_undoes_it() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    undone: list[int] = []

    async def work() -> int:
        started.set()
        await release.wait()
        return 3

    async def undo(made: int) -> None:
        await asyncio.sleep(0)
        undone.append(made)

    task = asyncio.create_task(finish_or_undo(work(), undo, timeout=5))
    await started.wait()
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()  # again: still waits
    await asyncio.sleep(0)
    assert not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert undone == [3]


async def test_nothing_to_undo_when_the_work_fails_or_never_answers() -> None:
    undone: list[object] = []

    async def undo(made: object) -> None:
        undone.append(made)

    async def fails() -> int:
        await asyncio.sleep(0.01)
        raise OSError("refused")

    never_done = asyncio.Event()

    async def hangs() -> int:
        try:
            await asyncio.Event().wait()
        finally:
            never_done.set()  # cancelled once the timeout passed
        return 0

    for work in (fails(), hangs()):
        task = asyncio.create_task(finish_or_undo(work, undo, timeout=0.05))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert undone == []
    assert never_done.is_set()


async def test_cancel_and_wait_never_swallows_the_callers_own_cancellation() -> None:
    stopping = asyncio.Event()
    release = asyncio.Event()

    async def helper() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopping.set()
            await release.wait()  # slow to stop after its cancel

    helper_task = asyncio.create_task(helper())
    await asyncio.sleep(0)
    went_on: list[str] = []

    async def caller() -> None:
        await cancel_and_wait(helper_task)
        went_on.append("after cancel_and_wait")  # must not happen: it was cancelled

    caller_task = asyncio.create_task(caller())
    await stopping.wait()
    caller_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller_task
    assert caller_task.cancelled() and went_on == []
    release.set()
    await asyncio.wait((helper_task,))
    assert helper_task.cancelled()


async def test_cancel_and_wait_returns_once_the_task_ended_and_raises_none_of_its_errors() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            raise KeyError("raised while stopping")

    task = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.done() and isinstance(task.exception(), KeyError)
    await cancel_and_wait(task)  # already done: nothing to do
