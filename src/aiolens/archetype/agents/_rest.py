"""What the Agents API's resource groups share: the request helpers and argument checks.

:class:`_Resource` gives every method body one line: ``_pager`` for the cursor
lists, ``_get`` / ``_post`` / ``_delete`` for the rest, all through
:meth:`~aiolens._transport.resource.Resource._request`. The checks raise
``ValueError`` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import quote

from aiolens._transport.http import Timeout
from aiolens._transport.resource import Resource
from aiolens.archetype.agents.models import AgentStatus, DataRef, example
from aiolens.archetype.pages import AsyncPager, CursorPage, get_page

T = TypeVar("T")

Ref = str | DataRef | Mapping[str, Any]
"""A data ref: a file id (shorthand), a :class:`DataRef` or ``{type: "file", id, format?}``."""

_STATUSES: Final = frozenset(s.value for s in AgentStatus if s is not AgentStatus.UNKNOWN)


def _id(value: str) -> str:
    """``value`` if it is a non-empty string (an id or a key), else ``ValueError``."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"An id must be a non-empty string: {value!r}")
    return value


def _q(segment: str) -> str:
    return quote(_id(segment), safe="")


def _limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer: {limit!r}")
    return limit


def _status(status: str | AgentStatus | None) -> str | None:
    """A status filter, checked; ``canceled`` is sent as ``cancelled``."""
    if status is None:
        return None
    parsed = AgentStatus.parse(str(status))
    if parsed is AgentStatus.UNKNOWN:
        raise ValueError(f"status must be one of {sorted(_STATUSES)}: {status!r}")
    return parsed.value


def _optional_mapping(name: str, value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping: {value!r}")
    return dict(value)


def _examples(name: str, items: Sequence[Ref] | None) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise ValueError(f"{name} must be a list of file ids, data refs or examples")
    return [example(item) for item in items]


def _required_examples(name: str, items: Sequence[Ref], missing: str) -> list[dict[str, Any]]:
    """:func:`_examples`, with ``ValueError(missing)`` for none."""
    checked = _examples(name, items)
    if not checked:
        raise ValueError(missing)
    return checked


class _Resource(Resource):
    __slots__ = ()

    def _pager(
        self,
        path: str,
        item_type: type[T],
        params: Mapping[str, Any],
        limit: int | None,
        after: str | None,
        before: str | None,
        timeout: Timeout | None,
        /,
    ) -> AsyncPager[T]:
        """The cursor list at ``path`` filtered by ``params`` (``None`` values not sent),
        from the page after ``after`` (or before ``before``), ``limit`` items a page."""
        fixed = {**params, "limit": _limit(limit)}

        async def fetch(cursor: str | None, before_cursor: str | None) -> CursorPage[T]:
            query = {**fixed, "after": cursor, "before": before_cursor}
            return await get_page(self._http, path, item_type, query, timeout=timeout)

        return AsyncPager(fetch, after=after, before=before)

    async def _get(self, path: str, tp: type[T], timeout: Timeout | None, **params: Any) -> T:
        return await self._request("GET", path, tp, params=params, timeout=timeout)

    async def _post(
        self,
        path: str,
        tp: type[T],
        body: Mapping[str, Any],
        timeout: Timeout | None,
        *,
        idempotent: bool = False,
    ) -> T:
        """``POST`` ``body`` without its ``None`` values."""
        json = {k: v for k, v in body.items() if v is not None}
        return await self._request(
            "POST", path, tp, json=json, idempotent=idempotent, timeout=timeout
        )

    async def _delete(self, path: str, timeout: Timeout | None) -> None:
        await self._request("DELETE", path, timeout=timeout)
