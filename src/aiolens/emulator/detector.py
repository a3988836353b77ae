"""Runs a MoveSpec over pose frames for real: the emulator's detection engine.

Angles (docs/protocol-notes.md, an emulator choice) are 3-D, in degrees, measured at the middle
landmark of three:

* knee = hip–knee–ankle, hip = shoulder–hip–knee, elbow = shoulder–elbow–wrist,
  shoulder = hip–shoulder–elbow;
* each for ``left`` and ``right``; ``front`` / ``back`` are the side whose far
  landmark of the joint (ankle for knee, knee for hip, wrist for elbow, elbow
  for shoulder) is closer to / farther from the camera, i.e. has the smaller /
  larger MediaPipe ``z`` (ties go to ``left`` being front);
* a criterion **without** ``side`` holds when the **mean** of the left and right
  angles is in range (chosen over "either side" so that one noisy leg cannot
  satisfy a two-legged phase alone).

State machine (an emulator choice), one frame at a time:

* The frame's phase is the first phase, in MoveSpec order, whose criteria all
  hold (range ends included). A frame where no phase holds keeps the current
  phase: there is no hysteresis band, but events fire only on a phase
  *change*, so noise inside a phase cannot produce duplicate events.
* On a change: ``shape_exit`` for the old phase (if any), ``shape_enter`` for
  the new one, then the feedback cues ``on`` the new phase.
* The ``sequence`` is walked in order. When its last phase is entered an
  ``event_completed {event_key: movement name, score}`` is emitted, followed by
  the ``completed`` cues; ``score`` is the mean frame confidence over the
  repetition. When the sequence ends where it starts (``[standing, bottom,
  standing]``), that last phase also starts the next repetition.
* ``event_interrupted {reason}`` is emitted when a repetition that has left
  its first phase breaks off: the first phase is entered again before the end
  (the repetition restarted), a phase out of order is entered, or (when
  ``rep_timeout_ms`` is set) the repetition takes longer than that.

A partial movement that never reaches the next phase (e.g. a half squat
between ``standing`` and ``bottom``) changes no phase, so it produces no event.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Iterable, Mapping
from typing import Final

from aiolens.emulator.kynasmith_wire import (
    LANDMARK_NAMES,
    CompletedPayload,
    DetectionEvent,
    EventCompleted,
    EventInterrupted,
    Feedback,
    FeedbackPayload,
    InterruptedPayload,
    PoseFrame,
    PoseLandmark,
    ShapeEnter,
    ShapeExit,
    ShapePayload,
)
from aiolens.emulator.movespec_yaml import MoveSpecDefinition

__all__ = ["JOINT_LANDMARKS", "RepetitionDetector", "angle_at", "joint_angles"]

Point = tuple[float, float, float]

JOINT_LANDMARKS: Final[dict[str, tuple[str, str, str]]] = {
    "knee": ("hip", "knee", "ankle"),
    "hip": ("shoulder", "hip", "knee"),
    "elbow": ("shoulder", "elbow", "wrist"),
    "shoulder": ("hip", "shoulder", "elbow"),
}
"""Per joint, the landmarks (without side prefix) whose middle one is the vertex."""

_JOINTS: Final = frozenset(JOINT_LANDMARKS)


def angle_at(a: Point, vertex: Point, c: Point) -> float:
    """The angle ``a``–``vertex``–``c`` in degrees (0..180); NaN if a segment has no length."""
    ax, ay, az = a
    bx, by, bz = vertex
    cx, cy, cz = c
    ux, uy, uz = ax - bx, ay - by, az - bz
    vx, vy, vz = cx - bx, cy - by, cz - bz
    norms = math.sqrt((ux * ux + uy * uy + uz * uz) * (vx * vx + vy * vy + vz * vz))
    if norms == 0.0:
        return math.nan
    cos = (ux * vx + uy * vy + uz * vz) / norms
    # Clamped into acos's domain (NaN stays NaN, as with min()).
    return math.degrees(math.acos(-1.0 if cos < -1.0 else (1.0 if cos > 1.0 else cos)))


_SIDE_KEYS: Final = {
    joint: tuple(f"{side}_{part}" for side in ("left", "right") for part in parts)
    for joint, parts in JOINT_LANDMARKS.items()
}
"""Per joint: the landmark names ``left_a, left_b, left_c, right_a, right_b, right_c``."""


def _angles(at: Mapping[str, Point], joints: Iterable[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for joint in joints:
        la, lb, lc, ra, rb, rc = _SIDE_KEYS[joint]
        try:
            left = angle_at(at[la], at[lb], at[lc])
            right = angle_at(at[ra], at[rb], at[rc])
            left_front = at[lc][2] <= at[rc][2]
        except KeyError:
            continue  # a landmark is missing: the joint has no angle
        front, back = (left, right) if left_front else (right, left)
        out[joint] = {
            "left": left,
            "right": right,
            "front": front,
            "back": back,
            "mean": (left + right) / 2,
        }
    return out


def joint_angles(
    frame: PoseFrame, joints: Collection[str] = tuple(JOINT_LANDMARKS)
) -> dict[str, dict[str, float]]:
    """The joint angles of one frame.

    Args:
        frame: a pose frame; joints whose landmarks are missing are left out.
        joints: which joints to measure (keys of :data:`JOINT_LANDMARKS`); all
            four by default. The detector asks only for those its MoveSpec uses.

    Returns:
        ``{joint: {"left", "right", "front", "back", "mean": degrees}}`` for
        the ``joints`` (``knee``, ``hip``, ``elbow`` and ``shoulder``).
    """
    needed = _landmarks_of(joints if isinstance(joints, tuple) else tuple(joints))
    at = {m.name: (m.x, m.y, m.z) for m in frame.landmarks if m.name in needed}
    return _angles(at, joints)


_CANONICAL_INDEX: Final = {name: index for index, name in enumerate(LANDMARK_NAMES)}


def _points_of_valid_frame(
    marks: list[PoseLandmark], slots: tuple[tuple[str, int], ...], needed: frozenset[str]
) -> dict[str, Point]:
    """``joint_angles``' points for a frame whose landmark names are each there once.

    Such a frame (every frame :class:`RepetitionDetector` gets) usually has them in
    MediaPipe order: then each needed landmark is read at its index (``slots``:
    name and index), with its name checked; otherwise the whole list is searched.
    """
    if len(marks) == len(LANDMARK_NAMES):
        at: dict[str, Point] = {}
        for name, index in slots:
            mark = marks[index]
            if mark.name != name:
                break
            at[name] = (mark.x, mark.y, mark.z)
        else:
            return at
    return {m.name: (m.x, m.y, m.z) for m in marks if m.name in needed}


@functools.lru_cache(maxsize=64)
def _landmarks_of(joints: tuple[str, ...]) -> frozenset[str]:
    """The landmark names the joints need (asked per frame: cached)."""
    return frozenset(name for joint in joints for name in _SIDE_KEYS.get(joint, ()))


class RepetitionDetector:
    """Feeds frames through a MoveSpec and returns detection events.

    One detector serves one detection session; it is not thread-safe and keeps
    only a few numbers of state, whatever the session's length.

    Attributes:
        definition: the MoveSpec being run.
        session_id: put into every event.
        phase: the current phase (``None`` before the first phase is entered).
        completed: repetitions counted so far.
        interrupted: interruptions so far.
    """

    def __init__(
        self,
        definition: MoveSpecDefinition,
        session_id: str,
        *,
        event_id_prefix: str | None = None,
        rep_timeout_ms: float | None = None,
    ) -> None:
        """Create a detector.

        Args:
            definition: a validated MoveSpec.
            session_id: the session the events belong to.
            event_id_prefix: event ids are this prefix plus a counter from 1;
                the default is ``f"evt_{session_id}_"`` (unique per session).
            rep_timeout_ms: interrupt a repetition that has left its first
                phase and does not complete within this many milliseconds of
                frame time; ``None`` (default) never times out.

        Raises:
            ValueError: the sequence is shorter than two phases.
        """
        if len(definition.sequence) < 2:
            raise ValueError("the MoveSpec sequence must list at least two phases")
        self.definition = definition
        self.session_id = session_id
        self.phase: str | None = None
        self.completed: int = 0
        self.interrupted: int = 0
        self._prefix = f"evt_{session_id}_" if event_id_prefix is None else event_id_prefix
        self._timeout = rep_timeout_ms
        self._next_id = 0
        self._progress = 0  # how many sequence steps are matched
        self._started_ms = 0.0  # when the walk left its first phase
        self._confidence_sum = 0.0
        self._confidence_frames = 0
        self._wrap = definition.sequence[-1] == definition.sequence[0]
        self._criteria = [
            (
                phase.name,
                [(c.joint, c.side or "mean", c.angle_min, c.angle_max) for c in phase.criteria],
            )
            for phase in definition.phases
        ]
        # Only the joints some criterion names are measured (unknown ones never match).
        self._joints = tuple(
            sorted({c.joint for phase in definition.phases for c in phase.criteria} & _JOINTS)
        )
        self._needed = _landmarks_of(self._joints)
        self._slots = tuple((name, _CANONICAL_INDEX[name]) for name in sorted(self._needed))
        self._cues: dict[str, list[tuple[str, str]]] = {}
        for cue in definition.feedback:
            self._cues.setdefault(cue.on, []).append((cue.level, cue.message))

    @property
    def progress(self) -> int:
        """How many steps of the sequence the current repetition has matched."""
        return self._progress

    def _id(self) -> str:
        self._next_id += 1
        return f"{self._prefix}{self._next_id}"

    def _match(self, angles: dict[str, dict[str, float]]) -> str | None:
        for name, criteria in self._criteria:
            for joint, side, lo, hi in criteria:
                sides = angles.get(joint)
                if sides is None or not lo <= sides[side] <= hi:  # NaN never holds
                    break
            else:
                return name
        return None

    def process(self, frame: PoseFrame) -> list[DetectionEvent]:
        """The events one frame causes, in order.

        Args:
            frame: a frame that passed :func:`~aiolens.emulator.kynasmith_wire.frame_problems`;
                frames must come in time order.

        Returns:
            The new events, usually none; ``ts_ms`` is the frame's timestamp.
        """
        ts = frame.timestamp_ms
        events: list[DetectionEvent] = []
        if self._progress > 0:
            self._confidence_sum += frame.confidence
            self._confidence_frames += 1
        if (
            self._timeout is not None
            and self._progress >= 2
            and ts - self._started_ms > self._timeout
        ):
            self._interrupt(events, ts, f"repetition took longer than {self._timeout:g} ms")
        points = _points_of_valid_frame(frame.landmarks, self._slots, self._needed)
        current = self._match(_angles(points, self._joints))  # = joint_angles(frame, joints)
        if current is None or current == self.phase:
            return events
        confidence = frame.confidence
        if self.phase is not None:
            events.append(
                ShapeExit(
                    event_id=self._id(),
                    session_id=self.session_id,
                    ts_ms=ts,
                    payload=ShapePayload(self.phase, confidence),
                )
            )
        self.phase = current
        events.append(
            ShapeEnter(
                event_id=self._id(),
                session_id=self.session_id,
                ts_ms=ts,
                payload=ShapePayload(current, confidence),
            )
        )
        self._feedback(events, current, ts)
        self._step(events, current, ts, confidence)
        return events

    def _step(self, events: list[DetectionEvent], current: str, ts: float, conf: float) -> None:
        sequence = self.definition.sequence
        if current == sequence[self._progress]:
            if self._progress == 0:
                self._begin(conf)
            elif self._progress == 1:
                self._started_ms = ts
            self._progress += 1
            if self._progress < len(sequence):
                return
            self.completed += 1
            score = self._confidence_sum / max(1, self._confidence_frames)
            events.append(
                EventCompleted(
                    event_id=self._id(),
                    session_id=self.session_id,
                    ts_ms=ts,
                    payload=CompletedPayload(self.definition.movement_name, round(score, 4)),
                )
            )
            self._feedback(events, "completed", ts)
            self._progress = 0
            if self._wrap:  # the last phase is the next repetition's first
                self._begin(conf)
                self._progress = 1
        elif current == sequence[0]:
            if self._progress > 1:
                self._interrupt(events, ts, f"returned to {current!r} before the repetition ended")
            self._begin(conf)
            self._progress = 1
        elif self._progress > 1:
            self._interrupt(events, ts, f"phase {current!r} entered out of sequence")
        else:
            self._progress = 0

    def _begin(self, confidence: float) -> None:
        self._confidence_sum = confidence
        self._confidence_frames = 1

    def _interrupt(self, events: list[DetectionEvent], ts: float, reason: str) -> None:
        self.interrupted += 1
        self._progress = 0
        events.append(
            EventInterrupted(
                event_id=self._id(),
                session_id=self.session_id,
                ts_ms=ts,
                payload=InterruptedPayload(reason),
            )
        )

    def _feedback(self, events: list[DetectionEvent], on: str, ts: float) -> None:
        for level, message in self._cues.get(on, ()):
            events.append(
                Feedback(
                    event_id=self._id(),
                    session_id=self.session_id,
                    ts_ms=ts,
                    payload=FeedbackPayload(level, message),
                )
            )
