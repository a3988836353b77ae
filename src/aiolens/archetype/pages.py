"""Cursor pages of the Archetype platform's list endpoints, and an iterator over them.

Newer list endpoints (``GET /files/metadata`` in SDK 26.10, every Agents API
list) answer one page at a time, newest first::

    {"data": [...], "has_more": true, "next_cursor": "...", "prev_cursor": null}

The next page is asked for with ``after=<next_cursor>`` (``before=<prev_cursor>``
steps back; the two are exclusive). Older endpoints answer a plain JSON array;
:func:`get_page` turns that into a single page with ``has_more=False`` so one
caller handles both (docs/protocol-notes.md, "Files listing").

:func:`iterate_pages` walks the pages of any such endpoint; it is shared by
every resource that lists with cursors::

    async for item in iterate_pages(lambda after: get_page(http, "/x", Item, {"after": after})):
        ...

:class:`AsyncPager` wraps it for list methods that give both one page and
every item (the Agents API's): ``await`` it for a page, ``async for`` it for items.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import Any, Generic, TypeVar

from aiolens._core.model import Model
from aiolens._transport.http import HTTPTransport, Timeout
from aiolens.errors import ProtocolError

# get_page is the resources' helper (it takes the client's transport): not for users.
__all__ = ["AsyncPager", "CursorPage", "iterate_pages"]

T = TypeVar("T")


class CursorPage(Model, Generic[T], kw_only=True):
    """One page of a cursor-paged list.

    Attributes:
        data: the items of this page (newest first).
        has_more: whether a page follows (``after=next_cursor``).
        next_cursor: the cursor of the next page, or ``None``.
        prev_cursor: the cursor of the previous page (``before=prev_cursor``), or ``None``.
    """

    data: list[T]
    has_more: bool = False
    next_cursor: str | None = None
    prev_cursor: str | None = None


async def get_page(
    http: HTTPTransport,
    path: str,
    item_type: type[T],
    params: Mapping[str, Any],
    *,
    timeout: Timeout | None = None,
) -> CursorPage[T]:
    """``GET path`` and decode the answer as a page of ``item_type``.

    A plain JSON array (the older, documented shape) becomes one page with
    ``has_more=False``. ``None`` values in ``params`` are not sent. Errors and
    retries are those of :meth:`HTTPTransport.request` (a GET is retried).

    Raises:
        APIResponseValidationError: the answer is neither a page nor an array of items.
    """
    raw: list[T] | CursorPage[T] = await http.request(
        "GET",
        path,
        params=dict(params),
        response_type=list[item_type] | CursorPage[item_type],  # type: ignore[valid-type]
        timeout=timeout,
    )
    if isinstance(raw, list):
        return CursorPage(data=raw)
    return raw


async def iterate_pages(
    fetch: Callable[[str | None], Awaitable[CursorPage[T]]],
    *,
    after: str | None = None,
) -> AsyncIterator[T]:
    """Yield every item of every page, fetching the next page only when needed.

    Args:
        fetch: fetches the page after a cursor (``None``: the first page).
        after: start after this cursor instead of at the first page.

    Cancelling the consumer cancels the fetch in flight; nothing is left
    running. Closing the iterator early (``break``, ``aclose()``) fetches no
    further page.

    Raises:
        ProtocolError: the server says ``has_more`` but gives no new cursor
            (a repeated cursor would loop forever).
        APIError: as raised by ``fetch``.
    """
    seen: set[str] = set()
    cursor = after
    while True:
        page = await fetch(cursor)
        for item in page.data:
            yield item
        if not page.has_more:
            return
        cursor = page.next_cursor
        if cursor is None or cursor in seen:
            raise ProtocolError(
                f"The server said has_more but gave no new next_cursor (got {cursor!r})"
            )
        seen.add(cursor)


class AsyncPager(Generic[T]):
    """The answer of a list call, fetched lazily.

    * ``await pager`` fetches one page (:class:`CursorPage`), from ``after`` /
      ``before`` as given to the list call (walk on with ``after=page.next_cursor``);
    * ``async for item in pager`` yields every item from there on, fetching
      each next page only when the previous one is used up.

    Nothing is fetched until one of these is used. Cancel: the page request in
    flight is cancelled; nothing runs in the background.

    Args:
        fetch: fetches the page after ``after`` (or before ``before``).
        after: start after this cursor.
        before: end before this cursor (for the first page; iterating walks
            forward from there).

    Raises:
        ValueError: both ``after`` and ``before`` were given.
    """

    __slots__ = ("_after", "_before", "_fetch")

    def __init__(
        self,
        fetch: Callable[[str | None, str | None], Awaitable[CursorPage[T]]],
        *,
        after: str | None = None,
        before: str | None = None,
    ) -> None:
        if after is not None and before is not None:
            raise ValueError("Pass after or before, not both")
        self._fetch = fetch
        self._after = after
        self._before = before

    def __await__(self) -> Generator[Any, None, CursorPage[T]]:
        return self._fetch(self._after, self._before).__await__()

    def __aiter__(self) -> AsyncIterator[T]:
        before = self._before

        async def fetch(cursor: str | None) -> CursorPage[T]:
            nonlocal before
            first_before, before = before, None  # ``before`` bounds the first page only
            return await self._fetch(cursor, first_before)

        return iterate_pages(fetch, after=self._after).__aiter__()
