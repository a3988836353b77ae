"""The emulator's own reading of the Kynasmith wire format (runtime contract v1).

Written from the seed pages and the vendor's ``kynasmith-contracts`` 0.1.0,
independently of the client's models (:mod:`aiolens.kynasmith.models`): the
emulator never imports client code, so a field misspelt on one side cannot
pass every test by being misspelt on both. The test suite validates every body
and message the emulator sends against the vendor's contract package
(``docs/protocol-notes.md``, "Kynasmith").

Inbound (client → server) structs are as strict as the contract: a frame
needs ``frame_seq``, ``pose_schema``, ``confidence`` and all 33 landmarks
(:func:`frame_problems`); a ``frame_batch`` may carry no frames. Outbound
structs encode every field, nulls included, as the contract's models dump them.
A usual ``frame_batch`` decodes in one pass into :class:`CheckedPoseFrame`,
checked while decoding; any other is judged frame by frame.

Size: one table of the contract's wire models, inbound and outbound, read top to
bottom against the vendor's contract.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Final, Literal

import msgspec

__all__ = [
    "CONTRACT_MAJOR",
    "EVENT_SCHEMA",
    "LANDMARK_NAMES",
    "POSE_SCHEMA",
    "SOURCE_KINDS",
    "TERMINAL",
    "AccessTokenBody",
    "CancelMessage",
    "CheckedPoseFrame",
    "ClientMessage",
    "CompletedPayload",
    "DecodedFrameBatch",
    "DetectionEvent",
    "DraftBody",
    "ErrorBody",
    "ErrorEnvelope",
    "ErrorMessage",
    "EventBatchMessage",
    "EventCompleted",
    "EventInterrupted",
    "Feedback",
    "FeedbackPayload",
    "FinalizeMessage",
    "FrameAckMessage",
    "FrameBatchMessage",
    "InterruptedPayload",
    "MoveSpecBody",
    "PingMessage",
    "PongMessage",
    "PoseFrame",
    "PoseLandmark",
    "PoseSource",
    "SessionCreatedBody",
    "SessionDoneMessage",
    "SessionRecordBody",
    "SessionUpdateMessage",
    "ShapeEnter",
    "ShapeExit",
    "ShapePayload",
    "ValidationIssue",
    "ValidationResultBody",
    "VersionBody",
    "decode_client_message",
    "decode_frame",
    "encode",
    "frame_is_valid",
    "frame_problems",
]

CONTRACT_MAJOR: Final = 1
POSE_SCHEMA: Final = "mediapipe_pose_landmarker/v1"
EVENT_SCHEMA: Final = "kynasmith_detection_events/v1"
SOURCE_KINDS: Final = frozenset({"camera", "stream", "upload"})
TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})
LANDMARK_NAMES: Final[tuple[str, ...]] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
_NAMES: Final = frozenset(LANDMARK_NAMES)
_NAME_LIST: Final = list(LANDMARK_NAMES)


# ---- inbound: pose frames and client messages -------------------------------------------


class PoseLandmark(msgspec.Struct, gc=False):
    """One world landmark: metres; ``visibility`` / ``presence`` in 0..1 or null."""

    name: str
    x: float
    y: float
    z: float
    visibility: float | None = None
    presence: float | None = None


class PoseSource(msgspec.Struct, gc=False):
    """Where the frame came from; ``kind`` must be one of :data:`SOURCE_KINDS`."""

    kind: str
    frame_width: int
    frame_height: int


class PoseFrame(msgspec.Struct, gc=False, kw_only=True):
    """A realtime pose frame (``RealtimePoseFrameV1``): every field but ``source`` required."""

    frame_seq: int
    timestamp_ms: float
    pose_schema: str
    landmarks: list[PoseLandmark]
    confidence: float
    source: PoseSource | None = None


_Score = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class _CheckedLandmark(PoseLandmark, gc=False):
    """A landmark whose scores were checked while decoding (``frame_problems``' rule)."""

    visibility: _Score | None = None
    presence: _Score | None = None


class _CheckedSource(PoseSource, gc=False):
    kind: Literal["camera", "stream", "upload"]


class CheckedPoseFrame(PoseFrame, gc=False, kw_only=True):
    """A frame checked while decoding against every rule of :func:`frame_problems` but
    the landmark names (ranges, schema, source kind): the usual batch decodes into
    these in one pass; :func:`frame_is_valid` then only compares the names.
    """

    frame_seq: Annotated[int, msgspec.Meta(ge=1)]
    pose_schema: Literal["mediapipe_pose_landmarker/v1"]
    landmarks: list[_CheckedLandmark]  # type: ignore[assignment]  # (msgspec decodes lists)
    confidence: _Score
    source: _CheckedSource | None = None


def frame_problems(frame: PoseFrame) -> list[str]:
    """What makes ``frame`` invalid under contract v1; ``[]`` when it is valid."""
    problems: list[str] = []
    if frame.frame_seq < 1:
        problems.append("frame_seq must be >= 1")
    if frame.pose_schema != POSE_SCHEMA:
        problems.append(f"pose_schema must be {POSE_SCHEMA!r}")
    if not 0.0 <= frame.confidence <= 1.0:
        problems.append("confidence must be within 0..1")
    if frame.source is not None and frame.source.kind not in SOURCE_KINDS:
        problems.append(f"source.kind {frame.source.kind!r} is not camera, stream or upload")
    names = [mark.name for mark in frame.landmarks]
    if len(names) != len(LANDMARK_NAMES) or set(names) != _NAMES:
        problems.append("landmarks must hold each of the 33 canonical names exactly once")
    for mark in frame.landmarks:
        for score in (mark.visibility, mark.presence):
            if score is not None and not 0.0 <= score <= 1.0:
                problems.append(f"{mark.name}: visibility/presence must be within 0..1")
                break
    return problems


_NAME: Final = operator.attrgetter("name")


def frame_is_valid(frame: PoseFrame) -> bool:
    """``not frame_problems(frame)``; for a :class:`CheckedPoseFrame`, only the names are left."""
    if type(frame) is not CheckedPoseFrame:
        return not frame_problems(frame)
    names = list(map(_NAME, frame.landmarks))
    return names == _NAME_LIST or (len(names) == len(LANDMARK_NAMES) and set(names) == _NAMES)


class _ClientMessage(msgspec.Struct, tag_field="type", gc=False):
    pass


class FrameBatchMessage(_ClientMessage, tag="frame_batch"):
    """``frame_batch``: frames stay raw so that each is judged (and rejected) alone."""

    batch_seq: int
    frames: list[msgspec.Raw] = msgspec.field(default_factory=list)


class DecodedFrameBatch(_ClientMessage, tag="frame_batch"):
    """``frame_batch`` whose frames all decode as :class:`CheckedPoseFrame`, in one pass.

    :func:`decode_client_message` gives this when it can (the usual batch), and a
    :class:`FrameBatchMessage` when some frame must be judged alone.
    """

    batch_seq: int
    frames: list[CheckedPoseFrame] = msgspec.field(default_factory=list)


class FinalizeMessage(_ClientMessage, tag="finalize"):
    """``finalize``: the last frame was sent."""


class CancelMessage(_ClientMessage, tag="cancel"):
    """``cancel``: cancel the session."""


class PingMessage(_ClientMessage, tag="ping"):
    """``ping``, either direction."""


class PongMessage(_ClientMessage, tag="pong"):
    """``pong``, either direction."""


_client_decoder: Final = msgspec.json.Decoder(
    FrameBatchMessage | FinalizeMessage | CancelMessage | PingMessage | PongMessage
)
_decoded_decoder: Final = msgspec.json.Decoder(
    DecodedFrameBatch | FinalizeMessage | CancelMessage | PingMessage | PongMessage
)
_frame_decoder: Final = msgspec.json.Decoder(PoseFrame)


ClientMessage = (
    DecodedFrameBatch
    | FrameBatchMessage
    | FinalizeMessage
    | CancelMessage
    | PingMessage
    | PongMessage
)


def decode_client_message(data: str | bytes) -> ClientMessage:
    """Decode one client → server text frame.

    Raises:
        msgspec.DecodeError: not JSON, or not a known message (``ValidationError``
            is a subclass).
    """
    message: ClientMessage
    try:  # one pass when every frame has the frame's shape (the usual case)
        message = _decoded_decoder.decode(data)
    except msgspec.DecodeError:
        message = _client_decoder.decode(data)
    return message


def decode_frame(raw: msgspec.Raw) -> PoseFrame | None:
    """One frame of a batch, or ``None`` when it does not have the frame's shape."""
    try:
        return _frame_decoder.decode(raw)
    except msgspec.DecodeError:
        return None


# ---- outbound: detection events and server messages -------------------------------------


class _Event(msgspec.Struct, tag_field="type", kw_only=True, gc=False):
    event_id: str
    session_id: str
    ts_ms: float


class ShapePayload(msgspec.Struct, gc=False):
    """``shape_enter`` / ``shape_exit`` payload."""

    shape_key: str
    confidence: float


class CompletedPayload(msgspec.Struct, gc=False):
    """``event_completed`` payload."""

    event_key: str
    score: float | None


class InterruptedPayload(msgspec.Struct, gc=False):
    """``event_interrupted`` payload."""

    reason: str


class FeedbackPayload(msgspec.Struct, gc=False):
    """``feedback`` payload; ``level`` is ``info``, ``coaching`` or ``success``."""

    level: str
    message: str


class ShapeEnter(_Event, tag="shape_enter"):
    """A phase was entered."""

    payload: ShapePayload


class ShapeExit(_Event, tag="shape_exit"):
    """A phase was left."""

    payload: ShapePayload


class EventCompleted(_Event, tag="event_completed"):
    """A repetition was completed."""

    payload: CompletedPayload


class EventInterrupted(_Event, tag="event_interrupted"):
    """A repetition broke off."""

    payload: InterruptedPayload


class Feedback(_Event, tag="feedback"):
    """A feedback cue fired."""

    payload: FeedbackPayload


DetectionEvent = ShapeEnter | ShapeExit | EventCompleted | EventInterrupted | Feedback


class ErrorBody(msgspec.Struct, gc=False):
    """The error object: ``details`` values are str, int, float, bool or null."""

    code: str
    message: str
    retryable: bool
    details: dict[str, str | int | float | bool | None]


class ErrorEnvelope(msgspec.Struct, gc=False):
    """An HTTP error answer: ``{"error": {...}}``."""

    error: ErrorBody


class _ServerMessage(msgspec.Struct, tag_field="type", gc=False):
    pass


class FrameAckMessage(_ServerMessage, tag="frame_ack"):
    """``frame_ack`` for batch ``batch_seq``."""

    batch_seq: int
    accepted_frame_count: int
    accepted_frames_total: int
    rejected_frame_indexes: list[int]


class EventBatchMessage(_ServerMessage, tag="event_batch"):
    """``event_batch``: the events of batch ``batch_seq``."""

    batch_seq: int
    events: list[DetectionEvent]


class SessionUpdateMessage(_ServerMessage, tag="session_update"):
    """``session_update``: the session's status."""

    session_id: str
    status: str
    accepted_frames_total: int
    terminal_outcome: str | None


class SessionDoneMessage(_ServerMessage, tag="session_done"):
    """``session_done``: the terminal status; ``error`` set when it failed."""

    session_id: str
    status: str
    accepted_frames_total: int
    terminal_outcome: str | None
    error: ErrorBody | None


class ErrorMessage(_ServerMessage, tag="error"):
    """``error``: the error object without the HTTP envelope."""

    error: ErrorBody


# ---- outbound: REST bodies ---------------------------------------------------------------


class AccessTokenBody(msgspec.Struct, kw_only=True):
    """``POST /api/auth/access-tokens``; ``scopes`` is an extra the SDK ignores."""

    access_token: str
    token_type: str
    expires_in_seconds: int
    organization_id: str
    project_id: str
    scopes: list[str]


class SessionCreatedBody(msgspec.Struct, kw_only=True):
    """``POST /api/detection/sessions``."""

    session_id: str
    project_id: str
    status: str
    mode: str
    resolved_movespec_version_id: str
    stream_url: str
    runtime_token: str
    input_schema_version: str
    output_schema_version: str


class SessionRecordBody(msgspec.Struct, kw_only=True):
    """``GET /api/detection/sessions/{id}`` (and finalize / cancel answers)."""

    session_id: str
    organization_id: str
    project_id: str
    mode: str
    status: str
    resolved_movespec_version_id: str
    accepted_frames_total: int
    started_at: str | None
    ended_at: str | None
    terminal_outcome: str | None
    error_code: str | None
    error_message: str | None


class MoveSpecBody(msgspec.Struct, kw_only=True):
    """A MoveSpec: the SDK's fields and the public docs' ``star_count`` (mutable)."""

    movespec_id: str
    organization_id: str
    project_id: str
    name: str
    description: str | None
    visibility: str
    current_released_version_id: str | None
    created_by: str | None
    created_at: str
    updated_at: str
    archived_at: str | None
    star_count: int


class DraftBody(msgspec.Struct, kw_only=True):
    """A MoveSpec's draft (mutable)."""

    draft_id: str
    movespec_id: str
    yaml_source: str
    updated_by: str | None
    updated_at: str


class VersionBody(msgspec.Struct, kw_only=True):
    """An immutable MoveSpec version; ``content_hash`` is the YAML's SHA-256."""

    movespec_version_id: str
    movespec_id: str
    version_number: int
    yaml_source: str
    content_hash: str
    created_by: str | None
    created_at: str


class ValidationIssue(msgspec.Struct, kw_only=True):
    """One validation problem; ``severity`` ``error`` or ``warning``; 1-based positions."""

    code: str
    message: str
    severity: str
    path: str | None = None
    line: int | None = None
    column: int | None = None


class ValidationResultBody(msgspec.Struct, kw_only=True):
    """``POST /api/movespecs/{id}/draft/validate``."""

    ok: bool
    target_type: str
    target_id: str
    validated_at: str
    errors: list[ValidationIssue]
    warnings: list[ValidationIssue]


_encoder: Final = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """JSON for any struct above (or a list of them)."""
    return _encoder.encode(value)
