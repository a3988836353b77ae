"""MoveSpec YAML: parsing and validation with line and column (PROTOCOL §B.9).

Parsed with PyYAML's node API, so every issue points at the node that caused
it (1-based line and column). The ``feedback`` list under ``detection`` is
this emulator's own schema (the real keys are undocumented)::

    feedback:
      - {on: bottom, level: coaching, message: "Hold it"}
      - {on: completed, level: success, message: "Nice rep"}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from aiolens.kynasmith.models import ValidationIssue

__all__ = [
    "LUNGE_YAML",
    "SQUAT_YAML",
    "Criterion",
    "MoveSpecDefinition",
    "Phase",
    "validate_movespec_yaml",
]

JOINTS: Final = frozenset({"knee", "hip", "elbow"})
SIDES: Final = frozenset({"front", "back", "left", "right"})
LEVELS: Final = frozenset({"info", "coaching", "success"})

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
        criteria:
          - {joint: knee, angle_min: 160, angle_max: 180}
      - name: bottom
        criteria:
          - {joint: knee, angle_min: 60, angle_max: 100}
    sequence: [standing, bottom, standing]
  feedback:
    - {on: completed, level: success, message: Nice squat}
"""

LUNGE_YAML: Final = """\
name: lunge
version: "1.0"
description: Forward lunge
detection:
  type: repetition
  movement:
    name: lunge
    phases:
      - name: standing
        criteria:
          - {joint: knee, side: front, angle_min: 155, angle_max: 180}
      - name: bottom
        criteria:
          - {joint: knee, side: front, angle_min: 65, angle_max: 105}
          - {joint: knee, side: back, angle_min: 80, angle_max: 130}
    sequence: [standing, bottom, standing]
  feedback:
    - {on: bottom, level: coaching, message: Keep the front knee over the ankle}
"""


@dataclass(frozen=True, slots=True)
class Criterion:
    """A joint-angle range that must hold."""

    joint: str
    side: str | None
    angle_min: float
    angle_max: float


@dataclass(frozen=True, slots=True)
class Phase:
    """A discrete position of the movement: all criteria hold (logical AND)."""

    name: str
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True, slots=True)
class MoveSpecDefinition:
    """A validated MoveSpec."""

    name: str
    version: str
    movement_name: str
    phases: tuple[Phase, ...]
    sequence: tuple[str, ...]
    feedback: tuple[tuple[str, str, str], ...] = field(default=())
    """``(on, level, message)`` cues."""


class _Checker:
    def __init__(self) -> None:
        self.errors: list[ValidationIssue] = []
        self.warnings: list[ValidationIssue] = []

    def issue(
        self, code: str, message: str, node: yaml.Node | None, path: str, severity: str = "error"
    ) -> None:
        mark = node.start_mark if node is not None else None
        item = ValidationIssue(
            code=code,
            message=message,
            severity="warning" if severity == "warning" else "error",
            path=path or None,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        )
        (self.warnings if severity == "warning" else self.errors).append(item)

    def mapping(self, node: yaml.Node | None, path: str) -> dict[str, tuple[yaml.Node, Any]]:
        if not isinstance(node, yaml.MappingNode):
            self.issue("invalid_type", f"{path or 'document'} must be a mapping", node, path)
            return {}
        out = {}
        for key, value in node.value:
            out[str(key.value)] = (value, key)
        return out

    def field(
        self,
        mapping: dict[str, tuple[yaml.Node, Any]],
        key: str,
        parent: yaml.Node | None,
        path: str,
    ) -> yaml.Node | None:
        if key not in mapping:
            self.issue("missing_field", f"{_join(path, key)} is required", parent, _join(path, key))
            return None
        node: yaml.Node = mapping[key][0]
        return node

    def scalar(self, node: yaml.Node | None, path: str) -> str | None:
        if node is None:
            return None
        if not isinstance(node, yaml.ScalarNode) or node.value == "":
            self.issue("invalid_type", f"{path} must be a non-empty value", node, path)
            return None
        return str(node.value)

    def number(self, node: yaml.Node | None, path: str) -> float | None:
        text = self.scalar(node, path)
        if text is None:
            return None
        try:
            return float(text)
        except ValueError:
            self.issue("invalid_type", f"{path} must be a number", node, path)
            return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def validate_movespec_yaml(
    source: str,
) -> tuple[MoveSpecDefinition | None, list[ValidationIssue], list[ValidationIssue]]:
    """Parse and check a MoveSpec; returns ``(definition or None, errors, warnings)``."""
    check = _Checker()
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        check.errors.append(
            ValidationIssue(
                code="yaml_syntax_error",
                message=f"{exc.problem or exc}",
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            )
        )
        return None, check.errors, check.warnings
    top = check.mapping(root, "")
    name = check.scalar(check.field(top, "name", root, ""), "name")
    version = check.scalar(top["version"][0], "version") if "version" in top else "1"
    if "description" not in top:
        check.issue(
            "missing_description", "description is recommended", root, "description", "warning"
        )
    det_node = check.field(top, "detection", root, "")
    det = check.mapping(det_node, "detection") if det_node is not None else {}
    if det:
        kind = check.scalar(check.field(det, "type", det_node, "detection"), "detection.type")
        if kind is not None and kind != "repetition":
            check.issue(
                "unsupported_detection_type",
                f"detection.type {kind!r} is not supported",
                det["type"][0],
                "detection.type",
            )
    mv_node = check.field(det, "movement", det_node, "detection") if det else None
    mv = check.mapping(mv_node, "detection.movement") if mv_node is not None else {}
    base = "detection.movement"
    movement = check.scalar(check.field(mv, "name", mv_node, base), f"{base}.name") if mv else None
    phases = _phases(check, mv, mv_node, base) if mv else []
    names = {p.name for p in phases}
    sequence: list[str] = []
    seq_node = check.field(mv, "sequence", mv_node, base) if mv else None
    if seq_node is not None:
        if not isinstance(seq_node, yaml.SequenceNode) or len(seq_node.value) < 2:
            check.issue(
                "invalid_type",
                "sequence must list at least two phases",
                seq_node,
                f"{base}.sequence",
            )
        else:
            for i, item in enumerate(seq_node.value):
                value = check.scalar(item, f"{base}.sequence[{i}]")
                if value is not None and names and value not in names:
                    check.issue(
                        "unknown_phase",
                        f"sequence names unknown phase {value!r}",
                        item,
                        f"{base}.sequence[{i}]",
                    )
                if value is not None:
                    sequence.append(value)
    for phase in phases:
        if phase.name not in sequence and sequence:
            check.issue(
                "unused_phase",
                f"phase {phase.name!r} is not in the sequence",
                mv_node,
                f"{base}.phases",
                "warning",
            )
    feedback = _feedback(check, det, names) if det else []
    if check.errors or name is None or movement is None:
        return None, check.errors, check.warnings
    definition = MoveSpecDefinition(
        name, version or "1", movement, tuple(phases), tuple(sequence), tuple(feedback)
    )
    return definition, check.errors, check.warnings


def _phases(
    check: _Checker, mv: dict[str, tuple[yaml.Node, Any]], mv_node: yaml.Node | None, base: str
) -> list[Phase]:
    node = check.field(mv, "phases", mv_node, base)
    if node is None:
        return []
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        check.issue("invalid_type", "phases must be a non-empty list", node, f"{base}.phases")
        return []
    phases = []
    for i, item in enumerate(node.value):
        path = f"{base}.phases[{i}]"
        fields = check.mapping(item, path)
        pname = check.scalar(check.field(fields, "name", item, path), f"{path}.name")
        crit_node = check.field(fields, "criteria", item, path)
        criteria = []
        if crit_node is not None:
            if not isinstance(crit_node, yaml.SequenceNode) or not crit_node.value:
                check.issue(
                    "invalid_type",
                    "criteria must be a non-empty list",
                    crit_node,
                    f"{path}.criteria",
                )
            else:
                for j, c in enumerate(crit_node.value):
                    crit = _criterion(check, c, f"{path}.criteria[{j}]")
                    if crit is not None:
                        criteria.append(crit)
        if pname is not None:
            phases.append(Phase(pname, tuple(criteria)))
    return phases


def _criterion(check: _Checker, node: yaml.Node, path: str) -> Criterion | None:
    fields = check.mapping(node, path)
    joint = check.scalar(check.field(fields, "joint", node, path), f"{path}.joint")
    if joint is not None and joint not in JOINTS:
        check.issue(
            "unknown_joint",
            f"unknown joint {joint!r} (knee, hip, elbow)",
            fields["joint"][0],
            f"{path}.joint",
        )
    side = None
    if "side" in fields:
        side = check.scalar(fields["side"][0], f"{path}.side")
        if side is not None and side not in SIDES:
            check.issue(
                "invalid_side",
                f"side must be one of {sorted(SIDES)}",
                fields["side"][0],
                f"{path}.side",
            )
    lo_node = check.field(fields, "angle_min", node, path)
    hi_node = check.field(fields, "angle_max", node, path)
    lo = check.number(lo_node, f"{path}.angle_min")
    hi = check.number(hi_node, f"{path}.angle_max")
    for value, vnode, key in ((lo, lo_node, "angle_min"), (hi, hi_node, "angle_max")):
        if value is not None and not 0 <= value <= 180:
            check.issue(
                "invalid_angle_range", f"{key} must be within 0..180", vnode, f"{path}.{key}"
            )
    if lo is not None and hi is not None and lo > hi:
        check.issue(
            "invalid_angle_range",
            "angle_min is greater than angle_max",
            lo_node,
            f"{path}.angle_min",
        )
    if joint is None or lo is None or hi is None:
        return None
    return Criterion(joint, side, lo, hi)


def _feedback(
    check: _Checker, det: dict[str, tuple[yaml.Node, Any]], phases: set[str]
) -> list[tuple[str, str, str]]:
    if "feedback" not in det:
        return []
    node = det["feedback"][0]
    if not isinstance(node, yaml.SequenceNode):
        check.issue("invalid_type", "feedback must be a list", node, "detection.feedback")
        return []
    cues = []
    for i, item in enumerate(node.value):
        path = f"detection.feedback[{i}]"
        fields = check.mapping(item, path)
        on = check.scalar(check.field(fields, "on", item, path), f"{path}.on")
        level = check.scalar(check.field(fields, "level", item, path), f"{path}.level")
        message = check.scalar(check.field(fields, "message", item, path), f"{path}.message")
        if on is not None and on != "completed" and phases and on not in phases:
            check.issue(
                "unknown_phase",
                f"feedback refers to unknown phase {on!r}",
                fields["on"][0],
                f"{path}.on",
            )
        if level is not None and level not in LEVELS:
            check.issue(
                "invalid_type",
                "level must be info, coaching or success",
                fields["level"][0],
                f"{path}.level",
            )
        if on and level and message:
            cues.append((on, level, message))
    return cues
