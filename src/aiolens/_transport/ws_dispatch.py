"""A ``websockets`` client connection that reads and writes its data frames itself.

``websockets`` queues every incoming message (its ``Assembler``) for a task that
awaits ``recv()``: per message a queue operation, a future and a task wake-up in
a later loop pass. :class:`DispatchingConnection` instead calls ``deliver`` with
each complete message from ``data_received`` itself, in order, as soon as its
last frame is read. The channel's reader task then only waits for the
connection to close (see :mod:`aiolens._transport.ws`).

Reading: once the opening handshake is done, the connection cuts the byte
stream into frames itself. A whole message in one unmasked text or binary frame
(the usual reply) is delivered at once, without ``websockets``' generator-based
parser, its frame objects and its event list (about 2 µs per frame). Every
other frame (pings, pongs, close, fragments, reserved bits, masked or over
``max_size``) is handed to ``websockets`` whole, so its parser always starts at
a frame boundary and does everything it does today: control frames (pings
answered, pongs acknowledged, the closing handshake), fragmented messages (their
parts come back through :meth:`process_event`), ``max_size`` (a frame over it is
handed over at once and fails the connection with 1009) and protocol errors.
Once the connection leaves the OPEN state, or a frame made ``websockets``
fail it, every byte goes to ``websockets`` as before. A text message that is
not valid UTF-8 fails the connection with 1007, as ``recv()`` does.

Writing: :meth:`DispatchingConnection.queue` frames a text or binary message
and queues it on the protocol, as ``websockets``' ``send_text`` does, minus its
per-frame ``Frame`` object, ``BytesIO`` and random-number system call: the
masks come from a small pool of ``os.urandom`` bytes refilled every 64 frames.
With an extension (compression) or frame logging on, ``websockets`` frames it.

Everything else is ``websockets``': the handshake, keepalive, the close and
the write path.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable
from typing import Any, Final

from websockets.asyncio.client import ClientConnection
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Event, State

try:  # websockets' C helper, as websockets itself uses
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

__all__ = ["DispatchingConnection"]

_TEXT: Final = 0x81  # FIN, no reserved bits, opcode 1
_BINARY: Final = 0x82
_MASKED: Final = 0x80
_MASKS: Final = 256  # bytes of masks fetched at once: 64 frames
_HEAD_END: Final = b"\r\n\r\n"
_MAX_HEAD: Final = 256 * 1024  # more than websockets accepts in a response head
_pack_16: Final = struct.Struct("!BBH").pack
_pack_64: Final = struct.Struct("!BBQ").pack


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
        self.batch = 0
        """Messages delivered by the last read (several: their receivers are about to act)."""
        self._parts: list[bytes] = []
        self._text = False
        # Reading: the handshake bytes seen so far (None once it is over); then whether
        # this connection cuts frames itself, the unread tail of the last read and the
        # largest frame it delivers itself.
        self._head: bytearray | None = bytearray()
        self._framing = False
        self._tail = bytearray()
        self._limit: int | None = None
        self._under_way = "current_size"  # the protocol's size of a fragmented message
        self._masks = b""
        self._mask_at = _MASKS

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._closed is not None:
            self._closed(self)

    # ---- writing ------------------------------------------------------------------------

    def queue(self, data: bytes, text: bool) -> None:
        """Frame one message and queue it on the protocol (written by the caller's flush).

        The caller checked that the connection is OPEN; so does ``websockets`` when
        it frames the message itself (with an extension or frame logging on).
        """
        protocol = self.protocol
        if protocol.extensions or protocol.debug or protocol.expect_continuation_frame:
            if text:
                protocol.send_text(data)
            else:
                protocol.send_binary(data)
            return
        at = self._mask_at
        if at >= _MASKS:
            self._masks, at = os.urandom(_MASKS), 0
        mask = self._masks[at : at + 4]
        self._mask_at = at + 4
        first = _TEXT if text else _BINARY
        size = len(data)
        if size < 126:
            head = bytes((first, _MASKED | size))
        elif size < 65536:
            head = _pack_16(first, _MASKED | 126, size)
        else:
            head = _pack_64(first, _MASKED | 127, size)
        protocol.writes.append(head + mask + apply_mask(data, mask))

    def write_queued(self) -> None:
        """Write every frame queued on the protocol in one go (a no-op if none is)."""
        # protocol.data_to_send(), emptying the list in place: it swaps in a new list per
        # call, which lives until the next write, long enough to be promoted and walked by
        # full collections when thousands of connections write.
        chunks = self.protocol.writes
        if not chunks:
            return
        transport = self.transport
        data = [chunk for chunk in chunks if chunk]
        eof = len(data) < len(chunks)
        chunks.clear()
        if data:
            transport.write(data[0] if len(data) == 1 else b"".join(data))
        if eof:  # websockets' end-of-stream marker: half-close, as it does
            if transport.can_write_eof():
                with contextlib.suppress(Exception):
                    transport.write_eof()
            else:
                transport.close()

    # ---- reading ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._framing:
            self._frames(data)
        elif self._head is not None:
            self._handshake(data)
        else:
            super().data_received(data)

    def _handshake(self, data: bytes) -> None:
        """Hand ``websockets`` the handshake response exactly; frame what follows it."""
        head = self._head
        assert head is not None
        seen = len(head)
        head += data
        end = head.find(_HEAD_END, max(0, seen - 3))
        if end < 0:
            if len(head) > _MAX_HEAD:  # websockets refuses it; stop keeping a copy
                self._head = None
            super().data_received(data)
            return
        split = end + 4 - seen
        self._head = None
        super().data_received(data[:split])
        protocol = self.protocol
        if self.response is not None and protocol.state is State.OPEN:
            # A 101 has no body: websockets' parser now waits at a frame boundary.
            self._framing = True
            # websockets < 15 calls them max_size and cur_size (and has no fragment limit).
            message_limit = getattr(protocol, "max_message_size", None)
            if message_limit is None:
                message_limit = getattr(protocol, "max_size", None)
            limits = (message_limit, getattr(protocol, "max_fragment_size", None))
            if not hasattr(protocol, "current_size"):
                self._under_way = "cur_size"
            bounds = [limit for limit in limits if limit is not None]
            self._limit = min(bounds) if bounds else None
            if split < len(data):
                self._frames(data[split:])
        elif split < len(data):
            super().data_received(data[split:])

    def _frames(self, data: bytes) -> None:
        """Deliver the whole one-frame messages in the stream; hand other frames over."""
        tail = self._tail
        buf: bytes | bytearray
        if tail:
            tail += data
            buf = tail
        else:
            buf = data
        protocol = self.protocol
        if protocol.state is not State.OPEN:  # closing: websockets' from now on
            self._leave(buf, 0)
            return
        whole = getattr(protocol, self._under_way) is None  # no fragmented message under way
        limit = self._limit
        size = len(buf)
        pos = 0
        received = self.received
        try:  # what deliver raises propagates, with the bytes before it consumed
            while size - pos >= 2:
                first = buf[pos]
                length = buf[pos + 1]
                start = pos + 2
                if length >= 126:  # never with the mask bit: the server does not mask
                    if length == 126:
                        if size - start < 2:
                            break
                        length = int.from_bytes(buf[start : start + 2], "big")
                        start += 2
                    elif length == 127:
                        if size - start < 8:
                            break
                        length = int.from_bytes(buf[start : start + 8], "big")
                        start += 8
                    else:  # masked: websockets fails the connection
                        self._leave(buf, pos)
                        return
                if limit is not None and length > limit:  # websockets fails it with 1009
                    self._leave(buf, pos)
                    return
                end = start + length
                if end > size:
                    break
                if whole and first == _TEXT:
                    try:
                        message: str | bytes = buf[start:end].decode()
                    except UnicodeDecodeError as exc:
                        self._invalid_text(exc)  # the connection fails: websockets discards
                        self._leave(buf, end)  # the rest
                        return
                elif whole and first == _BINARY:
                    message = bytes(buf[start:end])
                else:  # a control frame, a fragment, reserved bits: websockets' own
                    frame, pos = bytes(buf[pos:end]), end
                    super().data_received(frame)
                    if protocol.state is not State.OPEN:
                        self._leave(buf, pos)
                        return
                    whole = getattr(protocol, self._under_way) is None
                    continue
                pos = end
                self.received += 1
                self.deliver(message)
        finally:
            if self._framing:  # not handed over to websockets
                self.batch = self.received - received
                if tail:
                    del tail[:pos]
                elif pos < size:
                    tail += buf[pos:]

    def _leave(self, buf: bytes | bytearray, pos: int) -> None:
        """From ``pos`` on, every byte goes to ``websockets`` (at a frame boundary)."""
        self._framing = False
        rest = bytes(buf[pos:])
        self._tail = bytearray()
        if rest:
            super().data_received(rest)

    def _invalid_text(self, exc: UnicodeDecodeError) -> None:
        self.protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
        self.send_data()

    def process_event(self, event: Event) -> None:
        if self.response is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake response
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if event.fin:  # one frame, one message (handed over while closing)
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
                self._invalid_text(exc)
                return
        else:
            message = bytes(data)
        self.received += 1
        self.deliver(message)
