"""Execute: agent instances (``client.agents.instances``): batch runs and their
results and logs, serving instances queried one-shot."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Final

from aiolens._transport.http import Timeout
from aiolens.archetype.agents._jobs import _Jobs
from aiolens.archetype.agents._rest import _q
from aiolens.archetype.agents.models import (
    AgentStatus,
    Instance,
    InstanceEvent,
    LogEntry,
    QueryResult,
    ResultRef,
    _EventList,
)
from aiolens.archetype.pages import AsyncPager
from aiolens.errors import AgentQueryError

_LOG_LEVELS: Final = frozenset({"debug", "info", "warning", "error", "critical"})


class Instances(_Jobs[Instance]):
    """Agent instances: runs and deployments (``agents/instances``)."""

    __slots__ = ()
    _path = "/agents/instances"
    _model = Instance
    _kind = "Instance"
    _max_interval = 5.0

    def list(
        self,
        *,
        status: str | AgentStatus | None = None,
        query: str | None = None,
        bundle_id: str | None = None,
        blueprint_id: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[Instance]:
        """The org's instances, newest first, optionally filtered (``bundle_id`` too)."""
        params = {"query": query, "bundle_id": bundle_id, "blueprint_id": blueprint_id}
        return self._list(params, status, limit, after, before, timeout)

    async def events(
        self, instance_id: str, *, timeout: Timeout | None = None
    ) -> builtins.list[InstanceEvent]:
        """The instance's lifecycle log, oldest first (created, started, paused ...).

        Accepts ``{"data": [...]}`` and a bare array.
        """
        found: _EventList | builtins.list[InstanceEvent] = await self._http.request(
            "GET",
            f"/agents/instances/{_q(instance_id)}/events",
            response_type=_EventList | builtins.list[InstanceEvent],
            timeout=timeout,
        )
        return found if isinstance(found, list) else found.data

    def results(
        self,
        instance_id: str,
        *,
        limit: int | None = None,
        after: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[ResultRef]:
        """The outputs the instance wrote, newest first (download with ``client.files``)."""
        path = f"/agents/instances/{_q(instance_id)}/results"
        return self._pager(path, ResultRef, {}, limit, after, None, timeout)

    def logs(
        self,
        instance_id: str,
        *,
        level: str | None = None,
        search: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[LogEntry]:
        """The run log, newest first.

        Args:
            level: only this level (``debug``, ``info``, ``warning``, ``error``).
            search: a substring of the message or event type.
        """
        if level is not None and level.lower() not in _LOG_LEVELS:
            raise ValueError(f"level must be one of {sorted(_LOG_LEVELS)}: {level!r}")
        path = f"/agents/instances/{_q(instance_id)}/logs"
        params = {"level": level.lower() if level else None, "search": search}
        return self._pager(path, LogEntry, params, limit, after, None, timeout)

    async def pause(self, instance_id: str, *, timeout: Timeout | None = None) -> Instance:
        """Pause a running batch instance. Raises ConflictError when it is not running."""
        return await self._post(f"/agents/instances/{_q(instance_id)}/pause", Instance, {}, timeout)

    async def resume(self, instance_id: str, *, timeout: Timeout | None = None) -> Instance:
        """Resume a paused instance. Raises ConflictError when it is not paused."""
        return await self._post(
            f"/agents/instances/{_q(instance_id)}/resume", Instance, {}, timeout
        )

    async def query(
        self,
        instance_id: str,
        window: Mapping[str, Any],
        *,
        timeout: Timeout | None = None,
    ) -> QueryResult:
        """Send one window to a serving instance and return its answer.

        A window is columnar, e.g. ``{"columns": ["ax", "ay"], "rows": [[0.1,
        0.2], ...], "window_index": 0, "sample_rate_hz": 100}``. The call has
        no side effect, so it is retried like a GET.

        Raises:
            AgentQueryError: the answer's status is ``failed``.
            ConflictError: the instance is not a running serving instance.
        """
        if not isinstance(window, Mapping):
            raise ValueError("window must be a mapping (a JSON object)")
        result = await self._post(
            f"/agents/instances/{_q(instance_id)}/query",
            QueryResult,
            window,
            timeout,
            idempotent=True,
        )
        return checked_reply(result)


def checked_reply(result: QueryResult) -> QueryResult:
    """``result``, or :class:`AgentQueryError` when its status is ``failed``."""
    if result.status == "failed":
        error = result.error or {}
        raise AgentQueryError(
            f"Query failed: {error.get('message') or result.response or 'no reason given'}",
            code=str(error.get("code") or ""),
            reply=result,
        )
    return result
