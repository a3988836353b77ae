"""What instances, evals and optimizations share: list, get, cancel, delete and ``wait``.

``wait()`` polls a record until it is ``completed``, ``failed`` or
``cancelled`` (either spelling), with a growing interval and a deadline: it
never waits forever unless asked to (``timeout=None``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Generic, TypeVar

from aiolens._transport.http import Timeout
from aiolens.archetype.agents._rest import _q, _Resource, _status
from aiolens.archetype.agents.models import AgentStatus, Eval, Instance, Optimization
from aiolens.archetype.pages import AsyncPager
from aiolens.errors import AgentRunError, WaitTimeoutError

R = TypeVar("R", Instance, Eval, Optimization)

DEFAULT_WAIT_TIMEOUT: Final = 900.0
"""Seconds ``wait()`` polls before :class:`~aiolens.errors.WaitTimeoutError`."""


class _Jobs(_Resource, Generic[R]):
    """What instances, evals and optimizations share: list, get, cancel, delete, wait.

    Subclasses set ``_path`` (``/agents/evals``), ``_model`` (the record type),
    ``_kind`` (for messages) and ``_max_interval`` (``wait``'s longest poll).
    """

    __slots__ = ()
    _path: str
    _model: type[R]
    _kind: str
    _max_interval: float

    def _list(
        self,
        params: Mapping[str, Any],
        status: str | AgentStatus | None,
        limit: int | None,
        after: str | None,
        before: str | None,
        timeout: Timeout | None,
        /,
    ) -> AsyncPager[R]:
        """The records filtered by ``params`` and ``status`` (``_pager``'s window)."""
        query = {**params, "status": _status(status)}
        return self._pager(self._path, self._model, query, limit, after, before, timeout)

    def list(
        self,
        *,
        status: str | AgentStatus | None = None,
        query: str | None = None,
        blueprint_id: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[R]:
        """The org's records, newest first, filtered by status (either spelling of
        ``cancelled``), a substring of the name or id, or the blueprint."""
        params = {"query": query, "blueprint_id": blueprint_id}
        return self._list(params, status, limit, after, before, timeout)

    async def get(self, record_id: str, *, timeout: Timeout | None = None) -> R:
        """One record. Raises :class:`~aiolens.errors.NotFoundError` when there is none."""
        return await self._get(f"{self._path}/{_q(record_id)}", self._model, timeout)

    async def cancel(self, record_id: str, *, timeout: Timeout | None = None) -> R:
        """Cancel a pending, running or paused record (unfinished trials too).

        Raises:
            ConflictError: it already ended.
        """
        return await self._post(f"{self._path}/{_q(record_id)}/cancel", self._model, {}, timeout)

    async def delete(self, record_id: str, *, timeout: Timeout | None = None) -> None:
        """Delete a record (the server answers 204). An eval takes the files it
        produced along; an optimization keeps the blueprints promoted from it; a
        running instance is stopped first."""
        await self._delete(f"{self._path}/{_q(record_id)}", timeout)

    async def wait(
        self,
        record_id: str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = 0.5,
        max_interval: float | None = None,
        on_update: Callable[[R], Any] | None = None,
        raise_on_failure: bool = True,
    ) -> R:
        """Poll until the record is ``completed``, ``failed`` or ``cancelled``.

        Polls start ``poll_interval`` apart and grow by half each time up to
        ``max_interval`` (5 s for instances, 10 s for evals, 30 s for
        optimizations, as the official SDK's fixed intervals). Cancel: polling
        stops; the work goes on server-side.

        Args:
            timeout: seconds in all; ``None`` waits for ever.
            on_update: called (or awaited) with each record that differs from
                the previous one (for progress displays).
            raise_on_failure: raise :class:`~aiolens.errors.AgentRunError`
                for a ``failed`` record instead of returning it.

        Raises:
            WaitTimeoutError: still going at the deadline (``.record`` has the
                last state).
            AgentRunError: it failed (``raise_on_failure``).
        """
        longest = self._max_interval if max_interval is None else max_interval
        for name, value in (("poll_interval", poll_interval), ("max_interval", longest)):
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds: {value!r}")
        if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
            raise ValueError(f"timeout must be positive seconds or None: {timeout!r}")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        interval = poll_interval
        seen: Any = None
        while True:
            record = await self.get(record_id)
            if on_update is not None and record != seen:
                result = on_update(record)
                if isinstance(result, Awaitable):
                    await result
            seen = record
            if record.terminal:
                if raise_on_failure and record.state is AgentStatus.FAILED:
                    error = record.error or {}
                    raise AgentRunError(
                        f"{self._kind} {record_id} failed: "
                        f"{error.get('message') or 'no reason given'}",
                        code=str(error.get("code") or ""),
                        record=record,
                    )
                return record
            delay = interval
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise WaitTimeoutError(
                        f"{self._kind} {record_id} is still {record.status} after {timeout}s",
                        record=record,
                    )
                delay = min(delay, remaining)
            await asyncio.sleep(delay)
            interval = min(interval * 1.5, longest)
