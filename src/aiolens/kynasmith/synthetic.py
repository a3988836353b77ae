"""Synthetic pose frames: deterministic squats and lunges as 33-landmark frames.

The tests, the demo and the benchmarks stream these to the emulator, whose
detector must count exactly the repetitions generated. Coordinates are world
metres with y up and z toward the camera; legs are 0.45 m segments. A
repetition is a smooth knee flexion from 175° down to ``bottom_angle`` and
back, followed by a short standing hold; gaussian noise of ``noise`` metres is
added to every coordinate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Literal

from aiolens.kynasmith.models import LANDMARK_NAMES, FrameSource, Landmark, PoseFrame

__all__ = ["bad_frame", "generate_lunges", "generate_squats", "iter_frames", "pose"]

SEGMENT = 0.45
TORSO = 0.55
STANDING = 175.0


def _leg(ankle_z: float, knee_angle: float, side_x: float) -> dict[str, tuple[float, float, float]]:
    bend = math.radians((180.0 - knee_angle) / 2)
    ankle = (side_x, 0.08, ankle_z)
    knee = (side_x, ankle[1] + SEGMENT * math.cos(bend), ankle_z + SEGMENT * math.sin(bend))
    hip = (side_x, knee[1] + SEGMENT * math.cos(bend), knee[2] - SEGMENT * math.sin(bend))
    return {"ankle": ankle, "knee": knee, "hip": hip}


def pose(
    left_knee: float,
    right_knee: float,
    *,
    left_z: float = 0.0,
    right_z: float = 0.0,
    lean: float = 0.0,
) -> dict[str, tuple[float, float, float]]:
    """Joint positions for the given knee angles (degrees); the rest of the body follows."""
    left = _leg(left_z, left_knee, 0.1)
    right = _leg(right_z, right_knee, -0.1)
    # Each leg keeps its own hip point, so the knee angles are exactly the ones asked for.
    hip_y = (left["hip"][1] + right["hip"][1]) / 2
    hip_z = (left["hip"][2] + right["hip"][2]) / 2
    points: dict[str, tuple[float, float, float]] = {}
    for side, leg in (("left", left), ("right", right)):
        points[f"{side}_hip"] = leg["hip"]
        points[f"{side}_knee"] = leg["knee"]
        points[f"{side}_ankle"] = leg["ankle"]
        ax, ay, az = leg["ankle"]
        points[f"{side}_heel"] = (ax, ay - 0.05, az - 0.05)
        points[f"{side}_foot_index"] = (ax, ay - 0.06, az + 0.15)
    c = math.radians(lean)
    for side, x in (("left", 0.18), ("right", -0.18)):
        sy, sz = hip_y + TORSO * math.cos(c), hip_z + TORSO * math.sin(c)
        points[f"{side}_shoulder"] = (x, sy, sz)
        points[f"{side}_elbow"] = (x * 1.1, sy - 0.28, sz + 0.05)
        points[f"{side}_wrist"] = (x * 1.1, sy - 0.5, sz + 0.15)
        for part, dy in (("pinky", -0.55), ("index", -0.56), ("thumb", -0.53)):
            points[f"{side}_{part}"] = (x * 1.1, sy + dy, sz + 0.17)
    head_y, head_z = hip_y + (TORSO + 0.2) * math.cos(c), hip_z + (TORSO + 0.2) * math.sin(c)
    for name in LANDMARK_NAMES:
        if name not in points:  # face landmarks around the head
            dx = 0.04 if name.startswith("left") else -0.04 if name.startswith("right") else 0.0
            points[name] = (dx, head_y, head_z + 0.08)
    return points


def _frame(
    points: dict[str, tuple[float, float, float]],
    i: int,
    fps: float,
    seq: int,
    rng: random.Random,
    noise: float,
) -> PoseFrame:
    marks = [
        Landmark(
            name,
            x + rng.gauss(0, noise),
            y + rng.gauss(0, noise),
            z + rng.gauss(0, noise),
            visibility=round(0.9 + 0.1 * rng.random(), 3),
            presence=round(0.9 + 0.1 * rng.random(), 3),
        )
        for name, (x, y, z) in ((n, points[n]) for n in LANDMARK_NAMES)
    ]
    confidence = sum(min(m.visibility or 1.0, m.presence or 1.0) for m in marks) / len(marks)
    return PoseFrame(
        timestamp_ms=i * 1000.0 / fps,
        landmarks=marks,
        confidence=round(confidence, 4),
        source=FrameSource("upload", 1280, 720),
        frame_seq=seq,
    )


def iter_frames(
    kind: Literal["squat", "lunge"],
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
    """Frames of ``reps`` repetitions, with a standing hold before, between and after."""
    rng = random.Random(seed)
    per_rep = max(4, round(rep_seconds * fps))
    hold = max(2, round(hold_seconds * fps))
    i = 0

    def standing() -> Iterator[PoseFrame]:
        nonlocal i
        for _ in range(hold):
            yield _frame(_at(kind, STANDING), i, fps, start_seq + i, rng, noise)
            i += 1

    yield from standing()
    for _ in range(reps):
        for k in range(per_rep):
            depth = (1 - math.cos(2 * math.pi * k / per_rep)) / 2  # 0 → 1 → 0
            angle = STANDING - depth * (STANDING - bottom_angle)
            yield _frame(_at(kind, angle), i, fps, start_seq + i, rng, noise)
            i += 1
        yield from standing()


def _at(kind: str, angle: float) -> dict[str, tuple[float, float, float]]:
    if kind == "squat":
        return pose(angle, angle, lean=(STANDING - angle) * 0.4)
    # A lunge: the left leg steps forward; both knees bend.
    depth = (STANDING - angle) / (STANDING - 80.0)
    return pose(angle, STANDING - depth * (STANDING - 100.0), left_z=0.35, right_z=-0.35)


def generate_squats(reps: int, **options: object) -> list[PoseFrame]:
    """``reps`` squats as frames (see :func:`iter_frames` for ``options``)."""
    return list(iter_frames("squat", reps, **options))  # type: ignore[arg-type]


def generate_lunges(reps: int, **options: object) -> list[PoseFrame]:
    """``reps`` forward lunges (left leg in front) as frames."""
    return list(iter_frames("lunge", reps, **options))  # type: ignore[arg-type]


def bad_frame(
    kind: Literal["missing", "duplicate", "confidence", "unknown"], *, frame_seq: int = 1
) -> PoseFrame:
    """An invalid frame for tests: a landmark missing, duplicated, unknown, or a bad score."""
    frame = _frame(pose(STANDING, STANDING), 0, 30.0, frame_seq, random.Random(0), 0.0)
    marks = list(frame.landmarks)
    if kind == "missing":
        marks = marks[:-1]
    elif kind == "duplicate":
        marks[-1] = Landmark(marks[0].name, 0.0, 0.0, 0.0)
    elif kind == "unknown":
        marks[-1] = Landmark("tail", 0.0, 0.0, 0.0)
    else:
        return PoseFrame(timestamp_ms=0.0, landmarks=marks, confidence=1.5, frame_seq=frame_seq)
    return PoseFrame(timestamp_ms=0.0, landmarks=marks, confidence=0.9, frame_seq=frame_seq)
