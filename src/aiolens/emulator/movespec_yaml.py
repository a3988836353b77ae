"""MoveSpec YAML: parsing and validation with 1-based line and column (docs/protocol-notes.md).

The emulator's validate endpoints report what this module finds, and its
detector runs the :class:`~aiolens.emulator.movespec_model.MoveSpecDefinition`
it builds (the model and the sample MoveSpecs are
:mod:`aiolens.emulator.movespec_model`, re-exported here). The YAML is composed
with PyYAML's node API (``SafeLoader``), so every issue points at the node that
caused it; a missing field points at the mapping that lacks it.

The schema (docs/protocol-notes.md, "Kynasmith")::

    name: squat                 # required string
    version: "1.0"              # required; a string (a bare number only warns)
    description: optional
    detection:
      type: repetition          # the only supported type
      movement:
        name: squat             # the event_key of event_completed
        phases:
          - name: standing      # the shape_key of shape_enter / shape_exit
            description: optional
            criteria:           # all must hold (logical AND)
              - joint: knee     # knee, hip, elbow or shoulder
                side: front     # optional: front, back, left or right
                angle_min: 160  # degrees, 0..180
                angle_max: 180
        sequence: [standing, bottom, standing]
      feedback:                 # optional; the emulator's own keys (see below)
        - {on: bottom, level: coaching, message: "Hold it"}
        - {on: completed, level: success, message: "Nice rep"}

The real ``feedback`` keys are undocumented (every retrieved copy of the
reference was cut off there), so the ``feedback`` list is this emulator's own
schema: ``on`` is a phase name (the cue fires on entering it) or
``completed`` (fires on each completed repetition); ``level`` is ``info``,
``coaching`` or ``success``; ``message`` is the text.

Error codes: ``yaml_syntax_error``, ``missing_field``, ``invalid_type``,
``duplicate_key``, ``duplicate_phase``, ``unknown_phase``, ``invalid_sequence``,
``invalid_angle_range``, ``unknown_joint``, ``invalid_side``,
``unsupported_detection_type``, ``invalid_level``. Warning codes:
``missing_description``, ``unused_phase``, ``unknown_field``,
``version_not_string``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import yaml

from aiolens.emulator.kynasmith_wire import ValidationIssue
from aiolens.emulator.movespec_model import (
    DETECTION_TYPES,
    JOINTS,
    LEVELS,
    LUNGE_YAML,
    SIDES,
    SQUAT_YAML,
    Criterion,
    FeedbackCue,
    MoveSpecDefinition,
    Phase,
)

__all__ = [
    "JOINTS",
    "LEVELS",
    "LUNGE_YAML",
    "SIDES",
    "SQUAT_YAML",
    "Criterion",
    "FeedbackCue",
    "MoveSpecDefinition",
    "Phase",
    "validate_movespec_yaml",
]

_STR: Final = "tag:yaml.org,2002:str"
_NUMBER_TAGS: Final = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})

_TOP_KEYS: Final = frozenset({"name", "version", "description", "detection"})
_DETECTION_KEYS: Final = frozenset({"type", "movement", "feedback"})
_MOVEMENT_KEYS: Final = frozenset({"name", "phases", "sequence"})
_PHASE_KEYS: Final = frozenset({"name", "description", "criteria"})
_CRITERION_KEYS: Final = frozenset({"joint", "side", "angle_min", "angle_max"})
_CUE_KEYS: Final = frozenset({"on", "level", "message"})


_Fields = dict[str, tuple[yaml.Node, yaml.Node]]  # key → (value node, key node)


class _Checker:
    """Collects issues while walking the node tree."""

    def __init__(self) -> None:
        self.errors: list[ValidationIssue] = []
        self.warnings: list[ValidationIssue] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def error(self, code: str, message: str, node: yaml.Node | None, path: str) -> None:
        self.errors.append(_issue(code, message, "error", node, path))

    def warning(self, code: str, message: str, node: yaml.Node | None, path: str) -> None:
        self.warnings.append(_issue(code, message, "warning", node, path))

    def mapping(self, node: yaml.Node | None, path: str, known: frozenset[str]) -> _Fields | None:
        """The fields of a mapping node; ``None`` (and an error) when it is not one."""
        if node is None:
            return None
        if not isinstance(node, yaml.MappingNode):
            where = path or "the document"
            self.error("invalid_type", f"{where} must be a mapping", node, path)
            return None
        fields: _Fields = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else ""
            key_path = _join(path, key)
            if key in fields:
                self.error("duplicate_key", f"{key_path} is given twice", key_node, key_path)
                continue
            if key not in known:
                self.warning(
                    "unknown_field", f"{key_path} is not a known field; ignored", key_node, key_path
                )
            fields[key] = (value_node, key_node)
        return fields

    def required(
        self, fields: _Fields | None, key: str, parent: yaml.Node | None, path: str
    ) -> yaml.Node | None:
        """The value node of ``key``; ``None`` (and a ``missing_field`` error) when absent."""
        if fields is None:
            return None
        if key not in fields:
            key_path = _join(path, key)
            self.error("missing_field", f"{key_path} is required", parent, key_path)
            return None
        return fields[key][0]

    def string(self, node: yaml.Node | None, path: str) -> str | None:
        """The value of a non-empty string scalar; ``None`` (and an error) otherwise."""
        if node is None:
            return None
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR or not node.value.strip():
            self.error("invalid_type", f"{path} must be a non-empty string", node, path)
            return None
        return str(node.value)

    def one_of(
        self,
        value: str | None,
        allowed: frozenset[str],
        code: str,
        what: str,
        node: yaml.Node,
        path: str,
    ) -> str | None:
        """``value`` if it is one of ``allowed``; ``None`` (and a ``code`` error) otherwise."""
        if value is None or value in allowed:
            return value
        known = ", ".join(sorted(allowed))
        self.error(code, f"unknown {what} {value!r} (one of {known})", node, path)
        return None

    def number(self, node: yaml.Node | None, path: str) -> float | None:
        """The value of a numeric scalar; ``None`` (and an error) otherwise."""
        if node is None:
            return None
        if isinstance(node, yaml.ScalarNode):
            try:
                if node.tag in _NUMBER_TAGS:  # 90, 9_0, 0x5A, 90.0, .nan …
                    return float(self._constructor.construct_object(node))
                if node.tag == _STR and node.style is None:
                    return float(str(node.value))  # YAML 1.1 leaves a plain "1e2" a string
            except (ValueError, yaml.YAMLError):
                pass
        self.error("invalid_type", f"{path} must be a number", node, path)
        return None


def _issue(
    code: str, message: str, severity: str, node: yaml.Node | None, path: str
) -> ValidationIssue:
    mark = node.start_mark if node is not None else None
    return ValidationIssue(
        code=code,
        message=message,
        severity=severity,
        path=path or None,
        line=mark.line + 1 if mark is not None else None,
        column=mark.column + 1 if mark is not None else None,
    )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def validate_movespec_yaml(
    source: str,
) -> tuple[MoveSpecDefinition | None, list[ValidationIssue], list[ValidationIssue]]:
    """Parse and check a MoveSpec.

    Args:
        source: the whole YAML document.

    Returns:
        ``(definition, errors, warnings)``: the definition is ``None`` whenever
        there is an error. Each issue has a dotted ``path`` (e.g.
        ``detection.movement.phases[1].criteria[0].angle_min``) and the 1-based
        ``line`` and ``column`` of the offending node; a YAML syntax error is a
        single ``yaml_syntax_error`` at the parser's problem mark.
    """
    check = _Checker()
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
        check.errors.append(
            ValidationIssue(
                code="yaml_syntax_error",
                message=f"YAML syntax error: {reason}",
                severity="error",
                line=mark.line + 1 if mark is not None else None,
                column=mark.column + 1 if mark is not None else None,
            )
        )
        return None, check.errors, check.warnings
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        before = source[: exc.position]
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        check.errors.append(
            ValidationIssue(
                code="yaml_syntax_error",
                message=f"YAML syntax error: {exc.reason} (U+{char:04X})",
                severity="error",
                line=before.count("\n") + 1,
                column=exc.position - (before.rfind("\n") + 1) + 1,
            )
        )
        return None, check.errors, check.warnings
    if root is None:
        check.error("invalid_type", "the document is empty; a mapping is required", None, "")
        return None, check.errors, check.warnings

    top = check.mapping(root, "", _TOP_KEYS)
    name = check.string(check.required(top, "name", root, ""), "name")
    version = _version(check, check.required(top, "version", root, ""))
    description: str | None = None
    if top is not None:
        if "description" in top:
            description = check.string(top["description"][0], "description")
        else:
            check.warning("missing_description", "a description is recommended", root, "")

    det_node = check.required(top, "detection", root, "")
    det = check.mapping(det_node, "detection", _DETECTION_KEYS)
    kind = check.string(check.required(det, "type", det_node, "detection"), "detection.type")
    if det is not None and kind is not None and kind not in DETECTION_TYPES:
        check.error(
            "unsupported_detection_type",
            f"detection.type {kind!r} is not supported (only 'repetition')",
            det["type"][0],
            "detection.type",
        )

    base = "detection.movement"
    mv_node = check.required(det, "movement", det_node, "detection")
    mv = check.mapping(mv_node, base, _MOVEMENT_KEYS)
    movement = check.string(check.required(mv, "name", mv_node, base), f"{base}.name")
    phases = _phases(check, check.required(mv, "phases", mv_node, base), base)
    sequence = _sequence(
        check, check.required(mv, "sequence", mv_node, base), base, [p[0].name for p in phases]
    )
    used = set(sequence)
    for i, (phase, node) in enumerate(phases):
        if sequence and phase.name not in used:
            check.warning(
                "unused_phase",
                f"phase {phase.name!r} is not in the sequence",
                node,
                f"{base}.phases[{i}]",
            )
    feedback: list[FeedbackCue] = []
    if det is not None and "feedback" in det:
        feedback = _feedback(check, det["feedback"][0], {p.name for p, _ in phases})

    if check.errors or name is None or version is None or movement is None:
        return None, check.errors, check.warnings
    definition = MoveSpecDefinition(
        name=name,
        version=version,
        movement_name=movement,
        phases=tuple(p for p, _ in phases),
        sequence=tuple(sequence),
        feedback=tuple(feedback),
        description=description,
    )
    return definition, check.errors, check.warnings


def _version(check: _Checker, node: yaml.Node | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, yaml.ScalarNode) and node.tag in _NUMBER_TAGS:
        check.warning(
            "version_not_string",
            f'version should be a quoted string, e.g. "{node.value}"',
            node,
            "version",
        )
        return str(node.value)
    return check.string(node, "version")


def _nonempty_list(check: _Checker, node: yaml.Node | None, path: str) -> list[yaml.Node] | None:
    if node is None:
        return None
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        check.error("invalid_type", f"{path} must be a non-empty list", node, path)
        return None
    items: list[yaml.Node] = node.value
    return items


def _phases(check: _Checker, node: yaml.Node | None, base: str) -> list[tuple[Phase, yaml.Node]]:
    items = _nonempty_list(check, node, f"{base}.phases")
    if items is None:
        return []
    phases: list[tuple[Phase, yaml.Node]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        path = f"{base}.phases[{i}]"
        fields = check.mapping(item, path, _PHASE_KEYS)
        name_node = check.required(fields, "name", item, path)
        pname = check.string(name_node, f"{path}.name")
        if fields is not None and "description" in fields:
            check.string(fields["description"][0], f"{path}.description")
        criteria: list[Criterion] = []
        crit_items = _nonempty_list(
            check, check.required(fields, "criteria", item, path), f"{path}.criteria"
        )
        for j, crit_node in enumerate(crit_items or ()):
            criterion = _criterion(check, crit_node, f"{path}.criteria[{j}]")
            if criterion is not None:
                criteria.append(criterion)
        if pname is None:
            continue
        if pname in seen:
            check.error(
                "duplicate_phase", f"phase {pname!r} is defined twice", name_node, f"{path}.name"
            )
            continue
        seen.add(pname)
        phases.append((Phase(pname, tuple(criteria)), item))
    return phases


def _criterion(check: _Checker, node: yaml.Node, path: str) -> Criterion | None:
    fields = check.mapping(node, path, _CRITERION_KEYS)
    if fields is None:
        return None
    joint = check.string(check.required(fields, "joint", node, path), f"{path}.joint")
    if joint is not None:
        joint = check.one_of(
            joint, JOINTS, "unknown_joint", "joint", fields["joint"][0], f"{path}.joint"
        )
    side: str | None = None
    if "side" in fields:
        side_node, side_path = fields["side"][0], f"{path}.side"
        side = check.one_of(
            check.string(side_node, side_path), SIDES, "invalid_side", "side", side_node, side_path
        )
    lo_node = check.required(fields, "angle_min", node, path)
    hi_node = check.required(fields, "angle_max", node, path)
    lo = check.number(lo_node, f"{path}.angle_min")
    hi = check.number(hi_node, f"{path}.angle_max")
    in_range = True
    for value, value_node, key in ((lo, lo_node, "angle_min"), (hi, hi_node, "angle_max")):
        if value is not None and not 0.0 <= value <= 180.0:
            in_range = False
            check.error(
                "invalid_angle_range",
                f"{key} {value:g} is outside 0..180 degrees",
                value_node,
                f"{path}.{key}",
            )
    if in_range and lo is not None and hi is not None and lo > hi:
        check.error(
            "invalid_angle_range",
            f"angle_min {lo:g} is greater than angle_max {hi:g}",
            lo_node,
            f"{path}.angle_min",
        )
    if joint is None or lo is None or hi is None:
        return None
    return Criterion(joint, side, lo, hi)


def _sequence(
    check: _Checker, node: yaml.Node | None, base: str, phase_names: Iterable[str]
) -> list[str]:
    path = f"{base}.sequence"
    if node is None:
        return []
    if not isinstance(node, yaml.SequenceNode):
        check.error("invalid_type", f"{path} must be a list of phase names", node, path)
        return []
    if len(node.value) < 2:
        check.error("invalid_sequence", f"{path} must list at least two phases", node, path)
        return []
    known = set(phase_names)
    sequence: list[str] = []
    for i, item in enumerate(node.value):
        value = check.string(item, f"{path}[{i}]")
        if value is None:
            continue
        if known and value not in known:
            check.error(
                "unknown_phase",
                f"the sequence names phase {value!r}, which is not defined",
                item,
                f"{path}[{i}]",
            )
        elif sequence and sequence[-1] == value:
            check.error(
                "invalid_sequence",
                f"phase {value!r} follows itself; a phase is entered only once in a row",
                item,
                f"{path}[{i}]",
            )
        sequence.append(value)
    return sequence


def _feedback(check: _Checker, node: yaml.Node, phases: set[str]) -> list[FeedbackCue]:
    path = "detection.feedback"
    if not isinstance(node, yaml.SequenceNode):
        check.error("invalid_type", f"{path} must be a list", node, path)
        return []
    cues: list[FeedbackCue] = []
    for i, item in enumerate(node.value):
        item_path = f"{path}[{i}]"
        fields = check.mapping(item, item_path, _CUE_KEYS)
        on = check.string(check.required(fields, "on", item, item_path), f"{item_path}.on")
        level = check.string(check.required(fields, "level", item, item_path), f"{item_path}.level")
        message = check.string(
            check.required(fields, "message", item, item_path), f"{item_path}.message"
        )
        if fields is None:
            continue
        if on is not None and on != "completed" and phases and on not in phases:
            check.error(
                "unknown_phase",
                f"the cue fires on phase {on!r}, which is not defined",
                fields["on"][0],
                f"{item_path}.on",
            )
        if level is not None:
            level_node, level_path = fields["level"][0], f"{item_path}.level"
            level = check.one_of(level, LEVELS, "invalid_level", "level", level_node, level_path)
        if on is not None and level is not None and message is not None:
            cues.append(FeedbackCue(on, level, message))
    return cues
