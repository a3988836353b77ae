"""Cursor pages: the generic pager, and the files listing in both of its shapes."""

from __future__ import annotations

import pytest

from aiolens import AsyncArchetypeClient, ProtocolError
from aiolens.archetype.pages import CursorPage, iterate_pages


async def test_iterate_pages_follows_next_cursor_until_has_more_is_false() -> None:
    pages = {
        None: CursorPage(data=[1, 2], has_more=True, next_cursor="a"),
        "a": CursorPage(data=[3], has_more=True, next_cursor="b"),
        "b": CursorPage(data=[4], has_more=False, next_cursor=None),
    }
    asked: list[str | None] = []

    async def fetch(cursor: str | None) -> CursorPage[int]:
        asked.append(cursor)
        return pages[cursor]

    assert [i async for i in iterate_pages(fetch)] == [1, 2, 3, 4]
    assert asked == [None, "a", "b"]


async def test_iterate_pages_refuses_a_cursor_that_loops() -> None:
    async def fetch(cursor: str | None) -> CursorPage[int]:
        return CursorPage(data=[1], has_more=True, next_cursor="same")

    with pytest.raises(ProtocolError, match="next_cursor"):
        _ = [i async for i in iterate_pages(fetch)]


async def test_iterate_pages_stops_fetching_when_the_consumer_stops() -> None:
    asked: list[str | None] = []

    async def fetch(cursor: str | None) -> CursorPage[int]:
        asked.append(cursor)
        return CursorPage(data=[len(asked)], has_more=True, next_cursor=str(len(asked)))

    async for item in iterate_pages(fetch):
        if item == 2:
            break
    assert asked == [None, "1"]


async def upload_many(client: AsyncArchetypeClient, count: int) -> list[str]:
    names = [f"f{i:02d}.txt" for i in range(count)]
    for name in names:
        await client.files.upload(name.encode(), filename=name)
    return names


async def test_files_are_listed_newest_first_across_cursor_pages(
    client: AsyncArchetypeClient,
) -> None:
    names = await upload_many(client, 7)
    listed = [m.file_id async for m in client.files.iter_metadata(limit=3)]
    assert listed == names[::-1]
    first = await client.files.all_metadata()  # no parameters: the SDK's cursor page
    assert [m.file_id for m in first.data] == names[::-1] and first.has_more is False
    page = await client.files.all_metadata(limit=3)
    back = await client.files.all_metadata(limit=3, after=page.next_cursor)
    assert back.prev_cursor is not None
    again = await client.files.all_metadata(limit=3, before=back.prev_cursor)
    assert [m.file_id for m in again.data] == [m.file_id for m in page.data]


async def test_the_documented_array_form_still_decodes_as_one_page(
    client: AsyncArchetypeClient,
) -> None:
    names = await upload_many(client, 4)
    page = await client.files.all_metadata(shard_index=0, max_items_per_shard=2)
    assert [m.file_id for m in page.data] == names[:2]
    assert page.has_more is False and page.next_cursor is None
    raw = await client._http.request("GET", "/files/metadata", params={"shard_index": -1})
    assert isinstance(raw, list) and len(raw) == 4


async def test_listing_options_are_checked_before_any_request(
    client: AsyncArchetypeClient,
) -> None:
    with pytest.raises(ValueError, match="not both"):
        await client.files.all_metadata(after="a", before="b")
    with pytest.raises(ValueError, match="limit"):
        client.files.iter_metadata(limit=0)
