"""The emulator's repetition detector: joint angles and the phase state machine."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import pytest

from aiolens.emulator.detector import RepetitionDetector, angle_at, joint_angles
from aiolens.emulator.kynasmith_wire import (
    EventCompleted,
    EventInterrupted,
    Feedback,
    ShapeEnter,
    ShapeExit,
)
from aiolens.emulator.movespec_yaml import (
    LUNGE_YAML,
    SQUAT_YAML,
    MoveSpecDefinition,
    validate_movespec_yaml,
)
from aiolens.kynasmith.models import (
    EventBatch,
    PoseFrame,
    decode_detection_event,
    encoder,
    server_message_decoder,
)
from aiolens.kynasmith.synthetic import (
    frame_from_points,
    generate_lunges,
    generate_squats,
    skeleton,
)

Point = tuple[float, float, float]


def definition(source: str) -> MoveSpecDefinition:
    spec, errors, _ = validate_movespec_yaml(source)
    assert spec is not None, errors
    return spec


SQUAT = definition(SQUAT_YAML)
LUNGE = definition(LUNGE_YAML)


def run(detector: RepetitionDetector, frames: Iterable[PoseFrame]) -> list[Any]:
    return [event for frame in frames for event in detector.process(frame)]


def count(events: list[Any], kind: type) -> int:
    return sum(isinstance(e, kind) for e in events)


def squat_frame(left: float, right: float | None = None, ts: float = 0.0) -> PoseFrame:
    """A noise-free frame whose left and right knees are at the given angles."""
    points = dict(skeleton("squat", left))
    if right is not None:
        other = skeleton("squat", right)
        points.update({k: v for k, v in other.items() if k.startswith("right_")})
    return frame_from_points(points, timestamp_ms=ts)


def at_angles(angles: Iterable[float], step_ms: float = 33.0) -> list[PoseFrame]:
    return [squat_frame(a, ts=i * step_ms) for i, a in enumerate(angles)]


# ---- angles -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "vertex", "c", "expected"),
    [
        ((1.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 90.0),
        ((0.0, 0.0, 2.0), (0.0, 0.0, 0.0), (0.0, 3.0, 0.0), 90.0),
        ((1.0, 0.0, 0.0), (0.0, 0.0, 0.0), (-4.0, 0.0, 0.0), 180.0),
        ((1.0, 0.0, 0.0), (0.0, 0.0, 0.0), (5.0, 0.0, 0.0), 0.0),
        ((1.0, 1.0, 0.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0), 45.0),
        ((1.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 2.0, 0.0), 90.0),
        ((1.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 1.0, 1.0), 90.0),
        ((1.0, 1.0, 0.0), (0.0, 0.0, 0.0), (0.0, 1.0, 1.0), 60.0),
    ],
)
def test_angle_at(a: Point, vertex: Point, c: Point, expected: float) -> None:
    assert angle_at(a, vertex, c) == pytest.approx(expected, abs=1e-9)


def test_zero_length_segment_is_nan() -> None:
    assert math.isnan(angle_at((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0)))


def hand_made_frame() -> PoseFrame:
    """Left knee bent at a right angle, right leg straight and 0.3 m nearer the camera."""
    points: dict[str, Point] = dict.fromkeys(skeleton("squat", 175.0), (0.0, 0.0, 0.0))
    points.update(
        {
            "left_shoulder": (0.1, -0.5, 0.0),
            "left_hip": (0.1, 0.0, 0.0),
            "left_knee": (0.1, 0.45, 0.0),
            "left_ankle": (0.1, 0.45, 0.45),  # shin horizontal toward the back: 90°
            "right_shoulder": (-0.1, -0.5, -0.3),
            "right_hip": (-0.1, 0.0, -0.3),
            "right_knee": (-0.1, 0.45, -0.3),
            "right_ankle": (-0.1, 0.9, -0.3),  # straight: 180°
            "left_elbow": (0.2, -0.2, 0.0),
            "left_wrist": (0.2, -0.2, -0.3),
            "right_elbow": (-0.2, -0.5, -0.3),
            "right_wrist": (-0.5, -0.5, -0.3),
        }
    )
    return frame_from_points(points)


def test_joint_angles_on_hand_made_geometry() -> None:
    angles = joint_angles(hand_made_frame())
    knee = angles["knee"]
    assert knee["left"] == pytest.approx(90.0)
    assert knee["right"] == pytest.approx(180.0)
    assert knee["mean"] == pytest.approx(135.0)
    # the right ankle is nearer the camera (smaller z): right is front
    assert knee["front"] == pytest.approx(180.0) and knee["back"] == pytest.approx(90.0)
    hip = angles["hip"]
    assert hip["left"] == pytest.approx(180.0) and hip["right"] == pytest.approx(180.0)
    elbow = angles["elbow"]
    assert elbow["left"] == pytest.approx(90.0) and elbow["right"] == pytest.approx(180.0)
    assert elbow["front"] == elbow["left"]  # the wrists are level in z: a tie goes to left
    assert set(angles) == {"knee", "hip", "elbow", "shoulder"}


def test_joint_angles_skip_joints_with_missing_landmarks() -> None:
    frame = squat_frame(120.0)
    frame.landmarks = [m for m in frame.landmarks if m.name != "left_ankle"]
    angles = joint_angles(frame)
    assert "knee" not in angles and "hip" in angles


def test_joint_angles_match_the_generator() -> None:
    frame = squat_frame(100.0, 150.0)
    knee = joint_angles(frame)["knee"]
    assert knee["left"] == pytest.approx(100.0) and knee["right"] == pytest.approx(150.0)
    lunge = joint_angles(frame_from_points(skeleton("lunge", 80.0)))["knee"]
    assert lunge["front"] == pytest.approx(80.0) and lunge["back"] == pytest.approx(100.0)


# ---- counting ---------------------------------------------------------------------------


@pytest.mark.parametrize("reps", [1, 3, 10])
@pytest.mark.parametrize("seed", [0, 1, 7, 42])
def test_generated_squats_count_exactly(reps: int, seed: int) -> None:
    events = run(RepetitionDetector(SQUAT, "sess_1"), generate_squats(reps, seed=seed))
    assert count(events, EventCompleted) == reps
    assert count(events, EventInterrupted) == 0


@pytest.mark.parametrize("reps", [1, 3, 10])
@pytest.mark.parametrize("seed", [0, 1, 7, 42])
def test_generated_lunges_count_exactly(reps: int, seed: int) -> None:
    events = run(RepetitionDetector(LUNGE, "sess_1"), generate_lunges(reps, seed=seed))
    assert count(events, EventCompleted) == reps
    assert count(events, EventInterrupted) == 0


@pytest.mark.parametrize(("generate", "spec"), [(generate_squats, SQUAT), (generate_lunges, LUNGE)])
@pytest.mark.parametrize(
    "options",
    [
        {"noise": 0.02, "seed": 3},
        {"fps": 10.0, "seed": 4},
        {"fps": 60.0, "rep_seconds": 1.0, "hold_seconds": 0.1},
        {"noise": 0.0, "bottom_angle": 70.0},
    ],
)
def test_counting_is_robust_to_noise_and_rates(
    generate: Callable[..., list[PoseFrame]], spec: MoveSpecDefinition, options: dict[str, Any]
) -> None:
    detector = RepetitionDetector(spec, "s")
    events = run(detector, generate(4, **options))
    assert count(events, EventCompleted) == detector.completed == 4
    assert count(events, EventInterrupted) == detector.interrupted == 0


def test_standing_only_emits_one_enter() -> None:
    events = run(RepetitionDetector(SQUAT, "s"), generate_squats(0, noise=0.01))
    assert [type(e) for e in events] == [ShapeEnter]


def test_shallow_squats_count_nothing() -> None:
    events = run(RepetitionDetector(SQUAT, "s"), generate_squats(3, bottom_angle=110.0))
    assert count(events, EventCompleted) == 0 and count(events, EventInterrupted) == 0


def test_one_squat_event_sequence() -> None:
    events = run(RepetitionDetector(SQUAT, "sess_9"), generate_squats(1, seed=2))
    described = [(type(e).__struct_config__.tag, *_key(e)) for e in events]
    assert described == [
        ("shape_enter", "standing"),
        ("shape_exit", "standing"),
        ("shape_enter", "bottom"),
        ("feedback", "coaching"),
        ("shape_exit", "bottom"),
        ("shape_enter", "standing"),
        ("event_completed", "squat"),
        ("feedback", "success"),
    ]


def _key(event: Any) -> tuple[str]:
    payload = event.payload
    for field in ("shape_key", "event_key", "level", "reason"):
        if hasattr(payload, field):
            return (getattr(payload, field),)
    raise AssertionError(event)


def test_events_carry_ids_session_and_frame_time() -> None:
    frames = generate_squats(3, seed=8)
    detector = RepetitionDetector(SQUAT, "sess_9", event_id_prefix="evt_x_")
    events: list[Any] = []
    stamps = []
    for frame in frames:
        new = detector.process(frame)
        events += new
        stamps += [(e.ts_ms, frame.timestamp_ms) for e in new]
    assert [e.event_id for e in events] == [f"evt_x_{i}" for i in range(1, len(events) + 1)]
    assert {e.session_id for e in events} == {"sess_9"}
    assert all(ts == frame_ts for ts, frame_ts in stamps)
    assert [e.ts_ms for e in events] == sorted(e.ts_ms for e in events)


def test_default_event_ids_are_unique_per_session() -> None:
    frames = generate_squats(1)
    a = run(RepetitionDetector(SQUAT, "sess_a"), frames)
    b = run(RepetitionDetector(SQUAT, "sess_b"), frames)
    assert not {e.event_id for e in a} & {e.event_id for e in b}
    assert a[0].event_id == "evt_sess_a_1"


def test_noise_never_produces_duplicate_enters() -> None:
    events = run(RepetitionDetector(SQUAT, "s"), generate_squats(10, noise=0.02, seed=11))
    enters = [e.payload.shape_key for e in events if isinstance(e, ShapeEnter)]
    assert all(a != b for a, b in itertools.pairwise(enters))
    exits = [e.payload.shape_key for e in events if isinstance(e, ShapeExit)]
    assert exits == enters[:-1]


def test_completed_score_is_the_mean_confidence_over_the_repetition() -> None:
    frames = generate_squats(2, seed=5)
    detector = RepetitionDetector(SQUAT, "s")
    done = [
        (i, e.payload.score)
        for i, frame in enumerate(frames)
        for e in detector.process(frame)
        if isinstance(e, EventCompleted)
    ]
    (first, first_score), (second, second_score) = done
    # the first repetition starts at frame 0; the second at the frame that completed the first
    expected = [
        sum(f.confidence for f in frames[a : b + 1]) / (b + 1 - a)
        for a, b in ((0, first), (first, second))
    ]
    assert [first_score, second_score] == pytest.approx(expected, abs=1e-4)


def test_events_encode_as_the_client_decodes_them() -> None:
    events = run(RepetitionDetector(SQUAT, "s"), generate_squats(2))
    wire = encoder.encode({"type": "event_batch", "batch_seq": 1, "events": events})
    batch = server_message_decoder.decode(wire)
    assert isinstance(batch, EventBatch)
    decoded = [decode_detection_event(raw) for raw in batch.events]
    assert msgspec.to_builtins(decoded) == msgspec.to_builtins(events)
    assert [type(e).__name__ for e in decoded] == [type(e).__name__ for e in events]
    first = msgspec.json.decode(batch.events[0])
    assert set(first) == {"type", "event_id", "session_id", "ts_ms", "payload"}


# ---- the state machine on hand-made angle paths -----------------------------------------

THREE_PHASES_SOURCE = """\
name: deep
version: "1"
description: d
detection:
  type: repetition
  movement:
    name: deep_squat
    phases:
      - name: standing
        criteria: [{joint: knee, angle_min: 160, angle_max: 180}]
      - name: half
        criteria: [{joint: knee, angle_min: 115, angle_max: 135}]
      - name: bottom
        criteria: [{joint: knee, angle_min: 60, angle_max: 95}]
    sequence: [standing, half, bottom, half, standing]
"""

THREE_PHASES = definition(
    THREE_PHASES_SOURCE
    + """\
  feedback:
    - {on: completed, level: success, message: Deep!}
    - {on: half, level: info, message: Halfway}
"""
)


def test_full_walk_completes() -> None:
    detector = RepetitionDetector(THREE_PHASES, "s")
    events = run(detector, at_angles([175, 150, 125, 100, 80, 100, 125, 150, 175]))
    assert count(events, EventCompleted) == 1 and count(events, Feedback) == 3
    assert detector.phase == "standing" and detector.progress == 1


def test_returning_to_the_start_early_interrupts() -> None:
    detector = RepetitionDetector(THREE_PHASES, "s")
    events = run(detector, at_angles([175, 125, 170, 125, 80, 125, 175]))
    interrupted = [e for e in events if isinstance(e, EventInterrupted)]
    assert len(interrupted) == 1 and "standing" in interrupted[0].payload.reason
    assert count(events, EventCompleted) == 1  # the walk restarted and then finished
    assert detector.interrupted == 1


def test_out_of_order_phase_interrupts() -> None:
    spec = definition(
        THREE_PHASES_SOURCE.replace(
            "[standing, half, bottom, half, standing]", "[standing, bottom, standing]"
        )
    )
    detector = RepetitionDetector(spec, "s")
    events = run(detector, at_angles([175, 80, 125, 175, 80, 175]))
    (interrupted,) = [e for e in events if isinstance(e, EventInterrupted)]
    assert "'half'" in interrupted.payload.reason
    assert count(events, EventCompleted) == 1


def test_leaving_the_start_to_an_unrelated_phase_is_not_an_interruption() -> None:
    spec = definition(
        THREE_PHASES_SOURCE.replace(
            "[standing, half, bottom, half, standing]", "[standing, bottom, standing]"
        )
    )
    events = run(RepetitionDetector(spec, "s"), at_angles([175, 125, 175, 80, 175]))
    assert count(events, EventInterrupted) == 0 and count(events, EventCompleted) == 1


def test_frames_between_phases_keep_the_phase() -> None:
    detector = RepetitionDetector(SQUAT, "s")
    assert run(detector, at_angles([130, 140])) == []  # no phase yet
    assert detector.phase is None
    events = run(detector, at_angles([175, 130, 175, 130]))
    assert [type(e) for e in events] == [ShapeEnter]


def test_range_ends_are_inclusive() -> None:
    spec = definition(
        THREE_PHASES_SOURCE.replace(
            "criteria: [{joint: knee, angle_min: 115, angle_max: 135}]",
            "criteria: [{joint: knee, side: left, angle_min: 90, angle_max: 90},"
            " {joint: knee, side: front, angle_min: 180, angle_max: 180}]",
        )
    )
    detector = RepetitionDetector(spec, "s")
    (event,) = detector.process(hand_made_frame())  # left exactly 90°, right exactly 180°
    assert isinstance(event, ShapeEnter) and event.payload.shape_key == "half"


def test_side_less_criterion_uses_the_mean_of_both_sides() -> None:
    detector = RepetitionDetector(SQUAT, "s")
    # left 175 and right 150: mean 162.5 is standing
    assert [type(e) for e in detector.process(squat_frame(175.0, 150.0))] == [ShapeEnter]
    # left 175, right 120: mean 147.5 is no phase, though the left leg alone would be
    detector = RepetitionDetector(SQUAT, "s")
    assert detector.process(squat_frame(175.0, 120.0)) == []


def test_front_and_back_follow_the_legs_not_the_names() -> None:
    mirrored = {
        name.replace("left", "@").replace("right", "left").replace("@", "right"): point
        for name, point in skeleton("lunge", 80.0).items()
    }
    knee = joint_angles(frame_from_points(mirrored))["knee"]
    assert knee["front"] == pytest.approx(80.0) and knee["right"] == pytest.approx(80.0)
    assert knee["back"] == pytest.approx(100.0)


def test_timeout_interrupts_a_stalled_repetition() -> None:
    detector = RepetitionDetector(SQUAT, "s", rep_timeout_ms=1000.0)
    frames = at_angles([175, 80, 80, 80, 80, 175, 80, 175], step_ms=400.0)
    events = run(detector, frames)
    (interrupted,) = [e for e in events if isinstance(e, EventInterrupted)]
    assert interrupted.ts_ms == 1600.0 and "1000 ms" in interrupted.payload.reason
    assert count(events, EventCompleted) == 1  # only the second, brisk repetition


def test_sequence_must_have_two_phases() -> None:
    spec = MoveSpecDefinition("x", "1", "x", SQUAT.phases, ("standing",))
    with pytest.raises(ValueError):
        RepetitionDetector(spec, "s")
