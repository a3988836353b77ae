"""The relay's side toward the Lens API: one loop reading a session's event stream.

:func:`relay_items` is what the three response styles of
:class:`~aiolens.integrations.starlette.Aiolens` share: the events, left
encoded, with ``None`` in between when a heartbeat is due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any, Final, TypeAlias

import msgspec

from aiolens._core.redact import get_logger
from aiolens.archetype.events import RawEvent
from aiolens.errors import AiolensError

log: logging.Logger = get_logger("starlette")

Item: TypeAlias = RawEvent | None  # None: a heartbeat is due
END_TYPE: Final = "sse.stream.end"
_encoder: Final = msgspec.json.Encoder()


async def relay_items(
    stream: AsyncIterable[RawEvent],
    *,
    heartbeat: float,
    stopping: asyncio.Event | None,
    session_id: str,
) -> AsyncGenerator[Item, None]:
    """``stream``'s events, and ``None`` after each ``heartbeat`` seconds of silence.

    Ends when the stream does, on an upstream error (relayed as a
    ``{"type": "aiolens.relay_error"}`` event), or when ``stopping`` is set.
    Closing the stream is the caller's. Cancel or ``aclose()``: the pending
    read of the stream is cancelled.
    """
    nxt: asyncio.Future[RawEvent] | None = None
    stop = asyncio.ensure_future(stopping.wait()) if stopping is not None else None
    try:
        iterator = aiter(stream)
        while True:
            if nxt is None:
                nxt = asyncio.ensure_future(anext(iterator))
            waiting: set[asyncio.Future[Any]] = {nxt} if stop is None else {nxt, stop}
            done, _ = await asyncio.wait(
                waiting, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED
            )
            if stop is not None and stop in done:
                return
            if nxt not in done:
                yield None
                continue
            try:
                item = nxt.result()
            except StopAsyncIteration:
                return
            except AiolensError as exc:
                log.warning("relay of session %s: upstream failed: %s", session_id, exc)
                error = {"type": "aiolens.relay_error", "message": str(exc)}
                yield RawEvent("", "aiolens.relay_error", _encoder.encode(error).decode())
                return
            finally:
                if nxt.done():
                    nxt = None
            yield item
    finally:
        for future in (nxt, stop):
            if future is not None and not future.done():
                future.cancel()
