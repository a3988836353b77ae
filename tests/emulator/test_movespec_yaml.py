"""MoveSpec YAML validation: every issue has its code, path, line and column."""

from __future__ import annotations

import msgspec
import pytest

from aiolens.emulator.movespec_yaml import (
    LUNGE_YAML,
    SQUAT_YAML,
    Criterion,
    FeedbackCue,
    Phase,
    validate_movespec_yaml,
)
from aiolens.kynasmith.models import ValidationIssue, ValidationResult, encoder

MINIMAL = """\
name: wave
version: "2"
description: An arm wave
detection:
  type: repetition
  movement:
    name: wave
    phases:
      - name: down
        criteria:
          - joint: elbow
            side: right
            angle_min: 150
            angle_max: 180
      - name: up
        criteria:
          - joint: elbow
            side: right
            angle_min: 30
            angle_max: 90
    sequence: [down, up, down]
"""


def line_of(source: str, text: str) -> int:
    """1-based line of the first line containing ``text``."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


def column_of(source: str, text: str, after: str = "") -> int:
    """1-based column of ``text`` on the first line containing ``after + text``."""
    line = source.splitlines()[line_of(source, after + text) - 1]
    return line.index(after + text) + len(after) + 1


def only_error(source: str) -> ValidationIssue:
    definition, errors, _ = validate_movespec_yaml(source)
    assert definition is None
    assert len(errors) == 1, errors
    return errors[0]


def codes(issues: list[ValidationIssue]) -> list[str]:
    return [i.code for i in issues]


# ---- the samples ------------------------------------------------------------------------


@pytest.mark.parametrize("source", [SQUAT_YAML, LUNGE_YAML, MINIMAL])
def test_samples_validate_clean(source: str) -> None:
    definition, errors, warnings = validate_movespec_yaml(source)
    assert errors == [] and warnings == []
    assert definition is not None


def test_squat_definition() -> None:
    definition, _, _ = validate_movespec_yaml(SQUAT_YAML)
    assert definition is not None
    assert (definition.name, definition.version, definition.movement_name) == (
        "squat",
        "1.0",
        "squat",
    )
    assert definition.description == "Bodyweight squat"
    assert definition.sequence == ("standing", "bottom", "standing")
    assert definition.phases[0] == Phase("standing", (Criterion("knee", None, 160.0, 180.0),))
    assert definition.phases[1].criteria[1] == Criterion("hip", None, 40.0, 120.0)
    assert definition.feedback == (
        FeedbackCue("bottom", "coaching", "Drive up through your heels"),
        FeedbackCue("completed", "success", "Nice squat"),
    )


def test_lunge_definition_uses_front_and_back() -> None:
    definition, _, _ = validate_movespec_yaml(LUNGE_YAML)
    assert definition is not None
    assert {c.side for p in definition.phases for c in p.criteria} == {"front", "back"}


def test_numbers_in_every_yaml_spelling() -> None:
    source = MINIMAL.replace("angle_min: 150", "angle_min: 1.5e2").replace(
        "angle_max: 90", "angle_max: 0x5A"
    )
    definition, errors, _ = validate_movespec_yaml(source)
    assert errors == [] and definition is not None
    assert definition.phases[0].criteria[0].angle_min == 150.0
    assert definition.phases[1].criteria[0].angle_max == 90.0


# ---- YAML syntax ------------------------------------------------------------------------


def test_syntax_error_reports_the_problem_line() -> None:
    source = MINIMAL.replace("          - joint: elbow\n            side: right\n", "", 1).replace(
        "            angle_min: 150\n", "            angle_min: 150\n           bad: [\n", 1
    )
    issue = only_error(source)
    assert issue.code == "yaml_syntax_error" and issue.severity == "error"
    assert issue.line == line_of(source, "bad: [")
    assert issue.path is None


def test_unclosed_flow_sequence_points_at_the_end() -> None:
    issue = only_error("name: [unclosed\n")
    assert (issue.code, issue.line, issue.column) == ("yaml_syntax_error", 2, 1)


def test_tab_indentation() -> None:
    source = 'name: x\nversion: "1"\ndetection:\n\ttype: repetition\n'
    issue = only_error(source)
    assert (issue.code, issue.line, issue.column) == ("yaml_syntax_error", 4, 1)
    assert "\\t" in issue.message


def test_mapping_value_in_wrong_place() -> None:
    issue = only_error("name: x\n  bad: indent\n")
    assert (issue.code, issue.line, issue.column) == ("yaml_syntax_error", 2, 6)


def test_two_documents_are_a_syntax_error() -> None:
    issue = only_error(MINIMAL + "---\nname: other\n")
    assert issue.code == "yaml_syntax_error"
    assert issue.line == MINIMAL.count("\n") + 1


def test_forbidden_character_has_line_and_column() -> None:
    issue = only_error('name: x\nversion: "a\x01b"\n')
    assert (issue.code, issue.line, issue.column) == ("yaml_syntax_error", 2, 12)


@pytest.mark.parametrize(("source", "line"), [("", None), ("# only a comment\n", None)])
def test_empty_document(source: str, line: int | None) -> None:
    issue = only_error(source)
    assert issue.code == "invalid_type" and issue.line == line


def test_document_must_be_a_mapping() -> None:
    issue = only_error("- name: squat\n")
    assert (issue.code, issue.line, issue.column, issue.path) == ("invalid_type", 1, 1, None)


# ---- schema errors ----------------------------------------------------------------------


def test_unknown_phase_in_sequence_reports_its_line_and_column() -> None:
    source = SQUAT_YAML.replace(
        "sequence: [standing, bottom, standing]", "sequence: [standing, bottom, sitting]"
    )
    issue = only_error(source)
    assert issue.code == "unknown_phase"
    assert issue.path == "detection.movement.sequence[2]"
    assert issue.line == line_of(source, "sequence: [standing, bottom, sitting]")
    assert issue.column == column_of(source, "sitting")
    assert "sitting" in issue.message


def test_unknown_phase_in_block_sequence() -> None:
    source = MINIMAL.replace("sequence: [down, up, down]", "sequence:\n      - down\n      - top")
    issue = only_error(source)
    assert issue.code == "unknown_phase" and issue.path == "detection.movement.sequence[1]"
    assert (issue.line, issue.column) == (line_of(source, "- top"), 9)


@pytest.mark.parametrize(
    ("remove", "path", "parent"),
    [
        ("name: wave\n", "name", None),
        ('version: "2"\n', "version", None),
        ("    name: wave\n", "detection.movement.name", "movement:"),
        ("  type: repetition\n", "detection.type", "type: repetition"),
        ("    sequence: [down, up, down]\n", "detection.movement.sequence", "movement:"),
        ("            side: right\n            angle_min: 150\n", "", ""),
    ],
)
def test_missing_field_points_at_the_mapping_that_lacks_it(
    remove: str, path: str, parent: str | None
) -> None:
    source = MINIMAL.replace(remove, "", 1)
    definition, errors, _ = validate_movespec_yaml(source)
    assert definition is None
    (issue,) = errors
    assert issue.code == "missing_field"
    if not path:  # the criterion lost angle_min (side is optional)
        assert issue.path == "detection.movement.phases[0].criteria[0].angle_min"
        assert (issue.line, issue.column) == (line_of(source, "- joint: elbow"), 13)
        return
    assert issue.path == path
    if parent is None:
        assert (issue.line, issue.column) == (1, 1)
    elif parent == "movement:":
        assert issue.line == line_of(source, "movement:") + 1  # the mapping starts below its key
        assert issue.column == 5
    else:
        assert issue.line == line_of(MINIMAL, "type: repetition")


def test_missing_detection_and_phases() -> None:
    source = "name: x\nversion: '1'\ndescription: d\n"
    assert [(i.code, i.path) for i in validate_movespec_yaml(source)[1]] == [
        ("missing_field", "detection")
    ]
    source = MINIMAL.split("    phases:")[0] + "    sequence: [a, b]\n"
    _, errors, _ = validate_movespec_yaml(source)
    assert [(i.code, i.path) for i in errors] == [("missing_field", "detection.movement.phases")]


def test_angle_min_greater_than_angle_max() -> None:
    source = MINIMAL.replace("angle_min: 30", "angle_min: 100")
    issue = only_error(source)
    assert issue.code == "invalid_angle_range"
    assert issue.path == "detection.movement.phases[1].criteria[0].angle_min"
    assert (issue.line, issue.column) == (line_of(source, "angle_min: 100"), 24)


@pytest.mark.parametrize(
    ("old", "new"), [("angle_max: 180", "angle_max: 181"), ("angle_min: 30", "angle_min: -5")]
)
def test_angle_outside_0_180(old: str, new: str) -> None:
    source = MINIMAL.replace(old, new)
    issue = only_error(source)
    assert issue.code == "invalid_angle_range"
    assert issue.path is not None and issue.path.endswith(new.split(":")[0])
    assert issue.line == line_of(source, new)


def test_angle_nan_is_out_of_range() -> None:
    assert only_error(MINIMAL.replace("angle_min: 30", "angle_min: .nan")).code == (
        "invalid_angle_range"
    )


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("angle_min: 30", 'angle_min: "30"', "detection.movement.phases[1].criteria[0].angle_min"),
        (
            "angle_max: 90",
            "angle_max: ninety",
            "detection.movement.phases[1].criteria[0].angle_max",
        ),
        ("angle_max: 90", "angle_max: true", "detection.movement.phases[1].criteria[0].angle_max"),
        ("name: wave\n", "name: [wave]\n", "name"),
        ("name: wave\n", "name: 12\n", "name"),
        ("    name: wave", "    name: ~", "detection.movement.name"),
        ("sequence: [down, up, down]", "sequence: down", "detection.movement.sequence"),
        (
            "sequence: [down, up, down]",
            "sequence: [down, [up], down]",
            "detection.movement.sequence[1]",
        ),
        (
            "  type: repetition\n  movement:",
            "  type: repetition\n  movement: 3\n  x:",
            "detection.movement",
        ),
    ],
)
def test_invalid_type(old: str, new: str, path: str) -> None:
    source = MINIMAL.replace(old, new, 1)
    definition, errors, _ = validate_movespec_yaml(source)
    assert definition is None
    assert ("invalid_type", path) in [(i.code, i.path) for i in errors], errors


def test_phases_and_criteria_must_be_non_empty_lists() -> None:
    source = MINIMAL.split("    phases:")[0] + "    phases: []\n    sequence: [a, b]\n"
    assert ("invalid_type", "detection.movement.phases") in [
        (i.code, i.path) for i in validate_movespec_yaml(source)[1]
    ]
    source = """\
name: x
version: "1"
description: d
detection:
  type: repetition
  movement:
    name: x
    phases:
      - {name: a, criteria: []}
      - {name: b, criteria: [{joint: knee, angle_min: 0, angle_max: 10}]}
    sequence: [a, b]
"""
    issue = only_error(source)
    assert (issue.code, issue.path, issue.line) == (
        "invalid_type",
        "detection.movement.phases[0].criteria",
        9,
    )


def test_unknown_joint() -> None:
    source = MINIMAL.replace("joint: elbow", "joint: wrist", 1)
    issue = only_error(source)
    assert issue.code == "unknown_joint"
    assert issue.path == "detection.movement.phases[0].criteria[0].joint"
    assert (issue.line, issue.column) == (line_of(source, "joint: wrist"), 20)


def test_shoulder_is_an_allowed_joint() -> None:
    _, errors, _ = validate_movespec_yaml(MINIMAL.replace("joint: elbow", "joint: shoulder", 1))
    assert errors == []


def test_invalid_side() -> None:
    source = MINIMAL.replace("side: right", "side: middle", 1)
    issue = only_error(source)
    assert issue.code == "invalid_side"
    assert issue.path == "detection.movement.phases[0].criteria[0].side"
    assert (issue.line, issue.column) == (line_of(source, "side: middle"), 19)


def test_unsupported_detection_type() -> None:
    source = MINIMAL.replace("type: repetition", "type: hold")
    issue = only_error(source)
    assert issue.code == "unsupported_detection_type" and issue.path == "detection.type"
    assert (issue.line, issue.column) == (line_of(source, "type: hold"), 9)


def test_duplicate_key() -> None:
    source = MINIMAL.replace("    name: wave\n", "    name: wave\n    name: again\n")
    issue = only_error(source)
    assert issue.code == "duplicate_key" and issue.path == "detection.movement.name"
    assert (issue.line, issue.column) == (line_of(source, "name: again"), 5)


def test_duplicate_phase() -> None:
    source = MINIMAL.replace("- name: up", "- name: down").replace("[down, up, down]", "[down]")
    _, errors, _ = validate_movespec_yaml(source)
    assert codes(errors) == ["duplicate_phase", "invalid_sequence"]
    assert errors[0].path == "detection.movement.phases[1].name"
    assert (errors[0].line, errors[0].column) == (line_of(MINIMAL, "- name: up"), 15)


@pytest.mark.parametrize(
    ("sequence", "path"),
    [
        ("[down]", "detection.movement.sequence"),
        ("[down, up, up, down]", "detection.movement.sequence[2]"),
    ],
)
def test_invalid_sequence(sequence: str, path: str) -> None:
    issue = only_error(MINIMAL.replace("[down, up, down]", sequence))
    assert (issue.code, issue.path) == ("invalid_sequence", path)


def test_several_errors_are_all_reported_in_document_order() -> None:
    source = (
        MINIMAL.replace("joint: elbow", "joint: wrist", 1)
        .replace("angle_min: 30", "angle_min: 95")
        .replace("[down, up, down]", "[down, up, sideways]")
    )
    _, errors, _ = validate_movespec_yaml(source)
    assert codes(errors) == ["unknown_joint", "invalid_angle_range", "unknown_phase"]
    lines = [i.line or 0 for i in errors]
    assert lines == sorted(lines)


# ---- feedback cues ----------------------------------------------------------------------


def test_feedback_unknown_phase_and_level() -> None:
    source = SQUAT_YAML.replace("{on: bottom, level: coaching", "{on: top, level: shouting")
    _, errors, _ = validate_movespec_yaml(source)
    assert [(i.code, i.path) for i in errors] == [
        ("unknown_phase", "detection.feedback[0].on"),
        ("invalid_level", "detection.feedback[0].level"),
    ]
    assert {i.line for i in errors} == {line_of(source, "on: top")}
    assert errors[0].column == column_of(source, "top", after="on: ")


def test_feedback_missing_message_and_not_a_list() -> None:
    source = SQUAT_YAML.replace(", message: Nice squat", "")
    issue = only_error(source)
    assert (issue.code, issue.path) == ("missing_field", "detection.feedback[1].message")
    source = SQUAT_YAML.split("  feedback:")[0] + "  feedback: loud\n"
    issue = only_error(source)
    assert (issue.code, issue.path) == ("invalid_type", "detection.feedback")


def test_feedback_on_completed_is_valid() -> None:
    source = MINIMAL + "  feedback:\n    - {on: completed, level: info, message: Done}\n"
    definition, errors, _ = validate_movespec_yaml(source)
    assert errors == [] and definition is not None
    assert definition.feedback == (FeedbackCue("completed", "info", "Done"),)


# ---- warnings ---------------------------------------------------------------------------


def test_missing_description_warns_but_validates() -> None:
    source = MINIMAL.replace("description: An arm wave\n", "")
    definition, errors, warnings = validate_movespec_yaml(source)
    assert definition is not None and errors == []
    assert [(w.code, w.severity, w.line) for w in warnings] == [
        ("missing_description", "warning", 1)
    ]


def test_unused_phase_warns_at_the_phase() -> None:
    source = MINIMAL.replace(
        "    sequence:",
        "      - name: wiggle\n        criteria:\n"
        "          - {joint: knee, angle_min: 0, angle_max: 10}\n    sequence:",
    )
    definition, errors, warnings = validate_movespec_yaml(source)
    assert definition is not None and errors == []
    (warning,) = warnings
    assert (warning.code, warning.path) == ("unused_phase", "detection.movement.phases[2]")
    assert (warning.line, warning.column) == (line_of(source, "- name: wiggle"), 9)


def test_unknown_field_warns() -> None:
    source = MINIMAL.replace(
        "            side: right\n", "            side: right\n            tempo: 2\n", 1
    )
    definition, errors, warnings = validate_movespec_yaml(source)
    assert definition is not None and errors == []
    (warning,) = warnings
    assert warning.code == "unknown_field"
    assert warning.path == "detection.movement.phases[0].criteria[0].tempo"
    assert warning.line == line_of(source, "tempo: 2")


def test_numeric_version_warns() -> None:
    definition, errors, warnings = validate_movespec_yaml(
        MINIMAL.replace('version: "2"', "version: 2.5")
    )
    assert definition is not None and definition.version == "2.5" and errors == []
    assert [(w.code, w.path, w.line) for w in warnings] == [("version_not_string", "version", 2)]


# ---- wire shape -------------------------------------------------------------------------


def test_issues_encode_as_the_validation_result_schema() -> None:
    source = SQUAT_YAML.replace("[standing, bottom, standing]", "[standing, bottom, sitting]")
    _, errors, warnings = validate_movespec_yaml(source)
    result = ValidationResult(
        ok=not errors,
        target_type="draft",
        target_id="dr_1",
        validated_at="2026-04-04T12:00:00Z",
        errors=errors,
        warnings=warnings,
    )
    obj = msgspec.json.decode(encoder.encode(result))
    assert obj["errors"][0] == {
        "code": "unknown_phase",
        "message": "the sequence names phase 'sitting', which is not defined",
        "severity": "error",
        "path": "detection.movement.sequence[2]",
        "line": errors[0].line,
        "column": errors[0].column,
    }
