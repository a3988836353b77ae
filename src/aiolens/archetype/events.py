"""Typed Lens events: what the SSE consumer and the mailbox deliver.

Known ``type`` values decode into their own msgspec Struct through one reused
tagged-union decoder; any other type decodes into :class:`UnknownEvent`,
which keeps the raw object, so a new server event never breaks a stream.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Final

import msgspec

from aiolens._core.model import Model
from aiolens.archetype.models import mask_api_keys
from aiolens.errors import ProtocolError

if TYPE_CHECKING:
    from aiolens._core.sse import SSEEvent

__all__ = [
    "FrameProcessed",
    "InferenceReset",
    "InferenceResult",
    "InferenceStart",
    "LensError",
    "LensEvent",
    "LogInfo",
    "RawEvent",
    "SSEStreamEnd",
    "SSEStreamHeartbeat",
    "SSEStreamStart",
    "StreamEnd",
    "StreamStart",
    "StreamStatus",
    "UnknownEvent",
    "decode_event",
    "event_from_object",
]


class _Event(Model, tag_field="type", kw_only=True, gc=False):
    """Fields every lens event may carry."""

    event_data: Any = None
    timestamp: float | None = None
    data: Any = None
    """The seeds' payload field (``{"timestamp", "type", "data"}``); see each event."""

    @property
    def type(self) -> str:
        """The event's wire ``type``."""
        tag = type(self).__struct_config__.tag
        assert isinstance(tag, str)
        return tag


class SSEStreamStart(_Event, tag="sse.stream.start"):
    """First frame of an SSE stream: ``event_data = {session_id, reader_id}``."""


class SSEStreamHeartbeat(_Event, tag="sse.stream.heartbeat"):
    """Keepalive; yielded only when asked for (``include_heartbeats=True``)."""


class SSEStreamEnd(_Event, tag="sse.stream.end"):
    """The stream is closing; iteration ends after it."""


class InferenceResult(_Event, tag="inference.result"):
    """A lens result.

    Two payload shapes are in use: ``event_data.response`` (a list of strings,
    with ``query_id``, ``sensor_timestamp``, ``query_metadata`` ...; the
    official examples) and ``data.result`` with a top-level ``timestamp`` (the
    seed pages). :attr:`text` and :attr:`query_id` read either.
    """

    @property
    def text(self) -> str:
        """The result text, whichever shape carried it."""
        if isinstance(self.event_data, dict):
            response = self.event_data.get("response")
            if isinstance(response, list):
                return "\n".join(str(r) for r in response)
            if response is not None:
                return str(response)
        if isinstance(self.data, dict) and "result" in self.data:
            return str(self.data["result"])
        return ""

    @property
    def query_id(self) -> str | None:
        """The ``query_id`` of the result, if any."""
        for payload in (self.event_data, self.data):
            if isinstance(payload, dict) and payload.get("query_id") is not None:
                return str(payload["query_id"])
        return None


class LogInfo(_Event, tag="log.info"):
    """A log line from the lens."""


class FrameProcessed(_Event, tag="frame.processed"):
    """A video frame was processed."""


class LensError(_Event, tag="error"):
    """An error the lens reported in its output stream (the stream goes on)."""

    message: str | None = None


class StreamStart(_Event, tag="stream.start"):
    """The input stream started."""


class StreamEnd(_Event, tag="stream.end"):
    """The input stream ended."""


class StreamStatus(_Event, tag="stream.status"):
    """Input stream status."""


class InferenceStart(_Event, tag="inference.start"):
    """The model started an inference."""


class InferenceReset(_Event, tag="inference.reset"):
    """The model's inference state was reset."""


class UnknownEvent(Model, gc=False):
    """An event of a type aiolens does not know; ``raw`` is the whole object."""

    type: str
    raw: dict[str, Any]


LensEvent = (
    SSEStreamStart
    | SSEStreamHeartbeat
    | SSEStreamEnd
    | InferenceResult
    | LogInfo
    | FrameProcessed
    | LensError
    | StreamStart
    | StreamEnd
    | StreamStatus
    | InferenceStart
    | InferenceReset
)


class RawEvent(msgspec.Struct, frozen=True, gc=False):
    """One event left encoded, for code that stores or relays it (``LensSession.raw_events``).

    Attributes:
        id: its SSE id (the resume cursor after it); ``""`` when none was set.
        type: its ``type``.
        data: its JSON text, as the server sent it.
    """

    id: str
    type: str
    data: str

    def decode(self) -> LensEvent | UnknownEvent:
        """The typed event (:func:`decode_event`)."""
        return decode_event(self.data)


_decoder = msgspec.json.Decoder(LensEvent)
decode_known: Final = _decoder.decode
"""Decode one event of a known ``type`` from JSON text; raises ``msgspec.DecodeError`` for
anything else (:func:`decode_event` handles every case)."""
_fallback = msgspec.json.Decoder(dict[str, Any])


def decode_event(data: str | bytes) -> LensEvent | UnknownEvent:
    """Decode one event from JSON text.

    Raises:
        ProtocolError: the text is not a JSON object with a string ``type``.
    """
    try:
        event: LensEvent = _decoder.decode(data)
    except msgspec.ValidationError:
        pass
    except (msgspec.DecodeError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise ProtocolError(f"Malformed event JSON: {exc}") from None
    else:
        return event
    try:
        obj = _fallback.decode(data)
    except msgspec.ValidationError:  # valid JSON, but not an object
        raise ProtocolError(f"Event without a string 'type': {str(data)[:200]}") from None
    return event_from_object(obj)


def decode_frame(frame: SSEEvent) -> LensEvent | UnknownEvent:
    """:func:`decode_event` of an SSE frame's data: the stream consumer's decoder.

    Raises:
        ProtocolError: the data is not a JSON object with a string ``type``.
    """
    try:
        event: LensEvent = _decoder.decode(frame.data)
    except (msgspec.DecodeError, RecursionError):  # an unknown type, or malformed
        return decode_event(frame.data)
    return event


def event_from_object(obj: Any) -> LensEvent | UnknownEvent:
    """Convert an already-decoded JSON object (a mailbox message) into an event.

    Raises:
        ProtocolError: ``obj`` is not an object with a string ``type``.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ProtocolError(f"Event without a string 'type': {str(obj)[:200]}")
    try:
        event: LensEvent = msgspec.convert(obj, LensEvent)
    except msgspec.ValidationError:
        mask_api_keys(obj)  # an echoed session record carries the caller's key
        return UnknownEvent(type=obj["type"], raw=obj)
    return event


class _Kind(msgspec.Struct, gc=False):
    """What telling an event's kind needs: its ``type`` (the rest is skipped)."""

    type: str


_kinds_decoder = msgspec.json.Decoder(list[_Kind])
_DATA: Final = operator.attrgetter("data")
_TYPE: Final = operator.attrgetter("type")
CONNECTION_EVENTS: Final = frozenset(
    cls.__struct_config__.tag for cls in (SSEStreamStart, SSEStreamHeartbeat, SSEStreamEnd)
)
"""The ``type`` of the events that belong to an SSE connection, not to the lens's output."""


def all_ordinary(frames: list[SSEEvent]) -> bool:
    """Whether every SSE frame is a lens event, judged at once for a whole run.

    A run whose texts hold neither ``sse.stream`` nor a ``\\u00`` escape cannot
    name a connection event (``sse.stream.*``) in any ``type``: its frames are
    lens events, or malformed ones that the consumer's full decode counts as
    such. Otherwise the texts are read as one array of ``{"type": ...}``
    objects: ``True`` when that decodes into one object per frame, none of them
    a connection event. ``False`` when unsure: each frame is then judged alone.
    """
    text = ",".join(map(_DATA, frames))
    if "sse.stream" not in text and ("\\" not in text or "\\u00" not in text):
        return True  # (an escaped ASCII letter is always \\u00XX)
    try:
        kinds = _kinds_decoder.decode(f"[{text}]")
    except (msgspec.DecodeError, RecursionError):
        return False
    return len(kinds) == len(frames) and CONNECTION_EVENTS.isdisjoint(map(_TYPE, kinds))
