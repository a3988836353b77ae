"""run_to_completion: cleanup that repeated native cancellation cannot interrupt."""

from __future__ import annotations

import asyncio

import pytest

from aiolens._core.shielded import run_to_completion


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
