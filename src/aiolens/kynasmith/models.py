"""msgspec models of the Kynasmith Detection API (contract v1; docs/protocol-notes.md, "Kynasmith").

These structs are the client's reading of the wire format: it decodes and
encodes with them. The emulator has its own (``aiolens.emulator.kynasmith_wire``);
both are checked field by field against the vendor's ``kynasmith-contracts``
(``tests/kynasmith/test_models_contract.py`` lists each remaining difference
and why).

Tolerance rules:

* Unknown fields are ignored everywhere (msgspec's default), so a newer server
  never breaks an old client.
* Fields whose value set may grow (session ``status``, ``mode``, feedback
  ``level`` …) are typed ``str``; the documented values are given as
  ``Literal`` aliases (:data:`SessionStatus`, :data:`FeedbackLevel`) for callers
  who want them.
* Detection events arrive as ``list[msgspec.Raw]`` inside an
  :class:`EventBatch` and are decoded one by one with
  :func:`decode_detection_event`, so an event type this client does not know
  becomes an :class:`UnknownEvent` instead of failing the whole batch.

Realtime messages are tagged unions on ``type``, decoded by one reused decoder
per direction (:data:`server_message_decoder`, :data:`client_message_decoder`)
and encoded by the shared :data:`encoder`.

The pose frames live in ``_frames`` and the REST answers in ``_records``, both
re-exported here: this module is the one to import from.

Structs sent by the client (frames, landmarks, batches) always encode every
field, defaults included: the contract does not say which fields the server
may default, so ``pose_schema``, ``confidence`` and null ``visibility`` are
always on the wire.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from aiolens._core.model import Model
from aiolens.kynasmith._frames import (
    INPUT_SCHEMA_VERSION,
    LANDMARK_NAMES,
    SOURCE_KINDS,
    FrameSource,
    Landmark,
    PoseFrame,
    validate_frame,
)
from aiolens.kynasmith._records import (
    AccessToken,
    DetectionSessionCreated,
    DetectionSessionRecord,
    MoveSpec,
    MoveSpecDraft,
    MoveSpecVersion,
    ValidationIssue,
    ValidationResult,
)

__all__ = [
    "CONTRACT_MAJOR_VERSION",
    "INPUT_SCHEMA_VERSION",
    "LANDMARK_NAMES",
    "OUTPUT_SCHEMA_VERSION",
    "SESSION_STATUSES",
    "SOURCE_KINDS",
    "TERMINAL_STATUSES",
    "AccessToken",
    "Cancel",
    "ClientMessage",
    "CompletedPayload",
    "DetectionEvent",
    "DetectionSessionCreated",
    "DetectionSessionRecord",
    "ErrorDetail",
    "ErrorMessage",
    "EventBatch",
    "EventCompleted",
    "EventInterrupted",
    "Feedback",
    "FeedbackLevel",
    "FeedbackPayload",
    "Finalize",
    "FrameAck",
    "FrameBatch",
    "FrameSource",
    "InterruptedPayload",
    "Landmark",
    "MoveSpec",
    "MoveSpecDraft",
    "MoveSpecVersion",
    "Ping",
    "Pong",
    "PoseFrame",
    "ServerMessage",
    "SessionDone",
    "SessionStatus",
    "SessionUpdate",
    "ShapeEnter",
    "ShapeExit",
    "ShapePayload",
    "UnknownEvent",
    "ValidationIssue",
    "ValidationResult",
    "client_message_decoder",
    "decode_detection_event",
    "encoder",
    "server_message_decoder",
    "validate_frame",
]

CONTRACT_MAJOR_VERSION: Final = 1
"""The only runtime-contract major version the API supports."""
OUTPUT_SCHEMA_VERSION: Final = "kynasmith_detection_events/v1"
"""The schema of the detection events the server returns."""

SessionStatus = Literal["created", "streaming", "finalizing", "completed", "failed", "cancelled"]
"""The documented detection-session states."""
SESSION_STATUSES: Final[tuple[str, ...]] = (
    "created",
    "streaming",
    "finalizing",
    "completed",
    "failed",
    "cancelled",
)
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({"completed", "failed", "cancelled"})
"""States a session never leaves."""

FeedbackLevel = Literal["info", "coaching", "success"]
"""The documented feedback levels; decoding accepts any string."""


# ---- detection events -------------------------------------------------------------------


class _Event(Model, tag_field="type", kw_only=True, gc=False):
    event_id: str
    session_id: str
    ts_ms: float


class ShapePayload(Model, gc=False):
    """A movement phase (``shape_key``, the MoveSpec phase name) and a confidence."""

    shape_key: str
    confidence: float


class ShapeEnter(_Event, tag="shape_enter"):
    """A phase of the movement was entered."""

    payload: ShapePayload


class ShapeExit(_Event, tag="shape_exit"):
    """A phase of the movement was left."""

    payload: ShapePayload


class CompletedPayload(Model, gc=False):
    """One completed repetition of ``event_key`` (the movement name)."""

    event_key: str
    score: float | None = None


class EventCompleted(_Event, tag="event_completed"):
    """A full repetition was completed."""

    payload: CompletedPayload


class InterruptedPayload(Model, gc=False):
    """Why a repetition broke off."""

    reason: str


class EventInterrupted(_Event, tag="event_interrupted"):
    """A repetition was interrupted before completion."""

    payload: InterruptedPayload


class FeedbackPayload(Model, gc=False):
    """A feedback cue: ``level`` is one of :data:`FeedbackLevel` (any string decodes)."""

    level: str
    message: str


class Feedback(_Event, tag="feedback"):
    """A feedback cue from the MoveSpec fired."""

    payload: FeedbackPayload


class UnknownEvent(Model, gc=False):
    """A detection event this client cannot decode (new type or unexpected shape).

    Attributes:
        type: the event's ``type`` (``""`` when absent or not a string).
        raw: the whole JSON object.
    """

    type: str
    raw: dict[str, Any]

    @property
    def event_id(self) -> str | None:
        """The event's ``event_id`` if it has a string one."""
        value = self.raw.get("event_id")
        return value if isinstance(value, str) else None


DetectionEvent = ShapeEnter | ShapeExit | EventCompleted | EventInterrupted | Feedback
"""The detection events of schema ``kynasmith_detection_events/v1``."""


# ---- realtime messages ------------------------------------------------------------------


class ErrorDetail(Model, gc=False):
    """The Kynasmith error object; ``details`` values are scalars."""

    code: str
    message: str = ""
    retryable: bool = False
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class _Message(Model, tag_field="type", gc=False):
    pass


class FrameBatch(_Message, tag="frame_batch"):
    """Client → server: pose frames; ``batch_seq`` ≥ 1 increases per session."""

    batch_seq: int
    frames: list[PoseFrame] = msgspec.field(default_factory=list)


class Finalize(_Message, tag="finalize"):
    """Client → server: the last frame was sent."""


class Cancel(_Message, tag="cancel"):
    """Client → server: cancel the session."""


class Ping(_Message, tag="ping"):
    """Keepalive, either direction; the receiver answers :class:`Pong`."""


class Pong(_Message, tag="pong"):
    """Answer to a :class:`Ping`, either direction."""


class FrameAck(_Message, tag="frame_ack"):
    """Server → client: batch ``batch_seq`` was processed.

    ``rejected_frame_indexes`` are zero-based indexes into that batch;
    ``accepted_frames_total`` is the authoritative running total.
    """

    batch_seq: int
    accepted_frame_count: int
    accepted_frames_total: int
    rejected_frame_indexes: list[int] = msgspec.field(default_factory=list)


class EventBatch(_Message, tag="event_batch"):
    """Server → client: the detection events of batch ``batch_seq``.

    ``events`` stay raw JSON; decode each with :func:`decode_detection_event` so
    that one unknown event does not spoil the others.
    """

    batch_seq: int
    events: list[msgspec.Raw] = msgspec.field(default_factory=list)


class SessionUpdate(_Message, tag="session_update"):
    """Server → client: the session's status (sent on attach and on every change)."""

    session_id: str
    status: str
    accepted_frames_total: int
    terminal_outcome: str | None = None


class SessionDone(_Message, tag="session_done"):
    """Server → client: the session reached a terminal state; ``error`` is set on failure."""

    session_id: str
    status: str
    accepted_frames_total: int
    terminal_outcome: str | None = None
    error: ErrorDetail | None = None


class ErrorMessage(_Message, tag="error"):
    """Server → client: an error (the socket may close after it)."""

    error: ErrorDetail


ServerMessage = FrameAck | EventBatch | SessionUpdate | SessionDone | ErrorMessage | Ping | Pong
"""Every message the server sends on the realtime socket."""
ClientMessage = FrameBatch | Finalize | Cancel | Ping | Pong
"""Every message the client sends on the realtime socket."""

server_message_decoder: Final = msgspec.json.Decoder(ServerMessage)
"""Decodes one server → client text frame."""
client_message_decoder: Final = msgspec.json.Decoder(ClientMessage)
"""Decodes one client → server text frame (the emulator's side)."""
encoder: Final = msgspec.json.Encoder()
"""The one JSON encoder for every model here."""

_event_decoder: Final = msgspec.json.Decoder(DetectionEvent)
_object_decoder: Final = msgspec.json.Decoder(dict[str, Any])


def decode_detection_event(raw: msgspec.Raw | bytes | str) -> DetectionEvent | UnknownEvent:
    """Decode one detection event.

    Args:
        raw: one event's JSON, e.g. an item of :attr:`EventBatch.events`.

    Returns:
        The typed event, or :class:`UnknownEvent` for a JSON object whose
        ``type`` is unknown or whose fields do not fit the known type.

    Raises:
        msgspec.DecodeError: ``raw`` is not valid JSON or not a JSON object
            (:class:`msgspec.ValidationError` is a subclass).
    """
    try:
        event: DetectionEvent = _event_decoder.decode(raw)
    except msgspec.ValidationError:
        obj = _object_decoder.decode(raw)
        kind = obj.get("type")
        return UnknownEvent(type=kind if isinstance(kind, str) else "", raw=obj)
    return event
