"""Cleanup that no cancellation can interrupt.

``anyio.CancelScope(shield=True)`` protects against anyio cancel scopes only: on asyncio a
native ``Task.cancel()`` (what ``asyncio.timeout``, ``TaskGroup`` and Ctrl-C under
``asyncio.run`` use) still raises inside it. ``asyncio.shield`` protects the awaited work
but returns early to the cancelled caller, which then no longer waits for it.
:func:`run_to_completion` does both: the work runs in its own task, the caller waits for
it through any number of cancellations, then the cancellation is re-raised.
:func:`cancel_and_wait` stops a helper task (a reader) and waits for it without ever
swallowing the caller's own cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio

from aiolens._core.redact import get_logger

__all__ = [
    "best_effort",
    "cancel_and_wait",
    "finish_or_undo",
    "run_to_completion",
    "wait_to_completion",
]

T = TypeVar("T")

log = get_logger("cleanup")


async def run_to_completion(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end even when the calling task is cancelled.

    Cancel: the caller keeps waiting for ``work`` when cancelled, once or repeatedly, and
    raises :class:`asyncio.CancelledError` once ``work`` has finished (its result or error
    is then discarded; an error is still marked as retrieved). Timeout: none of its own;
    ``work`` must bound itself. Close: nothing to close.

    Returns:
        What ``work`` returned, when the caller was not cancelled meanwhile.

    Raises:
        asyncio.CancelledError: the caller was cancelled while ``work`` ran, or ``work``
            itself was cancelled.
        Exception: what ``work`` raised, when the caller was not cancelled.
    """
    return await wait_to_completion(asyncio.ensure_future(work))


async def wait_to_completion(task: asyncio.Future[T]) -> T:
    """Wait for ``task`` (already running) like :func:`run_to_completion` waits for its work.

    Several callers may wait for the same task this way (one closing job that a
    session's owner and its client both wait for); cancelling a caller never
    cancels the task.
    """
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait((task,))  # neither cancels the task nor raises its error
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # retrieved: the caller's cancellation wins
        raise cancelled
    return task.result()


async def cancel_and_wait(*tasks: asyncio.Future[Any]) -> None:
    """Cancel ``tasks`` and wait until every one has finished; their outcomes are discarded.

    The pattern ``task.cancel(); with suppress(CancelledError): await task`` cannot tell
    the task's cancellation from the caller's own: a caller cancelled while it waits
    there would swallow its cancel and carry on. ``asyncio.wait`` never raises what a
    task raised, so only the caller's cancellation comes out of here. An error a task
    ended with is marked as retrieved (and not raised); tasks already done are left as
    they are.

    Cancel: if the caller is cancelled while waiting, :class:`asyncio.CancelledError`
    is raised at once (the tasks have been asked to stop and finish on their own).
    Timeout: none; the tasks must stop promptly when cancelled. Close: nothing to close.
    """
    for task in tasks:
        task.cancel()
    pending = [task for task in tasks if not task.done()]
    if pending:
        await asyncio.wait(pending)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: the caller asked it to stop, its error is moot


async def finish_or_undo(
    work: Coroutine[Any, Any, T],
    undo: Callable[[T], Awaitable[object]],
    *,
    timeout: float,
) -> T:
    """Await ``work`` (a create call); if the caller is cancelled meanwhile, undo what it made.

    A request the server has already acted on cannot be taken back by cancelling the
    client side: a session would be left running whose id nobody has. So on cancel,
    ``work``'s answer is still awaited, and what it made is passed to ``undo``.

    Cancel: waits for ``work`` (at most ``timeout`` seconds, after which it is
    cancelled) and then for ``undo``, through any number of cancellations, then raises
    :class:`asyncio.CancelledError`. If ``work`` failed, there is nothing to undo.
    Timeout: only on the cancel path (``undo`` must bound itself).

    Returns:
        What ``work`` returned.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled():  # the work itself was cancelled, not (only) the caller
            raise

        async def discard() -> None:
            try:
                async with asyncio.timeout(timeout):
                    made = await task
            except Exception:
                return  # it failed or did not answer in time: nothing we can undo
            await undo(made)

        await run_to_completion(discard())
        raise


async def best_effort(work: Callable[[], Awaitable[T]], *, timeout: float, what: str) -> T | None:
    """Cleanup that must not fail its caller: ``work()`` shielded and bounded, errors logged.

    Cancel: ``work`` still runs to its end (or ``timeout``), then
    :class:`asyncio.CancelledError` is raised (see :func:`run_to_completion`). Timeout:
    ``work`` is stopped after ``timeout`` seconds and one warning is logged. Errors: an
    exception from ``work`` is logged as one warning line ("could not ``what``: …").

    Returns:
        What ``work`` returned, or ``None`` when it failed or ran out of time.
    """

    async def attempt() -> T | None:
        with anyio.move_on_after(timeout):
            try:
                return await work()
            except Exception as exc:
                log.warning("could not %s: %s", what, exc)
                return None
        log.warning("could not %s: timed out after %.1fs", what, timeout)
        return None

    return await run_to_completion(attempt())
