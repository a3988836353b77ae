"""ItemBuffer: the one bounded buffer of the SSE consumer and the detection session's events."""

from __future__ import annotations

import asyncio

import pytest

from aiolens._transport.buffer import ItemBuffer


def test_push_past_the_bound_drops_the_oldest_and_counts_them() -> None:
    buffer: ItemBuffer[int] = ItemBuffer(3)
    for i in range(5):
        buffer.push(i)
    buffer.extend([5, 6], 2)
    assert list(buffer.items) == [4, 5, 6] and buffer.dropped == 4
    buffer.append(7)  # a last word: past the bound, nothing dropped
    assert list(buffer.items) == [4, 5, 6, 7] and buffer.dropped == 4


async def test_a_consumer_waits_for_an_item_and_a_cancelled_one_passes_its_wake_up_on() -> None:
    buffer: ItemBuffer[int] = ItemBuffer(4)
    first = asyncio.ensure_future(buffer.wait_for_item())
    second = asyncio.ensure_future(buffer.wait_for_item())
    await asyncio.sleep(0)
    buffer.push(1)  # wakes the first waiter ...
    first.cancel()  # ... which is cancelled before it runs: the second one gets the item
    await asyncio.wait_for(second, 1)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert list(buffer.items) == [1]


async def test_a_producer_waits_until_there_is_room_for_all_it_needs() -> None:
    buffer: ItemBuffer[int] = ItemBuffer(4)
    buffer.extend(range(4), 4)
    waiting = asyncio.ensure_future(buffer.wait_for_room(3))
    for expected_done in (False, False, True):
        buffer.items.popleft()
        buffer.taken()
        await asyncio.sleep(0)
        assert waiting.done() == expected_done
    buffer.wake_all_consumers()  # nothing waits: harmless
