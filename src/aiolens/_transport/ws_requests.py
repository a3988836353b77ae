"""One request over a pipelined WebSocket: register its waiter, write its frame, await the reply.

Both request/response sockets without request ids use it, the Lens session's
(:class:`~aiolens.archetype.session.LensSession`) and a serving agent's
(:class:`~aiolens.archetype.agents.serving.AgentConnection`): the reader hands
each reply to the waiter the :class:`~aiolens._core.correlator.Correlator`
routes it to, so a request's waiter must be registered in the order its frame
reaches the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from aiolens._core.correlator import Correlator
from aiolens._transport.ws import WebSocketChannel
from aiolens.errors import ConnectionLostError

__all__ = ["fail_waiting", "send_request"]

R = TypeVar("R")


def send_request(
    channel: WebSocketChannel,
    correlator: Correlator[asyncio.Future[R]],
    kind: str,
    frame: bytes,
) -> Awaitable[R]:
    """Send ``frame`` as a text frame; await the result for the reply routed to it.

    The caller has waited for the connection and holds its in-flight slot; the
    waiter is registered under ``kind`` and the frame queued in this call, with
    no suspension in between, so registration order is wire order. A request
    with none other in flight is written at once, others together (see
    :meth:`WebSocketChannel.send`). When the frame is queued, the awaitable is
    the waiter itself (no coroutine per request: it would live until the reply
    comes, and with thousands of sessions be promoted and walked by full
    collections); await it at once.

    Raises (when awaited):
        ConnectionLostError: the connection dropped before the frame was
            queued (the waiter is withdrawn: no reply can come for it), or
            while waiting (the reader fails the waiter; the outcome is unknown).

    Cancel: the waiter is cancelled and stays registered, so its reply, if it
    comes, is dropped by the reader and never handed to another request.
    """
    waiter: asyncio.Future[R] = asyncio.get_running_loop().create_future()
    alone = not correlator
    correlator.add(kind, waiter)
    if channel.queue(frame, True, alone):
        return waiter
    return _send_then_wait(channel, correlator, waiter, frame, alone)


async def _send_then_wait(
    channel: WebSocketChannel,
    correlator: Correlator[asyncio.Future[R]],
    waiter: asyncio.Future[R],
    frame: bytes,
    alone: bool,
) -> R:
    """:func:`send_request` when the channel is down or backed up: the awaited way."""
    try:
        await channel.send(frame, text=True, flush=alone)
    except ConnectionLostError:
        # Its connection is gone: no reply can come for it.
        correlator.discard(waiter)
        if not waiter.cancel():  # the loss already failed it
            waiter.exception()  # retrieved: no "never retrieved" log
        raise
    return await waiter


def fail_waiting(correlator: Correlator[asyncio.Future[R]], error: ConnectionLostError) -> None:
    """Fail every request still waiting for its reply: the connection is gone.

    Each waiter gets its own :class:`ConnectionLostError` with ``error``'s
    message and close code (an exception instance is raised in one task only).
    """
    for waiter in correlator.drain():
        if not waiter.done():
            waiter.set_exception(ConnectionLostError(str(error), close_code=error.close_code))
