"""Runs a MoveSpec over pose frames for real (the emulator's detection engine).

Angles are 3-D, in degrees, at the middle joint: knee = hip–knee–ankle,
hip = shoulder–hip–knee, elbow = shoulder–elbow–wrist. A criterion without
``side`` uses the mean of the left and right angles; ``front``/``back`` pick
the leg (or arm) whose knee (or elbow) is further toward / away from the camera
(larger / smaller z).

State machine (PROTOCOL §B.9 [INF]): the current phase is the first phase
whose criteria all hold (none between phases). On a phase change it emits
``shape_exit`` for the old phase and ``shape_enter`` for the new one. Walking
the ``sequence`` in order emits ``event_completed``; entering a phase out of
order after the walk began emits ``event_interrupted`` and restarts the walk.
Feedback cues fire on entering their phase or on a completed repetition.
"""

from __future__ import annotations

import math
from typing import Any

from aiolens.emulator.movespec_yaml import Criterion, MoveSpecDefinition
from aiolens.kynasmith.models import PoseFrame

__all__ = ["RepetitionDetector", "joint_angles"]

_JOINTS = {
    "knee": ("hip", "knee", "ankle"),
    "hip": ("shoulder", "hip", "knee"),
    "elbow": ("shoulder", "elbow", "wrist"),
}


def _angle(
    a: tuple[float, float, float], b: tuple[float, float, float], c: tuple[float, float, float]
) -> float:
    u = (a[0] - b[0], a[1] - b[1], a[2] - b[2])
    v = (c[0] - b[0], c[1] - b[1], c[2] - b[2])
    nu = math.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
    nv = math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
    if nu == 0 or nv == 0:
        return 0.0
    cos = (u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / (nu * nv)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def joint_angles(frame: PoseFrame) -> dict[str, dict[str, float]]:
    """Angles per joint and side: ``{"knee": {"left", "right", "front", "back", "mean"}}``."""
    at = {m.name: (m.x, m.y, m.z) for m in frame.landmarks}
    out: dict[str, dict[str, float]] = {}
    for joint, (a, b, c) in _JOINTS.items():
        sides = {}
        for side in ("left", "right"):
            try:
                sides[side] = _angle(at[f"{side}_{a}"], at[f"{side}_{b}"], at[f"{side}_{c}"])
            except KeyError:
                continue
        if len(sides) < 2:
            continue
        front = "left" if at[f"left_{b}"][2] >= at[f"right_{b}"][2] else "right"
        back = "right" if front == "left" else "left"
        sides["front"], sides["back"] = sides[front], sides[back]
        sides["mean"] = (sides["left"] + sides["right"]) / 2
        out[joint] = sides
    return out


def _holds(criterion: Criterion, angles: dict[str, dict[str, float]]) -> bool:
    joint = angles.get(criterion.joint)
    if joint is None:
        return False
    value = joint[criterion.side or "mean"]
    return criterion.angle_min <= value <= criterion.angle_max


class RepetitionDetector:
    """Feeds frames through a MoveSpec and returns detection events (wire dicts)."""

    def __init__(self, definition: MoveSpecDefinition, session_id: str) -> None:
        self.definition = definition
        self.session_id = session_id
        self.phase: str | None = None
        self.progress = 0
        self.completed = 0
        self._next_id = 0

    def _event(self, kind: str, ts_ms: float, payload: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        return {
            "type": kind,
            "event_id": f"evt_{self.session_id}_{self._next_id}",
            "session_id": self.session_id,
            "ts_ms": ts_ms,
            "payload": payload,
        }

    def process(self, frame: PoseFrame) -> list[dict[str, Any]]:
        """Events caused by one (valid) frame, in order."""
        angles = joint_angles(frame)
        current = next(
            (p.name for p in self.definition.phases if all(_holds(c, angles) for c in p.criteria)),
            None,
        )
        if current is None or current == self.phase:
            return []
        ts = frame.timestamp_ms
        events = []
        if self.phase is not None:
            events.append(
                self._event(
                    "shape_exit", ts, {"shape_key": self.phase, "confidence": frame.confidence}
                )
            )
        self.phase = current
        events.append(
            self._event("shape_enter", ts, {"shape_key": current, "confidence": frame.confidence})
        )
        events.extend(self._cues(current, ts))
        sequence = self.definition.sequence
        if current == sequence[self.progress]:
            self.progress += 1
            if self.progress == len(sequence):
                self.completed += 1
                events.append(
                    self._event(
                        "event_completed",
                        ts,
                        {
                            "event_key": self.definition.movement_name,
                            "score": round(frame.confidence, 3),
                        },
                    )
                )
                events.extend(self._cues("completed", ts))
                self.progress = 1 if sequence[-1] == sequence[0] else 0
        elif current == sequence[0]:
            if self.progress > 1:
                events.append(
                    self._event(
                        "event_interrupted",
                        ts,
                        {"reason": f"returned to {current!r} before finishing the sequence"},
                    )
                )
            self.progress = 1
        elif self.progress > 0:
            events.append(
                self._event(
                    "event_interrupted", ts, {"reason": f"phase {current!r} out of sequence"}
                )
            )
            self.progress = 0
        return events

    def _cues(self, on: str, ts: float) -> list[dict[str, Any]]:
        return [
            self._event("feedback", ts, {"level": level, "message": message})
            for cue_on, level, message in self.definition.feedback
            if cue_on == on
        ]
