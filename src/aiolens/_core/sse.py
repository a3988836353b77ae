"""A WHATWG event-stream parser over bytes chunks (pure, no I/O).

It follows https://html.spec.whatwg.org/multipage/server-sent-events.html
("Interpreting an event stream") exactly:

* one leading UTF-8 BOM is stripped, even when split across chunks;
* lines end with CRLF, LF or CR, and a CR ending one chunk followed by an LF
  starting the next is one line end;
* ``:`` lines are comments; a field without a colon has an empty value; one
  space after the colon is dropped;
* ``data`` lines join with LF; ``event`` sets the type (``message`` when
  empty); ``id`` sets the last-event-ID unless it contains NULL (it persists
  across events, and an empty ``id`` resets it); ``retry`` counts only when
  all ASCII digits; other fields are ignored;
* a blank line dispatches the event, unless no ``data`` field was seen;
* undecodable bytes become U+FFFD; a partial event at end of stream is dropped.

It is the hot path of the SSE consumer: lines are found with ``bytes.split``
on whole chunks, and only field values are decoded.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["SSEEvent", "SSEParser"]

_BOM: Final = b"\xef\xbb\xbf"


class SSEEvent(msgspec.Struct, frozen=True, gc=False):
    """One dispatched event.

    Attributes:
        data: the data lines joined with LF.
        event: the event type (``"message"`` when none was given).
        id: the last-event-ID at dispatch time (``""`` if none).
    """

    data: str
    event: str = "message"
    id: str = ""


class SSEParser:
    """Incremental parser: :meth:`feed` bytes, get the events they complete.

    Attributes:
        last_event_id: the current last-event-ID buffer.
        retry: the last valid ``retry`` value in milliseconds, if any.
    """

    __slots__ = ("_bom_pending", "_buf", "_cr_pending", "_data", "_event", "last_event_id", "retry")

    def __init__(self) -> None:
        self._buf = b""
        self._bom_pending = True
        self._cr_pending = False
        self._data: list[str] = []
        self._event = ""
        self.last_event_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse a chunk; returns the events completed by it, in order."""
        if not chunk:
            return []
        if self._bom_pending:
            chunk = self._buf + chunk
            self._buf = b""
            if len(chunk) < 3 and _BOM.startswith(chunk):
                self._buf = chunk
                return []
            self._bom_pending = False
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        if self._cr_pending:
            self._cr_pending = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            if buf[-1:] == b"\r":
                self._cr_pending = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        if not lines:
            return []
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(
                        SSEEvent("\n".join(data), self._event or "message", self.last_event_id)
                    )
                    data.clear()
                self._event = ""
                continue
            if line[:6] == b"data: ":  # the common case
                data.append(line[6:].decode("utf-8", "replace"))
                continue
            colon = line.find(b":")
            if colon == 0:
                continue  # a comment
            if colon < 0:
                name, value = line, b""
            else:
                name, value = line[:colon], line[colon + 1 :]
                if value[:1] == b" ":
                    value = value[1:]
            if name == b"data":
                data.append(value.decode("utf-8", "replace"))
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
            elif name == b"id":
                if b"\x00" not in value:
                    self.last_event_id = value.decode("utf-8", "replace")
            elif name == b"retry" and value.isdigit():  # bytes.isdigit: ASCII digits only
                self.retry = int(value)
        return events

    def close(self) -> None:
        """End of stream: an event not yet dispatched is dropped, per the spec."""
        self._buf = b""
        self._data.clear()
        self._event = ""
        self._cr_pending = False
