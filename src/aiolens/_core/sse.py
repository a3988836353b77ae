"""A WHATWG event-stream parser over bytes chunks (pure, no I/O).

It implements "Interpreting an event stream" from
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation:

* the stream is UTF-8 decoded with replacement of invalid sequences, and one leading
  BOM is stripped, even when its bytes arrive in separate chunks;
* lines end with CRLF, LF or CR; a CR that ends one chunk and an LF that starts the next
  are one line end;
* a line that starts with ``:`` is a comment; a line without a colon is a field name with
  an empty value; otherwise the name ends at the first colon and one space after it is
  dropped;
* ``data`` appends its value and an LF to the data buffer; ``event`` sets the event type;
  ``id`` sets the last-event-ID unless the value contains U+0000 (the ID persists across
  events, and an empty ``id`` resets it to ``""``); ``retry`` counts only when its value is
  all ASCII digits; other fields are ignored;
* a blank line dispatches the event, minus the data buffer's final LF, unless the data
  buffer is empty; the data and event type buffers are reset either way;
* at end of stream, an event that was not dispatched is dropped.

One rule is ours: memory is bounded by ``max_event_bytes`` (or by the 2 bytes of a BOM's
start, held at the very beginning until the third byte decides). An event larger than that (counted
from the line after the previous blank line, as received, up to the blank line that ends it),
or a single line longer than that, is dropped and counted in :attr:`SSEParser.oversized`: the
bytes of an over-long line are discarded as they arrive, the data of an over-long event is let
go, and parsing goes on with the next event. Its ``id`` still counts (the stream moved past it).

It sits on the hot path of the SSE consumer, so the work per chunk is done by C code where
possible: the newest line end is found with ``bytes.rfind``, every complete line of a chunk
is decoded in one call (line ends are ASCII, so decoding all complete lines at once gives
the same text as decoding each line), and the text is split on LF. Bytes after the last
line end wait in a ``bytearray`` for the next chunk. Python code runs once per line, with a
fast path for ``data: ...`` lines; a chunk's whole frames that are all ``event: message``,
``id`` and one ``data`` line (what the services send) are split and checked by C code alone.
"""

from __future__ import annotations

import contextlib
import operator
from itertools import repeat
from typing import ClassVar, Final

import msgspec

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSEEvent", "SSEParser"]

_BOM: Final = b"\xef\xbb\xbf"

_HEAD: Final = "event: message\nid: "
"""How the most usual frame starts (the emulator's and the service's frames do)."""
_NEXT_HEAD: Final = "\n\n" + _HEAD
_DATA_LINE: Final = "\ndata: "
_FIRST: Final = operator.itemgetter(0)
_LAST: Final = operator.itemgetter(2)

DEFAULT_MAX_EVENT_BYTES: Final = 16 * 1024 * 1024
"""The default bound on one event: 16 MiB, like ``websockets``' ``max_size``."""


class SSEEvent(msgspec.Struct, frozen=True, gc=False):
    """One dispatched event.

    Attributes:
        data: the ``data`` field values joined with LF (the data buffer minus its final LF).
        event: the event type; ``"message"`` when the event had no ``event`` field or an
            empty one.
        id: the parser's last-event-ID when the event was dispatched. It persists across
            events, so an event without an ``id`` field carries the previous event's ID;
            ``""`` if no ID was set, or an empty ``id`` field reset it.
    """

    data: str
    event: str = "message"
    id: str = ""


class SSEParser:
    """Incremental event-stream parser: :meth:`feed` it bytes, get the events they complete.

    One parser reads one stream (one HTTP response). It holds back only the bytes after the
    last line end and the data of the event in progress; both are bounded by
    ``max_event_bytes`` (see the module docs), plus the chunk being parsed.

    Args:
        max_event_bytes: the largest event (and line) kept; larger ones are dropped and
            counted in :attr:`oversized`.

    Attributes:
        last_event_id: the last-event-ID buffer: the value of the most recent valid ``id``
            field, ``""`` if none (or an empty ``id`` reset it). It is updated as soon as
            the ``id`` line is complete, before the event is dispatched, and is kept after
            :meth:`close`.
        dispatched_id: the event source's "last event ID string": the last-event-ID
            buffer as it was at the most recent blank line, whether or not that blank line
            dispatched an event (a frame with an ``id`` and no ``data`` moves it too). This
            is the value a client sends as ``Last-Event-ID`` when it reconnects; unlike
            :attr:`last_event_id` it never reflects an ``id`` line of an unfinished frame.
        retry: the most recent valid ``retry`` value in milliseconds, or ``None`` if the
            stream sent none. Values with more digits than Python will convert
            (:func:`sys.get_int_max_str_digits`, 4300 by default, leading zeros aside)
            are ignored.
        oversized: events dropped because they, or one of their lines, exceeded
            ``max_event_bytes``.
    """

    __slots__ = (
        "_bom_pending",
        "_buf",
        "_closed",
        "_cr_pending",
        "_data",
        "_drop",
        "_event",
        "_limit",
        "_pending",
        "_skip_line",
        "dispatched_id",
        "last_event_id",
        "oversized",
        "retry",
    )

    _short_text: ClassVar[int] = 2048
    """Below this many characters of complete lines, a chunk is parsed line by line (for
    a frame or two that costs less than splitting it into frames first)."""

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        """Create a parser at the start of a stream, with no last-event-ID and no retry.

        Raises:
            ValueError: ``max_event_bytes`` is not a positive integer.
        """
        if (
            not isinstance(max_event_bytes, int)
            or isinstance(max_event_bytes, bool)
            or max_event_bytes < 1
        ):
            raise ValueError(f"max_event_bytes must be a positive integer, not {max_event_bytes!r}")
        self._limit = max_event_bytes
        self._pending = 0  # characters of complete lines since the last blank line
        self._skip_line = False  # discarding an over-long line up to its line end
        self._drop = False  # the event in progress is over the limit: drop it
        self.oversized = 0
        self._buf = bytearray()  # bytes after the last line end (and the BOM check)
        self._bom_pending = True  # the first bytes may still be (part of) a BOM
        self._cr_pending = False  # the last byte fed was a CR: drop one LF that follows
        self._closed = False
        self._data: list[str] = []  # data buffer, one item per data field
        self._event = ""  # event type buffer
        self.last_event_id = ""
        self.dispatched_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes | bytearray) -> list[SSEEvent]:
        """Parse the next chunk of the stream.

        Chunks may split the stream anywhere: inside a line, a UTF-8 sequence, the BOM,
        or between the CR and LF of a CRLF; the result is the same as for the whole
        stream in one chunk.

        Args:
            chunk: the next bytes of the stream (``bytes`` or ``bytearray``); may be empty.

        Returns:
            The events that the chunk completed, in stream order; often empty.

        Raises:
            RuntimeError: the parser was closed.
        """
        if self._closed:
            raise RuntimeError("SSEParser.feed() called after close()")
        if self._bom_pending:
            buf = self._buf
            buf += chunk
            if len(buf) < 3 and _BOM.startswith(buf):
                return []  # could still be a BOM; decide when more bytes arrive
            self._bom_pending = False
            chunk = bytes(buf[3:] if buf.startswith(_BOM) else buf)
            buf.clear()
        if self._cr_pending:
            if not chunk:
                return []
            self._cr_pending = False
            if chunk[0] == 10:  # the LF of a CRLF split across chunks
                chunk = chunk[1:]
        if self._skip_line:
            chunk = self._skip_to_line_end(chunk)
            if not chunk:
                return []
        # The last line end in the chunk: everything before it is complete lines.
        end = chunk.rfind(b"\n")
        cr = chunk.rfind(b"\r", end + 1)
        if cr > end:
            end = cr
            if cr == len(chunk) - 1:
                self._cr_pending = True
        if end < 0:
            if chunk:
                self._buf += chunk
                if self._pending + len(self._buf) > self._limit:
                    self._over_limit()
            return []
        end += 1
        buf = self._buf
        if buf:
            buf += chunk[:end]
            text = buf.decode("utf-8", "replace")
            buf.clear()
        else:
            text = chunk[:end].decode("utf-8", "replace")
        if end < len(chunk):
            buf += chunk[end:]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        events: list[SSEEvent] = []
        if len(text) < self._short_text:  # a frame or two: line by line costs least
            self._lines(text.split("\n")[:-1], events)
            last = text.rfind("\n\n")
            self._held(text, last, buf)
            return events
        start = 0
        if self._data or self._event or self._drop:
            # A frame in progress: finish it line by line, up to the first blank line.
            if text[0] == "\n":
                start = 1
            else:
                blank = text.find("\n\n")
                start = len(text) if blank < 0 else blank + 2
            self._lines(text[:start].split("\n")[:-1], events)
        last = text.rfind("\n\n")
        if last >= start:
            # Whole frames from a frame's start: "\n\n".join(blocks) + "\n\n".
            bounded = last - start <= self._limit
            if not (bounded and self._usual_frames(text, start, last, events)):
                self._frames(text[start:last].split("\n\n"), events, bounded)
            start = last + 2
        if start < len(text):
            self._lines(text[start:].split("\n")[:-1], events)
        self._held(text, last, buf)
        return events

    def _held(self, text: str, last: int, buf: bytearray) -> None:
        """Track what the event in progress holds (``last``: the text's last ``"\\n\\n"``)."""
        # What the event in progress holds: the lines after the last blank line of the
        # text (a blank line is "\n\n" inside it, or "\n" at its start) and the
        # incomplete line.
        if last >= 0:
            self._pending = len(text) - last - 2
        elif text[0] == "\n":
            self._pending = len(text) - 1
        else:
            self._pending += len(text)
        if self._pending + len(buf) > self._limit:
            self._over_limit()

    def _usual_frames(self, text: str, start: int, end: int, events: list[SSEEvent]) -> bool:
        """Parse whole frames at once if every one is ``event: message``, ``id``, ``data``.

        ``text[start:end]``: whole frames from a frame's start, without the final blank
        line, no longer than ``max_event_bytes``. When each frame is those three lines,
        with an ``id`` free of U+0000 (the text is then ``_HEAD id _DATA_LINE data``,
        joined by ``_NEXT_HEAD``, with no other LF), its events are added and ``True``
        returned; otherwise ``False``, having changed nothing. The checks and the
        splitting are done by C code over the whole text: no Python code runs per frame.
        """
        if not text.startswith(_HEAD, start):
            return False
        pieces = text[start + len(_HEAD) : end].split(_NEXT_HEAD)
        # Each piece is an id and its data, "{id}\ndata: {data}". Taken apart one at a time
        # (no tuple outlives its piece, so the garbage collector is not set off).
        ids = list(map(_FIRST, map(str.partition, pieces, repeat(_DATA_LINE))))
        data = list(map(_LAST, map(str.partition, pieces, repeat(_DATA_LINE))))
        joined_ids, joined_data = "".join(ids), "".join(data)
        if (
            # Every piece had its "\ndata: " (one without it would count 7 more) ...
            len(joined_ids) + len(_DATA_LINE) * len(pieces) + len(joined_data)
            != end - start - len(_HEAD) - len(_NEXT_HEAD) * (len(pieces) - 1)
            # ... and no other line.
            or "\n" in joined_ids
            or "\n" in joined_data
            or "\x00" in joined_ids
        ):
            return False
        events.extend(map(SSEEvent, data, repeat("message"), ids))
        self.last_event_id = self.dispatched_id = ids[-1]
        return True

    def _frames(self, blocks: list[str], events: list[SSEEvent], bounded: bool) -> None:
        """Parse whole frames, each given as its lines without the blank line that ends it.

        The parser is at a frame's start (no data, event type or drop in progress), and
        so after each frame. The usual frame (an optional ``event: message`` line, an
        optional ``id`` line, one ``data`` line) is parsed here in a few string
        operations; any other goes through :meth:`_lines`, with the same result.
        ``bounded``: the frames are no longer than ``max_event_bytes`` altogether.
        """
        last_id = self.last_event_id
        limit = self._limit
        append = events.append
        for block in blocks:
            head, found, value = block.partition("data: ")
            if found and "\n" not in value:
                if head[:19] == "event: message\nid: ":
                    ident = head[19:-1]
                    usual = head[-1] == "\n" and "\n" not in ident and "\x00" not in ident
                    if usual:
                        last_id = ident
                elif head[:4] == "id: ":
                    ident = head[4:-1]
                    usual = head[-1] == "\n" and "\n" not in ident and "\x00" not in ident
                    if usual:
                        last_id = ident
                else:
                    usual = not head or head == "event: message\n"
                if usual:
                    if bounded or len(value) <= limit:
                        append(SSEEvent(value, "message", last_id))
                    else:
                        self.oversized += 1
                    continue
            self.last_event_id = last_id
            self._lines([*block.split("\n"), ""], events)
            last_id = self.last_event_id
        self.last_event_id = self.dispatched_id = last_id

    def _lines(self, lines: list[str], events: list[SSEEvent]) -> None:
        """Parse complete lines (without their line ends), any kind, one by one."""
        data = self._data
        event = self._event
        last_id = self.last_event_id
        dispatched = self.dispatched_id
        drop = self._drop
        limit = self._limit
        for line in lines:
            # Fast paths first, for the lines of a typical frame; the general case below
            # gives the same result for them.
            if line[:6] == "data: ":
                data.append(line[6:])
            elif not line:  # a blank line dispatches
                if data:
                    if not drop:
                        value = "\n".join(data)
                        if len(value) <= limit:
                            events.append(SSEEvent(value, event or "message", last_id))
                        else:
                            self.oversized += 1
                    data.clear()
                drop = False
                event = ""
                dispatched = last_id
            elif line[:7] == "event: ":
                event = line[7:]
            elif line[:4] == "id: " and "\x00" not in line:
                last_id = line[4:]
            else:
                # A comment's name is "" (the colon comes first): like any unknown field,
                # it matches nothing below and is ignored.
                name, _, value = line.partition(":")
                if value[:1] == " ":
                    value = value[1:]
                if name == "data":
                    data.append(value)
                elif name == "event":
                    event = value
                elif name == "id":
                    if "\x00" not in value:
                        last_id = value
                elif name == "retry" and value.isascii() and value.isdigit():
                    self._set_retry(value)
        self._event = event
        self.last_event_id = last_id
        self.dispatched_id = dispatched
        self._drop = drop

    def close(self) -> None:
        """End of stream: drop the event in progress, if any, per the spec.

        An incomplete last line and a data buffer that no blank line dispatched are
        discarded. :attr:`last_event_id`, :attr:`dispatched_id` and :attr:`retry` keep
        their values. Closing
        twice is allowed; :meth:`feed` after closing raises :class:`RuntimeError`.
        """
        self._closed = True
        self._buf.clear()
        self._data.clear()
        self._event = ""
        self._cr_pending = False
        self._skip_line = False
        self._drop = False
        self._pending = 0

    def _over_limit(self) -> None:
        """The event in progress outgrew ``max_event_bytes``: let its data go, drop it.

        An incomplete line longer than the limit is discarded, and so is the rest of it
        as it arrives (:meth:`_skip_to_line_end`). Lines without data (comments, ``id``)
        hold no memory: until a data line or an over-long line comes, nothing is dropped.
        """
        buf = self._buf
        if len(buf) > self._limit:
            buf.clear()
            self._skip_line = True
        elif not self._data:
            return
        self._data.clear()
        if not self._drop:
            self._drop = True
            self.oversized += 1

    def _skip_to_line_end(self, chunk: bytes | bytearray) -> bytes | bytearray:
        """Discard the rest of an over-long line; what follows its line end (maybe empty)."""
        lf = chunk.find(b"\n")
        cr = chunk.find(b"\r", 0, lf if lf >= 0 else len(chunk))
        if cr >= 0:
            if cr + 1 == len(chunk):
                self._cr_pending = True  # an LF in the next chunk belongs to this CR
            elif chunk[cr + 1] == 10:
                cr += 1
            lf = cr
        elif lf < 0:
            return b""
        self._skip_line = False
        return chunk[lf + 1 :]

    def _set_retry(self, digits: str) -> None:
        # int() refuses more significant digits than sys.get_int_max_str_digits() (4300
        # by default); such a delay (over 10**4000 ms) is of no use, so it is ignored
        # rather than allowed to raise.
        with contextlib.suppress(ValueError):
            self.retry = int(digits.lstrip("0") or "0")
