"""msgspec models of the Kynasmith Detection API (PROTOCOL Part B, contract v1).

Unknown fields are ignored everywhere, so a newer server never breaks an old
client. The realtime messages are tagged unions on ``type`` decoded by one
reused decoder per direction.
"""

from __future__ import annotations

import math
from typing import Any, Final, Literal

import msgspec

__all__ = [
    "CONTRACT_MAJOR_VERSION",
    "INPUT_SCHEMA_VERSION",
    "LANDMARK_NAMES",
    "OUTPUT_SCHEMA_VERSION",
    "TERMINAL_STATUSES",
    "AccessToken",
    "Cancel",
    "ClientMessage",
    "DetectionEvent",
    "DetectionSessionCreated",
    "DetectionSessionRecord",
    "ErrorDetail",
    "ErrorMessage",
    "EventBatch",
    "Finalize",
    "FrameAck",
    "FrameBatch",
    "FrameSource",
    "Landmark",
    "MoveSpec",
    "MoveSpecDraft",
    "MoveSpecVersion",
    "Ping",
    "Pong",
    "PoseFrame",
    "ServerMessage",
    "SessionDone",
    "SessionUpdate",
    "ValidationIssue",
    "ValidationResult",
    "validate_frame",
]

CONTRACT_MAJOR_VERSION: Final = 1
INPUT_SCHEMA_VERSION: Final = "mediapipe_pose_landmarker/v1"
OUTPUT_SCHEMA_VERSION: Final = "kynasmith_detection_events/v1"

LANDMARK_NAMES: Final = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
_NAME_SET: Final = frozenset(LANDMARK_NAMES)

SessionStatus = Literal["created", "streaming", "finalizing", "completed", "failed", "cancelled"]
TERMINAL_STATUSES: Final = frozenset({"completed", "failed", "cancelled"})


# ---- pose frames ------------------------------------------------------------------------


class Landmark(msgspec.Struct, gc=False, omit_defaults=True):
    """One landmark in world coordinates (metres)."""

    name: str
    x: float
    y: float
    z: float
    visibility: float | None = None
    presence: float | None = None


class FrameSource(msgspec.Struct, gc=False):
    """Where a frame came from."""

    kind: Literal["camera", "stream", "upload"]
    frame_width: int
    frame_height: int


class PoseFrame(msgspec.Struct, gc=False, kw_only=True, omit_defaults=True):
    """One pose frame (``RealtimePoseFrameV1`` when ``frame_seq`` is set)."""

    timestamp_ms: float
    landmarks: list[Landmark]
    confidence: float = 1.0
    pose_schema: str = INPUT_SCHEMA_VERSION
    source: FrameSource | None = None
    frame_seq: int | None = None


def _unit(value: float | None) -> bool:
    return value is None or 0.0 <= value <= 1.0


def validate_frame(frame: PoseFrame) -> list[str]:
    """Problems that make ``frame`` invalid under contract v1 (``[]`` when valid)."""
    problems: list[str] = []
    if frame.pose_schema != INPUT_SCHEMA_VERSION:
        problems.append(f"pose_schema must be {INPUT_SCHEMA_VERSION!r}")
    if not (0.0 <= frame.confidence <= 1.0):
        problems.append(f"confidence {frame.confidence} is outside 0..1")
    if not math.isfinite(frame.timestamp_ms):
        problems.append("timestamp_ms is not finite")
    marks = frame.landmarks
    names = [m.name for m in marks]
    if len(marks) != 33 or set(names) != _NAME_SET:
        seen = set(names)
        missing = [n for n in LANDMARK_NAMES if n not in seen]
        unknown = sorted(seen - _NAME_SET)
        duplicate = sorted({n for n in names if names.count(n) > 1})
        if missing:
            problems.append(f"missing landmarks: {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown landmarks: {', '.join(unknown)}")
        if duplicate:
            problems.append(f"duplicate landmarks: {', '.join(duplicate)}")
        if not (missing or unknown or duplicate):
            problems.append(f"expected 33 landmarks, got {len(marks)}")
    for m in marks:
        if not (math.isfinite(m.x) and math.isfinite(m.y) and math.isfinite(m.z)):
            problems.append(f"{m.name}: coordinates are not finite")
        if not (_unit(m.visibility) and _unit(m.presence)):
            problems.append(f"{m.name}: visibility/presence outside 0..1")
    return problems


# ---- detection events -------------------------------------------------------------------


class _Event(msgspec.Struct, tag_field="type", kw_only=True, gc=False):
    event_id: str
    session_id: str
    ts_ms: float


class ShapePayload(msgspec.Struct, gc=False):
    """A movement phase and the detector's confidence."""

    shape_key: str
    confidence: float = 1.0


class ShapeEnter(_Event, tag="shape_enter"):
    """A phase of the movement was entered."""

    payload: ShapePayload


class ShapeExit(_Event, tag="shape_exit"):
    """A phase was left."""

    payload: ShapePayload


class CompletedPayload(msgspec.Struct, gc=False):
    """A completed repetition of ``event_key``."""

    event_key: str
    score: float | None = None


class EventCompleted(_Event, tag="event_completed"):
    """A full repetition was completed."""

    payload: CompletedPayload


class InterruptedPayload(msgspec.Struct, gc=False):
    """Why a repetition broke off."""

    reason: str


class EventInterrupted(_Event, tag="event_interrupted"):
    """A repetition was interrupted before completion."""

    payload: InterruptedPayload


class FeedbackPayload(msgspec.Struct, gc=False):
    """A feedback cue."""

    level: Literal["info", "coaching", "success"]
    message: str


class Feedback(_Event, tag="feedback"):
    """A feedback cue from the MoveSpec fired."""

    payload: FeedbackPayload


class UnknownEvent(msgspec.Struct, gc=False):
    """A detection event of a type this client does not know; ``raw`` keeps it whole."""

    type: str
    raw: dict[str, Any]


DetectionEvent = ShapeEnter | ShapeExit | EventCompleted | EventInterrupted | Feedback


# ---- realtime messages ------------------------------------------------------------------


class ErrorDetail(msgspec.Struct, gc=False):
    """The Kynasmith error object."""

    code: str
    message: str = ""
    retryable: bool = False
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class FrameBatch(msgspec.Struct, tag_field="type", tag="frame_batch", gc=False):
    """Client → server: pose frames."""

    batch_seq: int
    frames: list[PoseFrame]


class Finalize(msgspec.Struct, tag_field="type", tag="finalize"):
    """Client → server: the last frame was sent."""


class Cancel(msgspec.Struct, tag_field="type", tag="cancel"):
    """Client → server: cancel the session."""


class Ping(msgspec.Struct, tag_field="type", tag="ping"):
    """Keepalive, either direction."""


class Pong(msgspec.Struct, tag_field="type", tag="pong"):
    """Answer to a ping, either direction."""


class FrameAck(msgspec.Struct, tag_field="type", tag="frame_ack", gc=False):
    """Server → client: a batch was processed."""

    batch_seq: int
    accepted_frame_count: int
    accepted_frames_total: int
    rejected_frame_indexes: list[int] = msgspec.field(default_factory=list)


class EventBatch(msgspec.Struct, tag_field="type", tag="event_batch", gc=False):
    """Server → client: detection events of a batch (raw, decoded one by one)."""

    batch_seq: int
    events: list[msgspec.Raw]


class SessionUpdate(msgspec.Struct, tag_field="type", tag="session_update"):
    """Server → client: the session's status changed."""

    session_id: str
    status: str
    accepted_frames_total: int = 0
    terminal_outcome: str | None = None


class SessionDone(msgspec.Struct, tag_field="type", tag="session_done"):
    """Server → client: the session reached a terminal state."""

    session_id: str
    status: str
    accepted_frames_total: int = 0
    terminal_outcome: str | None = None
    error: ErrorDetail | None = None


class ErrorMessage(msgspec.Struct, tag_field="type", tag="error"):
    """Server → client: an error (the socket may close after it)."""

    error: ErrorDetail


ServerMessage = FrameAck | EventBatch | SessionUpdate | SessionDone | ErrorMessage | Ping | Pong
ClientMessage = FrameBatch | Finalize | Cancel | Ping | Pong

server_message_decoder: Final = msgspec.json.Decoder(ServerMessage)
client_message_decoder: Final = msgspec.json.Decoder(ClientMessage)
_event_decoder: Final = msgspec.json.Decoder(DetectionEvent)
_any_decoder: Final = msgspec.json.Decoder(dict[str, Any])
encoder: Final = msgspec.json.Encoder()


def decode_detection_event(raw: msgspec.Raw | bytes) -> DetectionEvent | UnknownEvent:
    """Decode one event; an unknown or ill-shaped one becomes :class:`UnknownEvent`."""
    try:
        event: DetectionEvent = _event_decoder.decode(raw)
    except msgspec.ValidationError:
        obj = _any_decoder.decode(raw)
        return UnknownEvent(type=str(obj.get("type", "")), raw=obj)
    return event


# ---- REST -------------------------------------------------------------------------------


class AccessToken(msgspec.Struct, kw_only=True):
    """The answer of ``POST /api/auth/access-tokens``."""

    access_token: str
    token_type: str = "Bearer"
    expires_in_seconds: float = 900
    organization_id: str | None = None
    project_id: str | None = None
    scopes: list[str] | None = None

    def __repr__(self) -> str:
        return f"AccessToken(project_id={self.project_id!r}, expires_in={self.expires_in_seconds})"


class DetectionSessionCreated(msgspec.Struct, kw_only=True):
    """The answer of ``POST /api/detection/sessions``."""

    session_id: str
    project_id: str
    status: str
    mode: str
    resolved_movespec_version_id: str
    stream_url: str
    runtime_token: str
    input_schema_version: str = INPUT_SCHEMA_VERSION
    output_schema_version: str = OUTPUT_SCHEMA_VERSION

    def __repr__(self) -> str:
        return (
            f"DetectionSessionCreated(session_id={self.session_id!r}, mode={self.mode!r}, "
            f"status={self.status!r})"
        )


class DetectionSessionRecord(msgspec.Struct, kw_only=True):
    """The stored session (``GET /api/detection/sessions/{id}``)."""

    session_id: str
    project_id: str
    mode: str
    status: str
    resolved_movespec_version_id: str
    accepted_frames_total: int = 0
    organization_id: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    terminal_outcome: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class MoveSpec(msgspec.Struct, kw_only=True):
    """A MoveSpec (both documented variants decode)."""

    movespec_id: str
    name: str
    project_id: str | None = None
    organization_id: str | None = None
    description: str | None = None
    visibility: str = "private"
    current_released_version_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    archived_at: str | None = None
    star_count: int = 0


class MoveSpecDraft(msgspec.Struct, kw_only=True):
    """A MoveSpec's mutable draft."""

    draft_id: str
    movespec_id: str
    yaml_source: str
    updated_by: str | None = None
    updated_at: str | None = None


class MoveSpecVersion(msgspec.Struct, kw_only=True):
    """An immutable MoveSpec version."""

    movespec_version_id: str
    movespec_id: str
    version_number: int
    yaml_source: str
    content_hash: str
    created_at: str | None = None
    created_by: str | None = None


class ValidationIssue(msgspec.Struct, kw_only=True):
    """One validation problem, with its place in the YAML (1-based)."""

    code: str
    message: str
    severity: Literal["error", "warning"] = "error"
    path: str | None = None
    line: int | None = None
    column: int | None = None


class ValidationResult(msgspec.Struct, kw_only=True):
    """The answer of ``POST /api/movespecs/{id}/draft/validate``."""

    ok: bool
    target_type: str
    target_id: str
    validated_at: str
    errors: list[ValidationIssue] = msgspec.field(default_factory=list)
    warnings: list[ValidationIssue] = msgspec.field(default_factory=list)
