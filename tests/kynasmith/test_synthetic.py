"""The synthetic pose generator: deterministic, valid, and shaped like real movement."""

from __future__ import annotations

import math
from typing import Any

import pytest

from aiolens.kynasmith.models import LANDMARK_NAMES, PoseFrame, encoder, validate_frame
from aiolens.kynasmith.synthetic import (
    STANDING_KNEE_ANGLE,
    bad_frame,
    frame_from_points,
    generate_lunges,
    generate_squats,
    iter_frames,
    skeleton,
)

Point = tuple[float, float, float]


def angle(a: Point, b: Point, c: Point) -> float:
    """Angle a-b-c in degrees, computed independently of the detector."""
    u = [a[i] - b[i] for i in range(3)]
    v = [c[i] - b[i] for i in range(3)]
    dot = sum(p * q for p, q in zip(u, v, strict=True))
    return math.degrees(math.acos(dot / (math.dist(a, b) * math.dist(c, b))))


def knee(points: dict[str, Point], side: str) -> float:
    return angle(points[f"{side}_hip"], points[f"{side}_knee"], points[f"{side}_ankle"])


def frame_points(frame: PoseFrame) -> dict[str, Point]:
    return {m.name: (m.x, m.y, m.z) for m in frame.landmarks}


def test_same_arguments_give_the_same_frames() -> None:
    assert encoder.encode(generate_squats(2, seed=4)) == encoder.encode(generate_squats(2, seed=4))
    assert encoder.encode(generate_squats(2, seed=4)) != encoder.encode(generate_squats(2, seed=5))


def test_iter_frames_is_the_lazy_form() -> None:
    lazy = iter_frames("lunge", 2, seed=9, fps=20.0)
    assert encoder.encode(list(lazy)) == encoder.encode(generate_lunges(2, seed=9, fps=20.0))


@pytest.mark.parametrize("generate", [generate_squats, generate_lunges])
@pytest.mark.parametrize("reps", [0, 1, 3])
def test_frame_count_timestamps_and_sequence(generate: Any, reps: int) -> None:
    frames = generate(reps, fps=25.0, rep_seconds=1.6, hold_seconds=0.4, start_seq=7)
    per_rep, hold = 40, 10
    assert len(frames) == hold + reps * (per_rep + hold)
    assert [f.frame_seq for f in frames] == list(range(7, 7 + len(frames)))
    assert [f.timestamp_ms for f in frames] == [i * 1000.0 / 25.0 for i in range(len(frames))]


@pytest.mark.parametrize("generate", [generate_squats, generate_lunges])
def test_every_frame_is_valid_and_confident(generate: Any) -> None:
    for frame in generate(3, seed=2, noise=0.01):
        assert validate_frame(frame) == []
        assert [m.name for m in frame.landmarks] == list(LANDMARK_NAMES)
        assert frame.source is not None and frame.source.kind == "upload"
        scores = [min(m.visibility or 0, m.presence or 0) for m in frame.landmarks]
        assert all(0.9 <= s <= 1.0 for s in scores)
        assert frame.confidence == pytest.approx(sum(scores) / 33, abs=1e-4)


@pytest.mark.parametrize("kind", ["squat", "lunge"])
@pytest.mark.parametrize("target", [175.0, 140.0, 100.0, 80.0, 62.5])
def test_skeleton_front_knee_angle_is_exact(kind: Any, target: float) -> None:
    assert knee(skeleton(kind, target), "left") == pytest.approx(target, abs=1e-6)


def test_squat_bends_both_knees_equally() -> None:
    points = skeleton("squat", 90.0)
    assert knee(points, "right") == pytest.approx(90.0, abs=1e-6)


def test_lunge_back_knee_bends_less() -> None:
    assert knee(skeleton("lunge", 80.0), "right") == pytest.approx(100.0, abs=1e-6)
    assert knee(skeleton("lunge", STANDING_KNEE_ANGLE), "right") == pytest.approx(175.0)


def test_mediapipe_world_convention() -> None:
    points = skeleton("lunge", 120.0)
    mid_hip = [(points["left_hip"][i] + points["right_hip"][i]) / 2 for i in range(3)]
    assert mid_hip == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)
    assert points["nose"][1] < points["left_shoulder"][1] < 0 < points["left_knee"][1]  # y down
    assert points["left_hip"][0] > 0 > points["right_hip"][0]  # subject's left = image right
    assert points["left_ankle"][2] < points["right_ankle"][2]  # front foot nearer the camera
    assert points["nose"][2] < points["left_ear"][2]  # the subject faces the camera


def test_segments_keep_their_length() -> None:
    for target in (175.0, 120.0, 80.0):
        for kind in ("squat", "lunge"):
            points = skeleton(kind, target)
            for side in ("left", "right"):
                thigh = math.dist(points[f"{side}_hip"], points[f"{side}_knee"])
                shin = math.dist(points[f"{side}_knee"], points[f"{side}_ankle"])
                assert thigh == pytest.approx(0.45) and shin == pytest.approx(0.45)


@pytest.mark.parametrize("bottom", [80.0, 70.0, 95.0])
def test_noise_free_cycle_spans_standing_to_bottom(bottom: float) -> None:
    frames = generate_squats(2, noise=0.0, bottom_angle=bottom, fps=30.0, rep_seconds=2.0)
    angles = [knee(frame_points(f), "left") for f in frames]
    assert max(angles) == pytest.approx(STANDING_KNEE_ANGLE)
    assert min(angles) == pytest.approx(bottom)
    assert angles[0] == angles[14] == pytest.approx(STANDING_KNEE_ANGLE)  # the first hold
    assert sum(1 for a in angles if a == pytest.approx(bottom)) == 2  # one bottom per rep


def test_noise_is_small_and_gaussian_scaled() -> None:
    clean = generate_squats(1, noise=0.0, seed=1)
    noisy = generate_squats(1, noise=0.01, seed=1)
    diffs = [
        a.x - b.x
        for fa, fb in zip(clean, noisy, strict=True)
        for a, b in zip(fa.landmarks, fb.landmarks, strict=True)
    ]
    sd = math.sqrt(sum(d * d for d in diffs) / len(diffs))
    assert 0.008 < sd < 0.012


def test_frame_from_points_without_rng_is_exact() -> None:
    points = skeleton("squat", 100.0)
    frame = frame_from_points(points, timestamp_ms=5.0, frame_seq=None)
    assert frame_points(frame) == points
    assert frame.confidence == 1.0 and frame.frame_seq is None and frame.timestamp_ms == 5.0


@pytest.mark.parametrize(
    "options",
    [
        {"reps": -1},
        {"fps": 0.0},
        {"rep_seconds": 0.0},
        {"hold_seconds": -1.0},
        {"noise": -0.1},
        {"bottom_angle": 180.0},
        {"start_seq": 0},
    ],
)
def test_invalid_arguments(options: dict[str, Any]) -> None:
    reps = options.pop("reps", 1)
    with pytest.raises(ValueError):
        generate_squats(reps, **options)


def test_unknown_kind() -> None:
    with pytest.raises(ValueError):
        next(iter_frames("jump", 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bad_frame("sideways")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kind", ["missing", "duplicate", "unknown", "confidence", "visibility", "schema", "nan"]
)
def test_bad_frames_are_invalid_and_numbered(kind: Any) -> None:
    frame = bad_frame(kind, frame_seq=4)
    assert frame.frame_seq == 4
    assert validate_frame(frame)
