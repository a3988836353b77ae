"""Pose frames of the Kynasmith realtime contract v1 and their validation.

Re-exported by :mod:`aiolens.kynasmith.models` (import them from there). The
client validates every frame it sends (:func:`validate_frame`), so this is a
hot path: see its docstring.
"""

from __future__ import annotations

from typing import Final

from aiolens._core.model import Model

INPUT_SCHEMA_VERSION: Final = "mediapipe_pose_landmarker/v1"
"""The value every pose frame's ``pose_schema`` must have."""

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

SOURCE_KINDS: Final[frozenset[str]] = frozenset({"camera", "stream", "upload"})
"""The values a frame's ``source.kind`` may take."""


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
    landmarks in MediaPipe order, every value in range) is vouched for by one
    lean pass (:func:`_plainly_valid`) that allocates nothing but the returned
    empty list; any other frame gets the detailed diagnosis, which alone
    decides. Landmarks in another order are valid too.

    Args:
        frame: the frame to check.

    Returns:
        Human-readable problems, ``[]`` when the frame is valid. Landmark-set
        problems name the missing, duplicate and unknown landmarks.
    """
    if _plainly_valid(frame):
        return []
    return _frame_problems(frame)


def _plainly_valid(frame: PoseFrame) -> bool:
    """``True`` only when :func:`_frame_problems` finds nothing (a fast filter).

    The same comparisons, but the coordinates are summed and the sum checked
    once: it is finite only when every coordinate is. ``False`` (landmarks
    out of MediaPipe order, a sum that overflows, any value of an odd type)
    just means "ask :func:`_frame_problems`".
    """
    try:
        marks = frame.landmarks
        confidence = frame.confidence
        seq = frame.frame_seq
        source = frame.source
        if (
            frame.pose_schema != INPUT_SCHEMA_VERSION
            or len(marks) != _LANDMARK_COUNT
            or not 0.0 <= confidence <= 1.0
            or (seq is not None and seq < 1)
            or (source is not None and source.kind not in SOURCE_KINDS)
        ):
            return False
        total = frame.timestamp_ms * 0.0  # NaN unless the timestamp is finite
        for mark, name in zip(marks, LANDMARK_NAMES, strict=False):
            if mark.name != name:
                return False
            total += mark.x + mark.y + mark.z
            v = mark.visibility
            if v is not None and not 0.0 <= v <= 1.0:
                return False
            v = mark.presence
            if v is not None and not 0.0 <= v <= 1.0:
                return False
    except Exception:  # an odd value: the detailed check decides (or raises)
        return False
    return total - total == 0.0  # NaN when any coordinate or the timestamp is NaN or ±inf


def _frame_problems(frame: PoseFrame) -> list[str]:
    """The detailed check behind :func:`validate_frame` (the reference for the fast path)."""
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
