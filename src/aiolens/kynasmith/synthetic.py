"""Deterministic synthetic pose frames: squats and lunges as 33-landmark frames.

The tests, the demo and the benchmarks stream these frames to the emulator,
whose detector (``aiolens.emulator.detector``) must count exactly the
repetitions generated; the sample MoveSpecs ``SQUAT_YAML`` and ``LUNGE_YAML``
in ``aiolens.emulator.movespec_yaml`` are tuned to them.

Geometry:

* Coordinates follow MediaPipe's world-landmark convention, in metres: the
  origin is midway between the hips, ``x`` points to the image right (the
  subject's left, since the subject faces the camera), ``y`` points down and
  ``z`` points away from the camera (smaller ``z`` = closer to the camera).
* Thigh and shin are both 0.45 m; the legs are placed by exact two-link
  inverse kinematics, so a requested knee angle is the angle the detector
  measures (before noise).
* A squat bends both knees from 175° to ``bottom_angle`` while the hips move
  back and the torso leans forward. A lunge is a split-stance lunge with the
  left foot in front (closer to the camera): the front knee bends from 175° to
  ``bottom_angle``, the back knee from 175° to ``bottom_angle + 20``.
* Each repetition is a smooth cosine cycle (standing → bottom → standing) of
  ``rep_seconds``; a standing hold of ``hold_seconds`` comes before the first
  repetition and after every one.
* Gaussian noise of standard deviation ``noise`` metres is added to every
  coordinate; visibility and presence are drawn from 0.9..1.0 and the frame
  confidence is their mean minimum, as the vendor SDK computes it.

Everything derives from ``random.Random(seed)``: the same arguments give the
same frames.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from typing import Final, Literal, TypedDict, Unpack

from aiolens.kynasmith.models import LANDMARK_NAMES, FrameSource, Landmark, PoseFrame

__all__ = [
    "STANDING_KNEE_ANGLE",
    "BadFrameKind",
    "FrameOptions",
    "MovementKind",
    "bad_frame",
    "frame_from_points",
    "generate_lunges",
    "generate_squats",
    "iter_frames",
    "skeleton",
]

MovementKind = Literal["squat", "lunge"]
BadFrameKind = Literal[
    "missing", "duplicate", "unknown", "confidence", "visibility", "schema", "nan"
]

Point = tuple[float, float, float]

STANDING_KNEE_ANGLE: Final = 175.0
"""The knee angle (degrees) of the standing pose."""

_LEG: Final = 0.45  # thigh = shin, metres
_HIP_HALF: Final = 0.10
_SHOULDER_HALF: Final = 0.18
_TORSO: Final = 0.50
_ANKLE_Y: Final = 0.08  # ankle height above the floor (build frame, y up)
_LUNGE_HALF_STANCE: Final = 0.35  # each foot's distance from the centre, front to back
_BACK_KNEE_EXTRA: Final = 20.0  # the back knee of a lunge bends this much less

# Face landmarks around the head centre (build frame: x left, y up, z toward the camera).
_FACE: Final[dict[str, Point]] = {
    "nose": (0.0, 0.0, 0.10),
    "left_eye_inner": (0.015, 0.035, 0.09),
    "left_eye": (0.03, 0.035, 0.085),
    "left_eye_outer": (0.045, 0.035, 0.08),
    "right_eye_inner": (-0.015, 0.035, 0.09),
    "right_eye": (-0.03, 0.035, 0.085),
    "right_eye_outer": (-0.045, 0.035, 0.08),
    "left_ear": (0.075, 0.01, 0.0),
    "right_ear": (-0.075, 0.01, 0.0),
    "mouth_left": (0.025, -0.04, 0.085),
    "mouth_right": (-0.025, -0.04, 0.085),
}


def _chord(angle: float) -> float:
    """Hip–ankle distance of a leg whose knee angle is ``angle`` degrees."""
    return 2 * _LEG * math.sin(math.radians(angle) / 2)


def _knee(hip: tuple[float, float], ankle: tuple[float, float]) -> tuple[float, float]:
    """The knee (y, z) of a two-link leg from ``hip`` to ``ankle``, bent toward the camera."""
    dy, dz = hip[0] - ankle[0], hip[1] - ankle[1]
    d = math.hypot(dy, dz)
    offset = math.sqrt(max(0.0, _LEG * _LEG - d * d / 4))
    uy, uz = dy / d, dz / d
    py, pz = (-uz, uy) if uy > 0 else (uz, -uy)  # the perpendicular pointing to +z
    return ((hip[0] + ankle[0]) / 2 + offset * py, (hip[1] + ankle[1]) / 2 + offset * pz)


def _build(front_knee: float, back_knee: float, lunge: bool, lean: float) -> dict[str, Point]:
    """Joint positions in the build frame (y up, z toward the camera, feet on the floor)."""
    if lunge:
        front_ankle = (_ANKLE_Y, _LUNGE_HALF_STANCE)
        back_ankle = (_ANKLE_Y, -_LUNGE_HALF_STANCE)
        df, db = _chord(front_knee), _chord(back_knee)
        span = 2 * _LUNGE_HALF_STANCE
        along = (db * db - df * df + span * span) / (2 * span)  # from the back ankle
        hip = (_ANKLE_Y + math.sqrt(max(0.0, db * db - along * along)), back_ankle[1] + along)
        ankles = {"left": front_ankle, "right": back_ankle}
    else:
        d = _chord(front_knee)
        tilt = math.radians(0.3 * (STANDING_KNEE_ANGLE - front_knee))  # hips travel back
        hip = (_ANKLE_Y + d * math.cos(tilt), -d * math.sin(tilt))
        ankles = {"left": (_ANKLE_Y, 0.0), "right": (_ANKLE_Y, 0.0)}
    points: dict[str, Point] = {}
    for side, sx in (("left", 1.0), ("right", -1.0)):
        ankle = ankles[side]
        knee = _knee(hip, ankle)
        x = sx * _HIP_HALF
        points[f"{side}_hip"] = (x, hip[0], hip[1])
        points[f"{side}_knee"] = (x, knee[0], knee[1])
        points[f"{side}_ankle"] = (x, ankle[0], ankle[1])
        points[f"{side}_heel"] = (x, ankle[0] - 0.05, ankle[1] - 0.05)
        points[f"{side}_foot_index"] = (x, ankle[0] - 0.07, ankle[1] + 0.15)
    lean_rad = math.radians(lean)
    up, forward = math.cos(lean_rad), math.sin(lean_rad)
    shoulder_y, shoulder_z = hip[0] + _TORSO * up, hip[1] + _TORSO * forward
    for side, sx in (("left", 1.0), ("right", -1.0)):
        x = sx * _SHOULDER_HALF
        elbow = (x * 1.05, shoulder_y - 0.29, shoulder_z + 0.05)
        wrist = (x * 1.05, elbow[1] - 0.25, elbow[2] + 0.10)
        points[f"{side}_shoulder"] = (x, shoulder_y, shoulder_z)
        points[f"{side}_elbow"] = elbow
        points[f"{side}_wrist"] = wrist
        points[f"{side}_pinky"] = (wrist[0] + sx * 0.02, wrist[1] - 0.07, wrist[2])
        points[f"{side}_index"] = (wrist[0], wrist[1] - 0.08, wrist[2] + 0.02)
        points[f"{side}_thumb"] = (wrist[0] - sx * 0.02, wrist[1] - 0.05, wrist[2] + 0.03)
    head_y, head_z = shoulder_y + 0.25 * up, shoulder_z + 0.25 * forward
    for name, (fx, fy, fz) in _FACE.items():
        points[name] = (fx, head_y + fy, head_z + fz)
    # To MediaPipe world coordinates: origin between the hips, y down, z away from the camera.
    return {name: (x, hip[0] - y, hip[1] - z) for name, (x, y, z) in points.items()}


def skeleton(kind: MovementKind, knee_angle: float) -> dict[str, Point]:
    """Noise-free landmark positions of a movement at a given knee angle.

    Args:
        kind: ``"squat"`` (both knees at ``knee_angle``) or ``"lunge"`` (front,
            i.e. left, knee at ``knee_angle``; the back knee proportionally
            less bent, 20° less at an 80° front knee).
        knee_angle: degrees, 180 = straight leg.

    Returns:
        All 33 landmarks by name, ``(x, y, z)`` in MediaPipe world metres.
    """
    bend = STANDING_KNEE_ANGLE - knee_angle
    if kind == "squat":
        return _build(knee_angle, knee_angle, lunge=False, lean=0.45 * bend)
    back = knee_angle + _BACK_KNEE_EXTRA * bend / (STANDING_KNEE_ANGLE - 80.0)
    return _build(knee_angle, min(back, STANDING_KNEE_ANGLE), lunge=True, lean=0.1 * bend)


def frame_from_points(
    points: Mapping[str, Point],
    *,
    timestamp_ms: float = 0.0,
    frame_seq: int | None = 1,
    rng: random.Random | None = None,
    noise: float = 0.0,
) -> PoseFrame:
    """A valid pose frame from landmark positions (e.g. from :func:`skeleton`).

    Args:
        points: a position for each of the 33 canonical names.
        timestamp_ms: the frame's timestamp.
        frame_seq: the frame's realtime sequence number (``None`` for none).
        rng: the randomness for noise, visibility and presence; without it
            visibility and presence are 1.0 and no noise is added.
        noise: standard deviation of the gaussian noise per coordinate, metres.

    Raises:
        KeyError: a canonical landmark is missing from ``points``.
    """
    if rng is None:
        marks = [Landmark(n, *points[n], visibility=1.0, presence=1.0) for n in LANDMARK_NAMES]
        confidence = 1.0
    else:
        gauss, uniform = rng.gauss, rng.random
        marks = []
        total = 0.0
        for name in LANDMARK_NAMES:
            x, y, z = points[name]
            visibility = round(0.9 + 0.1 * uniform(), 3)
            presence = round(0.9 + 0.1 * uniform(), 3)
            total += min(visibility, presence)
            if noise:
                x, y, z = x + gauss(0.0, noise), y + gauss(0.0, noise), z + gauss(0.0, noise)
            marks.append(Landmark(name, x, y, z, visibility, presence))
        confidence = round(total / len(LANDMARK_NAMES), 4)
    return PoseFrame(
        timestamp_ms=timestamp_ms,
        landmarks=marks,
        confidence=confidence,
        source=FrameSource("upload", 1280, 720),
        frame_seq=frame_seq,
    )


def iter_frames(
    kind: MovementKind,
    reps: int,
    *,
    fps: float = 30.0,
    rep_seconds: float = 2.0,
    hold_seconds: float = 0.5,
    bottom_angle: float = 80.0,
    noise: float = 0.005,
    seed: int = 0,
    start_seq: int = 1,
) -> Iterator[PoseFrame]:
    """Yield the frames of ``reps`` repetitions of ``kind``, lazily.

    Args:
        kind: ``"squat"`` or ``"lunge"``.
        reps: repetitions, ≥ 0 (0 gives one standing hold).
        fps: frames per second; frame ``i`` has ``timestamp_ms = i * 1000 / fps``.
        rep_seconds: duration of one repetition (at least 4 frames).
        hold_seconds: the standing hold before the first repetition and after
            each one (at least 2 frames).
        bottom_angle: the (front) knee angle at the bottom, degrees.
        noise: standard deviation of the coordinate noise, metres.
        seed: seed of the ``random.Random`` behind noise and visibility.
        start_seq: ``frame_seq`` of the first frame; it increases by one per frame.

    Raises:
        ValueError: an argument is out of range.
    """
    if kind not in ("squat", "lunge"):
        raise ValueError(f"kind must be 'squat' or 'lunge', not {kind!r}")
    if reps < 0 or fps <= 0 or rep_seconds <= 0 or hold_seconds < 0 or noise < 0:
        raise ValueError("reps, noise and hold_seconds must be ≥ 0; fps and rep_seconds > 0")
    if not 0.0 < bottom_angle < STANDING_KNEE_ANGLE:
        raise ValueError(f"bottom_angle must be within 0..{STANDING_KNEE_ANGLE}")
    if start_seq < 1:
        raise ValueError("start_seq must be ≥ 1")
    rng = random.Random(seed)
    per_rep = max(4, round(rep_seconds * fps))
    hold = max(2, round(hold_seconds * fps))
    standing = skeleton(kind, STANDING_KNEE_ANGLE)
    cycle = []
    for k in range(per_rep):
        depth = (1.0 - math.cos(2.0 * math.pi * k / per_rep)) / 2.0  # 0 → 1 → 0
        cycle.append(
            skeleton(kind, STANDING_KNEE_ANGLE - depth * (STANDING_KNEE_ANGLE - bottom_angle))
        )
    plan = [standing] * hold
    for _ in range(reps):
        plan += cycle
        plan += [standing] * hold
    step = 1000.0 / fps
    for i, points in enumerate(plan):
        yield frame_from_points(
            points, timestamp_ms=i * step, frame_seq=start_seq + i, rng=rng, noise=noise
        )


class FrameOptions(TypedDict, total=False):
    """The keyword options of :func:`iter_frames` (defaults and meaning there), taken by
    :func:`generate_squats` and :func:`generate_lunges` (``**options: Unpack[FrameOptions]``)."""

    fps: float
    rep_seconds: float
    hold_seconds: float
    bottom_angle: float
    noise: float
    seed: int
    start_seq: int


def generate_squats(reps: int, **options: Unpack[FrameOptions]) -> list[PoseFrame]:
    """``reps`` bodyweight squats as frames; the options are those of :func:`iter_frames`."""
    return list(iter_frames("squat", reps, **options))


def generate_lunges(reps: int, **options: Unpack[FrameOptions]) -> list[PoseFrame]:
    """``reps`` split-stance lunges (left foot in front) as frames; see :func:`iter_frames`."""
    return list(iter_frames("lunge", reps, **options))


def bad_frame(kind: BadFrameKind, *, frame_seq: int = 1) -> PoseFrame:
    """A standing frame broken in one way, for tests of frame validation.

    Args:
        kind: what is wrong:

            * ``"missing"``: the last landmark (``right_foot_index``) is absent;
            * ``"duplicate"``: ``nose`` appears twice, replacing ``right_foot_index``;
            * ``"unknown"``: ``right_foot_index`` is replaced by a ``tail`` landmark;
            * ``"confidence"``: the frame confidence is 1.5;
            * ``"visibility"``: ``nose`` has visibility 1.5;
            * ``"schema"``: ``pose_schema`` is ``"mediapipe_pose_landmarker/v0"``;
            * ``"nan"``: ``nose`` has a NaN ``x``.
        frame_seq: the frame's ``frame_seq``.

    Raises:
        ValueError: ``kind`` is none of the above.
    """
    frame = frame_from_points(skeleton("squat", STANDING_KNEE_ANGLE), frame_seq=frame_seq)
    marks = frame.landmarks
    last = marks[-1]
    if kind == "missing":
        del marks[-1]
    elif kind == "duplicate":
        marks[-1] = Landmark("nose", last.x, last.y, last.z, 1.0, 1.0)
    elif kind == "unknown":
        marks[-1] = Landmark("tail", last.x, last.y, last.z, 1.0, 1.0)
    elif kind == "confidence":
        frame.confidence = 1.5
    elif kind == "visibility":
        marks[0].visibility = 1.5
    elif kind == "schema":
        frame.pose_schema = "mediapipe_pose_landmarker/v0"
    elif kind == "nan":
        marks[0].x = math.nan
    else:
        raise ValueError(f"unknown bad frame kind {kind!r}")
    return frame
