"""The emulated agents' computations (pure) and the emulator's independence from the client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from aiolens.emulator.agents_engine import (
    BLUEPRINTS,
    AgentError,
    classification_report,
    fit_agent,
    resolve_models,
    resolve_values,
    score_example,
    search_points,
    table_from_window,
)

OSM = next(spec for spec in BLUEPRINTS if spec.key == "osm")
AD = next(spec for spec in BLUEPRINTS if spec.key == "ad")
EMULATOR = Path(__file__).parents[2] / "src" / "aiolens" / "emulator"


def test_classification_report_by_hand() -> None:
    report = classification_report(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    # a: P=1, R=1/2, F1=2/3; b: P=2/3, R=1, F1=4/5.
    assert report["per_class"]["a"]["f1"] == pytest.approx(2 / 3, abs=1e-6)
    assert report["per_class"]["b"]["f1"] == pytest.approx(0.8, abs=1e-6)
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2, abs=1e-6)
    assert report["accuracy"] == 0.75
    assert report["confusion_matrix"] == [[1, 1], [0, 2]]


def test_a_class_neither_true_nor_predicted_is_left_out_of_the_macro_mean() -> None:
    report = classification_report(["a", "b"], ["a", "b"], class_names=["a", "b", "c"])
    assert report["macro_f1"] == 1.0 and report["per_class"]["c"]["support"] == 0


def test_search_points_walk_the_grid_within_the_budget() -> None:
    space = {
        "parameters": {
            "window_size": {"kind": "value", "spec": {"type": "categorical", "values": [50, 100]}},
            "smoothing": {"kind": "value", "spec": {"type": "categorical", "values": [1, 3, 5]}},
        }
    }
    points = search_points(OSM, space, 4)
    assert points == [
        {"window_size": 50, "smoothing": 1},
        {"window_size": 50, "smoothing": 3},
        {"window_size": 50, "smoothing": 5},
        {"window_size": 100, "smoothing": 1},
    ]
    assert search_points(OSM, None, 3) == [{}]


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"parameters": {"nope": {"spec": {"type": "categorical", "values": [1]}}}}, "no value"),
        ({"parameters": {"smoothing": {"spec": {"type": "uniform", "low": 1}}}}, "categorical"),
        ({"parameters": {"smoothing": {"kind": "model", "spec": {}}}}, "kind 'value'"),
        (
            {"parameters": {"smoothing": {"spec": {"type": "categorical", "values": ["x"]}}}},
            "integer",
        ),
    ],
)
def test_bad_search_spaces(space: dict[str, object], match: str) -> None:
    with pytest.raises(AgentError, match=match):
        search_points(OSM, space, 2)


def test_values_and_models_are_checked() -> None:
    assert resolve_values(OSM, {"window_size": 10})["smoothing"] == 1
    with pytest.raises(AgentError, match="integer"):
        resolve_values(OSM, {"window_size": "10"})
    with pytest.raises(AgentError, match=">= 2"):
        resolve_values(OSM, {"window_size": 1})
    assert resolve_models(OSM, {"encoder": "omega-1.5"}) == {"encoder": "omega-1.5"}
    with pytest.raises(AgentError, match="no slot"):
        resolve_models(OSM, {"vision": "omega-1.5"})


def _files(data: dict[str, bytes]):  # type: ignore[no-untyped-def]
    def read(file_id: str) -> tuple[bytes, str]:
        if file_id not in data:
            raise AgentError("file_not_found", file_id)
        return data[file_id], "jsonl" if file_id.endswith(".jsonl") else "csv"

    return read


def _square_wave(levels: list[tuple[str, float]], rows: int) -> bytes:
    lines = ["t,x,y,state"]
    for block, (label, amplitude) in enumerate(levels):
        for r in range(rows):
            i = block * rows + r
            lines.append(f"{i},{amplitude * (1 if r % 2 else -1)},{amplitude / 2},{label}")
    return ("\n".join(lines) + "\n").encode()


def test_osm_fits_on_labelled_segments_and_scores_jsonl_too() -> None:
    train = _square_wave([("low", 0.1), ("high", 5.0), ("low", 0.1)], 40)
    jsonl = b"\n".join(
        b'{"t": %d, "x": %s, "y": %s, "state": "%s"}'
        % (i, str(a * (1 if i % 2 else -1)).encode(), str(a / 2).encode(), s.encode())
        for i, (s, a) in enumerate([("high", 5.0)] * 20 + [("low", 0.1)] * 20)
    )
    files = _files({"train.csv": train, "test.jsonl": jsonl})
    values = resolve_values(OSM, {"window_size": 10})
    agent = fit_agent(OSM, values, {}, files, training_examples=["train.csv"])
    assert agent.fitting == {"training_examples": ["train.csv"]}
    score = score_example(agent, files, "test.jsonl")
    assert score.truth == ["high", "high", "low", "low"] and score.predicted == score.truth


def test_ad_flags_windows_that_leave_the_baseline() -> None:
    data = _square_wave([("0", 0.1), ("1", 6.0)], 30)
    files = _files({"d.csv": data.replace(b"state", b"anomaly")})
    agent = fit_agent(AD, resolve_values(AD, {"window_size": 10}), {}, files)
    score = score_example(agent, files, "d.csv")
    assert score.truth == ["0"] * 3 + ["1"] * 3 and score.predicted == score.truth


def test_a_serving_window_reads_columns_or_records() -> None:
    table = table_from_window({"columns": ["timestamp", "x"], "rows": [[0, 1.0], [1, 2.0]]})
    assert table.columns == ["x"] and table.values == [[1.0, 2.0]]
    table = table_from_window({"data": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]})
    assert table.columns == ["x", "y"] and table.total_rows == 2
    with pytest.raises(AgentError, match="columns and rows"):
        table_from_window({"rows": []})


def test_the_agents_emulator_does_not_import_client_code() -> None:
    # Two independent readings of the protocol: the emulator has its own wire shapes.
    forbidden = ("aiolens.archetype", "aiolens.kynasmith", "aiolens._transport")
    for path in sorted(EMULATOR.glob("agents_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
