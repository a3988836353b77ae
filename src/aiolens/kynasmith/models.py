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

Structs sent by the client (frames, landmarks, batches) always encode every
field, defaults included: the contract does not say which fields the server
may default, so ``pose_schema``, ``confidence`` and null ``visibility`` are
always on the wire.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from aiolens._core.model import Model

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
INPUT_SCHEMA_VERSION: Final = "mediapipe_pose_landmarker/v1"
"""The value every pose frame's ``pose_schema`` must have."""
OUTPUT_SCHEMA_VERSION: Final = "kynasmith_detection_events/v1"
"""The schema of the detection events the server returns."""

LANDMARK_NAMES: Final[tuple[str, ...]] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
"""The 33 canonical landmark names in MediaPipe index order."""

_NAME_SET: Final = frozenset(LANDMARK_NAMES)
_LANDMARK_COUNT: Final = len(LANDMARK_NAMES)

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

SOURCE_KINDS: Final[frozenset[str]] = frozenset({"camera", "stream", "upload"})
"""The values a frame's ``source.kind`` may take."""

FeedbackLevel = Literal["info", "coaching", "success"]
"""The documented feedback levels; decoding accepts any string."""


# ---- pose frames ------------------------------------------------------------------------


class Landmark(Model, gc=False):
    """One pose landmark in world coordinates.

    Attributes:
        name: one of :data:`LANDMARK_NAMES`.
        x: metres (MediaPipe world convention: origin between the hips,
            ``x`` toward the image right, ``y`` down, ``z`` away from the camera).
        y: metres.
        z: metres.
        visibility: 0..1, or ``None`` when the detector gives none.
        presence: 0..1, or ``None`` when the detector gives none.
    """

    name: str
    x: float
    y: float
    z: float
    visibility: float | None = None
    presence: float | None = None


class FrameSource(Model, gc=False):
    """Where a frame came from (``kind`` is ``camera``, ``stream`` or ``upload``)."""

    kind: str
    frame_width: int
    frame_height: int


class PoseFrame(Model, gc=False, kw_only=True):
    """One pose frame: ``PoseFrameV1``, or ``RealtimePoseFrameV1`` when ``frame_seq`` is set.

    Attributes:
        timestamp_ms: milliseconds; fractions are kept.
        landmarks: exactly 33, each canonical name once (see :func:`validate_frame`).
        confidence: frame-level confidence, 0..1.
        pose_schema: must be :data:`INPUT_SCHEMA_VERSION`.
        source: the camera/stream/upload the frame came from, if known.
        frame_seq: ≥ 1 and increasing across the whole session (realtime only).
    """

    timestamp_ms: float
    landmarks: list[Landmark]
    confidence: float = 1.0
    pose_schema: str = INPUT_SCHEMA_VERSION
    source: FrameSource | None = None
    frame_seq: int | None = None


def validate_frame(frame: PoseFrame) -> list[str]:
    """Check one frame against contract v1.

    The client calls this on every frame it sends, so the common case (33
    landmarks in MediaPipe order, every value in range) is one inlined pass
    that allocates nothing but the returned empty list; only an invalid frame
    pays for the detailed diagnosis. Landmarks in another order are valid too.

    Args:
        frame: the frame to check.

    Returns:
        Human-readable problems, ``[]`` when the frame is valid. Landmark-set
        problems name the missing, duplicate and unknown landmarks.
    """
    problems: list[str] = []
    if frame.pose_schema != INPUT_SCHEMA_VERSION:
        problems.append(f"pose_schema is {frame.pose_schema!r}, expected {INPUT_SCHEMA_VERSION!r}")
    confidence = frame.confidence
    if not 0.0 <= confidence <= 1.0:  # also catches NaN
        problems.append(f"confidence {confidence} is outside 0..1")
    timestamp = frame.timestamp_ms
    if timestamp - timestamp != 0.0:  # NaN or ±inf
        problems.append(f"timestamp_ms {timestamp} is not finite")
    if frame.frame_seq is not None and frame.frame_seq < 1:
        problems.append(f"frame_seq {frame.frame_seq} is below 1")
    source = frame.source
    if source is not None and source.kind not in SOURCE_KINDS:
        problems.append(f"source.kind is {source.kind!r}, expected camera, stream or upload")
    marks = frame.landmarks
    in_order = len(marks) == _LANDMARK_COUNT
    names = LANDMARK_NAMES  # indexed only while in_order, i.e. len(marks) == 33
    for i, mark in enumerate(marks):
        if in_order and mark.name != names[i]:
            in_order = False
        x, y, z = mark.x, mark.y, mark.z
        if x - x + y - y + z - z != 0.0:  # NaN when any coordinate is NaN or ±inf
            problems.append(f"{mark.name}: coordinates ({x}, {y}, {z}) are not finite")
        v, p = mark.visibility, mark.presence
        if (v is not None and not 0.0 <= v <= 1.0) or (p is not None and not 0.0 <= p <= 1.0):
            problems.append(f"{mark.name}: visibility {v} / presence {p} outside 0..1")
    if not in_order:
        problems.extend(_landmark_set_problems(marks))
    return problems


def _landmark_set_problems(marks: list[Landmark]) -> list[str]:
    counts: dict[str, int] = {}
    for mark in marks:
        counts[mark.name] = counts.get(mark.name, 0) + 1
    missing = [name for name in LANDMARK_NAMES if name not in counts]
    duplicate = [name for name, n in counts.items() if n > 1]
    unknown = [name for name in counts if name not in _NAME_SET]
    problems = []
    if missing:
        problems.append(f"missing landmarks: {', '.join(missing)}")
    if duplicate:
        problems.append(f"duplicate landmarks: {', '.join(duplicate)}")
    if unknown:
        problems.append(f"unknown landmarks: {', '.join(repr(n) for n in unknown)}")
    if len(marks) != _LANDMARK_COUNT:
        problems.append(f"expected {_LANDMARK_COUNT} landmarks, got {len(marks)}")
    return problems


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


# ---- REST -------------------------------------------------------------------------------


class AccessToken(Model, kw_only=True):
    """The answer of ``POST /api/auth/access-tokens``; ``repr`` hides the token."""

    access_token: str
    token_type: str
    expires_in_seconds: float
    organization_id: str
    project_id: str
    scopes: list[str] | None = None

    def __repr__(self) -> str:
        return f"AccessToken(project_id={self.project_id!r}, expires_in={self.expires_in_seconds})"


class DetectionSessionCreated(Model, kw_only=True):
    """The answer of ``POST /api/detection/sessions``; ``repr`` hides the token."""

    session_id: str
    project_id: str
    status: str
    mode: str
    resolved_movespec_version_id: str
    stream_url: str
    runtime_token: str
    input_schema_version: str
    output_schema_version: str

    def __repr__(self) -> str:
        return (
            f"DetectionSessionCreated(session_id={self.session_id!r}, mode={self.mode!r}, "
            f"status={self.status!r})"
        )


class DetectionSessionRecord(Model, kw_only=True):
    """The stored session of ``GET /api/detection/sessions/{id}``.

    Datetimes are kept as the server's ISO-8601 strings.
    """

    session_id: str
    project_id: str
    mode: str
    status: str
    resolved_movespec_version_id: str
    accepted_frames_total: int
    organization_id: str
    started_at: str | None = None
    ended_at: str | None = None
    terminal_outcome: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class MoveSpec(Model, kw_only=True):
    """A MoveSpec; both documented variants decode (most fields optional)."""

    movespec_id: str
    name: str
    project_id: str
    visibility: str
    created_at: str
    updated_at: str
    organization_id: str | None = None
    description: str | None = None
    current_released_version_id: str | None = None
    archived_at: str | None = None
    created_by: str | None = None
    updated_by: str | None = None
    star_count: int = 0


class MoveSpecDraft(Model, kw_only=True):
    """A MoveSpec's mutable draft."""

    draft_id: str
    movespec_id: str
    yaml_source: str
    updated_at: str
    updated_by: str | None = None


class MoveSpecVersion(Model, kw_only=True):
    """An immutable MoveSpec version; ``content_hash`` is the YAML's SHA-256."""

    movespec_version_id: str
    movespec_id: str
    version_number: int
    yaml_source: str
    content_hash: str
    created_at: str
    created_by: str | None = None


class ValidationIssue(Model, kw_only=True):
    """One validation problem; ``line`` and ``column`` are 1-based."""

    code: str
    message: str
    severity: str
    path: str | None = None
    line: int | None = None
    column: int | None = None


class ValidationResult(Model, kw_only=True):
    """The answer of ``POST /api/movespecs/{id}/draft/validate``.

    Errors block a release; warnings do not.
    """

    ok: bool
    target_type: str
    target_id: str
    validated_at: str
    errors: list[ValidationIssue] = msgspec.field(default_factory=list)
    warnings: list[ValidationIssue] = msgspec.field(default_factory=list)
