"""A ``websockets`` client connection that hands each message to a callback as it is parsed.

``websockets`` queues every incoming message (its ``Assembler``) for a task that
awaits ``recv()``: per message a queue operation, a future and a task wake-up in
a later loop pass. :class:`DispatchingConnection` instead calls ``deliver`` with
each complete message from ``data_received`` itself, in order, as soon as its
last frame is parsed. The channel's reader task then only waits for the
connection to close (see :mod:`aiolens._transport.ws`).

Everything else is ``websockets``': the handshake, control frames (pings are
answered, pongs acknowledged, the closing handshake), ``max_size`` (it bounds a
fragmented message as a whole), keepalive and the write path. A text message
that is not valid UTF-8 fails the connection with 1007, as ``recv()`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Event

__all__ = ["DispatchingConnection"]


class DispatchingConnection(ClientConnection):
    """A :class:`~websockets.asyncio.client.ClientConnection` whose messages go to ``deliver``.

    Args:
        deliver: called with each message (``str`` for text, ``bytes`` for
            binary), in order, from the event loop's ``data_received``; it must
            not block, and what it raises propagates into asyncio's protocol
            callback, so the caller catches its own errors.
        closed: called with the connection the moment the connection is lost
            (from ``connection_lost``), before any task learns of it.
        args, kwargs: as for ``ClientConnection``.
    """

    def __init__(
        self,
        *args: Any,
        deliver: Callable[[str | bytes], None],
        closed: Callable[[DispatchingConnection], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.deliver = deliver
        self._closed = closed
        self.received = 0
        """Messages delivered so far."""
        self._parts: list[bytes] = []
        self._text = False

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._closed is not None:
            self._closed(self)

    def process_event(self, event: Event) -> None:
        if self.response is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake response
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if event.fin:  # the usual case: one frame, one message
                self._dispatch(opcode is Opcode.TEXT, event.data)
                return
            self._text = opcode is Opcode.TEXT
            self._parts = [bytes(event.data)]
        elif opcode is Opcode.CONT:
            self._parts.append(bytes(event.data))
            if event.fin:
                parts, self._parts = self._parts, []
                self._dispatch(self._text, b"".join(parts))
        else:
            super().process_event(event)  # pings, pongs, close

    def _dispatch(self, text: bool, data: Any) -> None:
        if text:
            try:
                message: str | bytes = bytes(data).decode()
            except UnicodeDecodeError as exc:
                self.protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
                self.send_data()
                return
        else:
            message = bytes(data)
        self.received += 1
        self.deliver(message)
