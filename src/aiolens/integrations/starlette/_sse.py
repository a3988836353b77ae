"""The relay's side toward the browser: SSE framing and the ASGI response that sends it.

:class:`RelayResponse` sends the frames and listens for the browser's
disconnect at the same time; whichever comes first ends the response and
closes the frames' iterator (shielded, so the upstream stream is released
even when the response is cancelled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, Final

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from aiolens._core.redact import get_logger
from aiolens._transport.shielded import cancel_and_wait, run_to_completion
from aiolens.archetype.events import RawEvent

log: logging.Logger = get_logger("starlette")

SSE_HEADERS: Final[Mapping[str, str]] = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
}


class RelayResponse(StreamingResponse):
    """``text/event-stream`` from an iterator of frames; ends on the browser's disconnect.

    A browser that accepts nothing for ``send_timeout`` seconds is dropped.
    Cancel: the sender and the listener are cancelled and awaited, and the
    frames' iterator is still closed (shielded), also when the response is
    cancelled again while they stop; then :class:`asyncio.CancelledError` is raised.
    """

    def __init__(self, frames: AsyncIterator[bytes], *, send_timeout: float) -> None:
        super().__init__(frames, headers=dict(SSE_HEADERS), media_type="text/event-stream")
        self._frames = frames
        self._send_timeout = send_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        streaming = asyncio.ensure_future(self._stream(send))
        listening = asyncio.ensure_future(wait_disconnect(receive))
        try:
            await asyncio.wait({streaming, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            try:
                await cancel_and_wait(streaming, listening)
            finally:  # also when cancelled (again) while the two stop
                close = getattr(self._frames, "aclose", None)
                if close is not None:
                    await run_to_completion(close())
        if streaming.done() and not streaming.cancelled() and streaming.result():
            with contextlib.suppress(OSError, RuntimeError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stream(self, send: Send) -> bool:
        """Send every frame; ``True`` when they ran out (``False``: the browser is gone)."""
        async for frame in self._frames:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self._send_timeout):
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
            except TimeoutError:
                log.info(
                    "relay: browser accepted nothing for %.0fs; dropped",
                    time.monotonic() - started,
                )
                return False
            except OSError:  # the connection is gone (ASGI spec 2.4 servers say so here)
                return False
        return True


async def wait_disconnect(receive: Receive) -> None:
    """Read ASGI messages until the browser's ``http.disconnect``."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def nothing() -> AsyncGenerator[Any, None]:
    """An empty stream (a relay of an unknown session)."""
    return
    yield b""  # pragma: no cover - makes this an async generator


def frame(event: RawEvent) -> bytes:
    """One event as an SSE frame: its ``id:`` (when it has one), its JSON as ``data:`` lines."""
    head = f"id: {event.id}\n" if event.id else ""
    data = "".join(f"data: {line}\n" for line in event.data.split("\n"))
    return f"{head}{data}\n".encode()
