"""RelayResponse's close path: the frames' iterator is closed however the response ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiolens.integrations.starlette._sse import RelayResponse


class SlowToStopFrames:
    """Frames that never come and take a while to stop when cancelled (an upstream
    stream finishing its own close)."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.release = asyncio.Event()
        self.closed = False

    def __aiter__(self) -> SlowToStopFrames:
        return self

    async def __anext__(self) -> bytes:
        try:
            await asyncio.Event().wait()
        finally:
            self.stopping.set()
            await self.release.wait()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed = True


async def test_a_response_cancelled_again_while_its_tasks_stop_still_closes_the_frames() -> None:
    frames = SlowToStopFrames()
    response = RelayResponse(frames, send_timeout=60.0)
    started = asyncio.Event()

    async def send(message: Any) -> None:
        started.set()

    async def receive() -> Any:
        await asyncio.Event().wait()  # the browser never leaves

    task = asyncio.create_task(response({"type": "http"}, receive, send))
    await started.wait()
    task.cancel()  # the server stops the response: the sender is asked to stop
    await frames.stopping.wait()
    task.cancel()  # cancelled again while the sender stops
    for _ in range(5):
        await asyncio.sleep(0)
    frames.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert frames.closed
