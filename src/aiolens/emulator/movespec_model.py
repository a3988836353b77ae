"""The MoveSpec model the emulator's detector runs, and two sample MoveSpecs.

A MoveSpec (docs/protocol-notes.md, "Kynasmith") names the phases of a movement
(each a set of joint-angle criteria that all hold), the order they come in, and
feedback cues. :mod:`aiolens.emulator.movespec_yaml` reads and checks the YAML
and builds a :class:`MoveSpecDefinition`; :mod:`aiolens.emulator.detector` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple

__all__ = [
    "DETECTION_TYPES",
    "JOINTS",
    "LEVELS",
    "LUNGE_YAML",
    "SIDES",
    "SQUAT_YAML",
    "Criterion",
    "FeedbackCue",
    "MoveSpecDefinition",
    "Phase",
]

JOINTS: Final = frozenset({"knee", "hip", "elbow", "shoulder"})
"""Joints a criterion may name (the docs show knee and hip; the rest are emulator extras)."""
SIDES: Final = frozenset({"front", "back", "left", "right"})
"""Values of a criterion's optional ``side``."""
LEVELS: Final = frozenset({"info", "coaching", "success"})
"""Feedback levels of the runtime contract's feedback events."""
DETECTION_TYPES: Final = frozenset({"repetition"})

SQUAT_YAML: Final = """\
name: squat
version: "1.0"
description: Bodyweight squat
detection:
  type: repetition
  movement:
    name: squat
    phases:
      - name: standing
        description: Upright, knees nearly straight
        criteria:
          - {joint: knee, angle_min: 160, angle_max: 180}
      - name: bottom
        description: Thighs near parallel
        criteria:
          - {joint: knee, angle_min: 60, angle_max: 100}
          - {joint: hip, angle_min: 40, angle_max: 120}
    sequence: [standing, bottom, standing]
  feedback:
    - {on: bottom, level: coaching, message: Drive up through your heels}
    - {on: completed, level: success, message: Nice squat}
"""
"""A squat MoveSpec matching :func:`aiolens.kynasmith.synthetic.generate_squats`."""

LUNGE_YAML: Final = """\
name: lunge
version: "1.0"
description: Split-stance lunge
detection:
  type: repetition
  movement:
    name: lunge
    phases:
      - name: standing
        criteria:
          - {joint: knee, side: front, angle_min: 155, angle_max: 180}
          - {joint: knee, side: back, angle_min: 150, angle_max: 180}
      - name: bottom
        criteria:
          - {joint: knee, side: front, angle_min: 65, angle_max: 105}
          - {joint: knee, side: back, angle_min: 80, angle_max: 130}
    sequence: [standing, bottom, standing]
  feedback:
    - {on: bottom, level: coaching, message: Keep the front knee over the ankle}
    - {on: completed, level: success, message: Nice lunge}
"""
"""A lunge MoveSpec matching :func:`aiolens.kynasmith.synthetic.generate_lunges`."""


@dataclass(frozen=True, slots=True)
class Criterion:
    """A joint-angle range that must hold, in degrees (both ends included).

    ``side`` is ``None`` (the mean of left and right), ``"left"``, ``"right"``,
    ``"front"`` or ``"back"``.
    """

    joint: str
    side: str | None
    angle_min: float
    angle_max: float


@dataclass(frozen=True, slots=True)
class Phase:
    """A discrete position of the movement: all its criteria hold (logical AND)."""

    name: str
    criteria: tuple[Criterion, ...]


class FeedbackCue(NamedTuple):
    """A feedback cue: fires ``(level, message)`` on entering phase ``on``.

    ``on == "completed"`` fires on every completed repetition instead.
    """

    on: str
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class MoveSpecDefinition:
    """A MoveSpec that validated without errors, ready for the detector."""

    name: str
    version: str
    movement_name: str
    phases: tuple[Phase, ...]
    sequence: tuple[str, ...]
    feedback: tuple[FeedbackCue, ...] = ()
    description: str | None = None
