"""What the emulated agents compute: pure, deterministic, no I/O, no asyncio.

The emulated Agents API (docs/protocol-notes.md, "Agents API") runs *blueprints*: an agent
definition with typed ``values``, model slots, a prediction *target* and a
*fitting* (the reference data its model learns from). This module holds the
canonical blueprints and everything they compute; the store keeps records and
the jobs module paces the work. It reuses the Lens emulator's readers and its
nearest-centroid classifier (:mod:`aiolens.emulator.lens_engine`).

Canonical blueprints:

* ``osm`` (operational state monitor): cuts each input into windows of
  ``window_size`` rows and labels each with the nearest state
  (:class:`~aiolens.emulator.lens_engine.TimeseriesStateProcessor`), then
  smooths the labels with a causal majority vote over the last ``smoothing``
  windows. Its fitting is per-state example data: ``n_shot`` files per state,
  or labelled files (a ``state`` column) split into their contiguous
  segments. Without either it uses the built-in three-state reference
  (IDLE / NORMAL / WARNING, the demo's sample recordings).
* ``ad`` (anomaly detector): scores each window by its largest absolute
  z-score against a baseline (the first ``baseline_windows`` windows of the
  input, or labelled files' rows whose ``anomaly`` label is ``0``) and flags
  ``anomaly = "1"`` above ``threshold``.

Model slots are validated and recorded; the emulator has one encoder per
blueprint (the window features are per-column mean and standard deviation).

Scoring: a window's ground truth is the majority label of its rows in the
label column named after the target (``state``, ``anomaly``). Reports give
per-class precision / recall / F1, macro-F1, accuracy and the confusion matrix.

Every problem with values, files or labels raises :class:`AgentError` with a
code the REST layer answers as a 400 (or records as a run's failure).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final

from aiolens.emulator.lens_engine import (
    LensEngineError,
    SensorTable,
    TimeseriesStateProcessor,
    Window,
    parse_csv,
    parse_jsonl,
    table_windows,
)

__all__ = [
    "BLUEPRINTS",
    "AgentError",
    "BlueprintSpec",
    "FileReader",
    "FittedAgent",
    "ValueSpec",
    "classification_report",
    "fit_agent",
    "load_table",
    "metrics_report",
    "objective_value",
    "resolve_values",
    "score_example",
    "search_points",
    "table_from_window",
]

FileReader = Callable[[str], tuple[bytes, str]]
"""Looks a file id up: its bytes and format (``"csv"`` / ``"jsonl"``); raises
:class:`AgentError` ``file_not_found`` when there is no such file."""

BUILTIN_PREFIX: Final = "builtin:"
"""File ids of the reference data shipped with aiolens (``builtin:sensor_idle.csv``)."""


class AgentError(Exception):
    """A request or a file an agent cannot run.

    Attributes:
        code: ``invalid_values``, ``invalid_search_space``, ``file_not_found``,
            ``invalid_input``, ``missing_labels``, ``invalid_objective`` ...
        message: a human-readable explanation.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ValueSpec:
    """One configurable value of a blueprint.

    Attributes:
        type: ``integer``, ``number``, ``string``, ``string_list`` or ``file_map``
            (state name to a list of file ids).
        default: used when the value is not set.
        minimum: the smallest number allowed (numbers only).
        description: what it does.
    """

    type: str
    default: Any = None
    minimum: float | None = None
    description: str = ""

    def check(self, name: str, value: Any) -> Any:
        """``value`` if it fits this spec.

        Raises:
            AgentError: ``invalid_values``.
        """
        if value is None:
            return None
        ok = {
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "string": isinstance(value, str),
            "string_list": isinstance(value, list) and all(isinstance(v, str) for v in value),
            "file_map": isinstance(value, dict)
            and all(
                isinstance(v, list) and all(isinstance(f, str) for f in v) for v in value.values()
            ),
        }[self.type]
        if not ok:
            raise AgentError(
                "invalid_values", f"Value {name!r} must be of type {self.type}: {value!r}"
            )
        if self.minimum is not None and value < self.minimum:
            raise AgentError(
                "invalid_values", f"Value {name!r} must be >= {self.minimum}: {value!r}"
            )
        return value

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "default": self.default}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        out["description"] = self.description
        return out


@dataclass(frozen=True, slots=True)
class BlueprintSpec:
    """A canonical agent definition.

    Attributes:
        key: the blueprint key (``osm``).
        name: display name.
        description: what the agent does.
        kind: the computation (``state_classifier`` or ``anomaly_detector``).
        target: the predicted field and the label column scored against it.
        values: the configurable values.
        models: per slot, the default model.
        allowed_models: per slot, the models it accepts.
        metrics: the metric names evals and optimizations report.
    """

    key: str
    name: str
    description: str
    kind: str
    target: str
    values: Mapping[str, ValueSpec]
    models: Mapping[str, str]
    allowed_models: Mapping[str, tuple[str, ...]]
    metrics: tuple[str, ...] = ("macro_f1", "accuracy")


_WINDOW = ValueSpec("integer", 100, 2, "Rows per window.")
_STEP = ValueSpec("integer", None, 1, "Rows between window starts (default: window_size).")
_COLUMNS = ValueSpec("string_list", None, None, "Data columns (default: every numeric column).")

BLUEPRINTS: Final[tuple[BlueprintSpec, ...]] = (
    BlueprintSpec(
        key="osm",
        name="Operational State Monitor",
        description="Labels each window of a sensor log with the machine's operating state.",
        kind="state_classifier",
        target="state",
        values={
            "window_size": _WINDOW,
            "step_size": _STEP,
            "smoothing": ValueSpec("integer", 1, 1, "Majority vote over the last N windows."),
            "data_columns": _COLUMNS,
            "n_shot": ValueSpec("file_map", None, None, "Example files per state."),
        },
        models={"encoder": "omega-1.0"},
        allowed_models={"encoder": ("omega-1.0", "omega-1.5")},
    ),
    BlueprintSpec(
        key="ad",
        name="Anomaly Detector",
        description="Flags windows whose statistics leave the baseline's range.",
        kind="anomaly_detector",
        target="anomaly",
        values={
            "window_size": _WINDOW,
            "step_size": _STEP,
            "threshold": ValueSpec("number", 4.0, 0, "Largest |z-score| still normal."),
            "baseline_windows": ValueSpec(
                "integer", 3, 1, "Leading windows that set the baseline."
            ),
            "data_columns": _COLUMNS,
        },
        models={"encoder": "omega-1.0"},
        allowed_models={"encoder": ("omega-1.0", "omega-1.5")},
    ),
)

_BUILTIN_N_SHOT: Final = {
    "IDLE": [f"{BUILTIN_PREFIX}sensor_idle.csv"],
    "NORMAL": [f"{BUILTIN_PREFIX}sensor_normal.csv"],
    "WARNING": [f"{BUILTIN_PREFIX}sensor_warning.csv"],
}


def read_builtin(file_id: str) -> bytes:
    """The bytes of a ``builtin:`` reference file.

    Raises:
        AgentError: ``file_not_found``.
    """
    name = file_id[len(BUILTIN_PREFIX) :]
    try:
        return resources.files("aiolens.data").joinpath(name).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise AgentError("file_not_found", f"File not found: {file_id}") from None


# ---- values ------------------------------------------------------------------------------


def resolve_values(spec: BlueprintSpec, *layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The blueprint's defaults overlaid with each layer in turn, checked.

    Raises:
        AgentError: ``invalid_values`` for an unknown name or a wrong type.
    """
    out = {name: value.default for name, value in spec.values.items()}
    for layer in layers:
        for name, value in (layer or {}).items():
            if name not in spec.values:
                known = ", ".join(spec.values)
                raise AgentError(
                    "invalid_values", f"Blueprint {spec.key!r} has no value {name!r} (has {known})"
                )
            out[name] = spec.values[name].check(name, value)
    return out


def resolve_models(spec: BlueprintSpec, *layers: Mapping[str, Any] | None) -> dict[str, str]:
    """Per slot, the model to use: defaults overlaid with each layer.

    Raises:
        AgentError: ``invalid_models`` for an unknown slot or model.
    """
    out = dict(spec.models)
    for layer in layers:
        for slot, model in (layer or {}).items():
            allowed = spec.allowed_models.get(slot)
            if allowed is None:
                raise AgentError("invalid_models", f"Blueprint {spec.key!r} has no slot {slot!r}")
            if model not in allowed:
                raise AgentError(
                    "invalid_models", f"Slot {slot!r} takes one of {list(allowed)}: {model!r}"
                )
            out[slot] = model
    return out


# ---- files -------------------------------------------------------------------------------


def load_table(data: bytes, fmt: str, *, exclude: Sequence[str] = ()) -> SensorTable:
    """Parse a CSV or JSON-lines file; columns in ``exclude`` are not data.

    Raises:
        AgentError: ``invalid_input`` when the file cannot be read.
    """
    parse = parse_jsonl if fmt == "jsonl" else parse_csv
    try:
        table = parse(data)
        if exclude and any(c in table.columns for c in exclude):
            keep = [c for c in table.columns if c not in exclude]
            if not keep:
                raise AgentError("invalid_input", "The file has no data column besides the labels")
            table = parse(data, data_columns=keep)
    except LensEngineError as exc:
        raise AgentError("invalid_input", exc.message) from None
    return table


def _labels(table: SensorTable, data: bytes, fmt: str, column: str) -> list[str]:
    """The label column as strings (numeric labels such as 0/1 included)."""
    if column in table.text:
        return table.text[column]
    if column in table.columns:  # pragma: no cover - excluded by load_table
        return [_label(v) for v in table.values[table.columns.index(column)]]
    numeric = load_table(data, fmt)
    if column in numeric.columns:
        return [_label(v) for v in numeric.values[numeric.columns.index(column)]]
    raise AgentError("missing_labels", f"The file has no label column {column!r}")


def _label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True, slots=True)
class LabelledTable:
    """A parsed input and, when it has them, its per-row labels."""

    table: SensorTable
    labels: list[str] | None


def read_input(
    files: FileReader, file_id: str, target: str, *, need_labels: bool = False
) -> LabelledTable:
    """Read one input file; its label column (named ``target``) is kept apart.

    Raises:
        AgentError: ``file_not_found``, ``invalid_input``, or ``missing_labels``
            when ``need_labels`` and the file has no label column.
    """
    data, fmt = files(file_id)
    table = load_table(data, fmt, exclude=(target,))
    try:
        labels: list[str] | None = _labels(table, data, fmt, target)
    except AgentError:
        if need_labels:
            raise
        labels = None
    return LabelledTable(table, labels)


def _segments(labels: Sequence[str]) -> Iterator[tuple[str, int, int]]:
    """``(label, start, end)`` of each run of equal labels."""
    start = 0
    for index in range(1, len(labels) + 1):
        if index == len(labels) or labels[index] != labels[start]:
            yield labels[start], start, index
            start = index


def _table_csv(table: SensorTable, start: int, end: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    for row in range(start, end):
        writer.writerow([repr(col[row]) for col in table.values])
    return out.getvalue().encode()


# ---- fitting and running -----------------------------------------------------------------


@dataclass(slots=True)
class FittedAgent:
    """A blueprint with its values resolved and its model fitted, ready to predict.

    Attributes:
        spec: the blueprint.
        values: the resolved values.
        models: the model per slot.
        fitting: a description of what it was fitted on (recorded on trials).
    """

    spec: BlueprintSpec
    values: dict[str, Any]
    models: dict[str, str]
    fitting: dict[str, Any]
    _classifier: TimeseriesStateProcessor | None = None
    _baseline: tuple[list[float], list[float]] | None = None
    _columns: list[str] | None = field(default=None)

    @property
    def window_size(self) -> int:
        return int(self.values["window_size"])

    @property
    def step_size(self) -> int:
        return int(self.values["step_size"] or self.values["window_size"])

    def windows(self, table: SensorTable, file_id: str = "") -> Iterator[Window]:
        """The windows of a table (the last one may be shorter: every row is read)."""
        try:
            return table_windows(
                table,
                window_size=self.window_size,
                step_size=self.step_size,
                cut_off_incomplete_window=False,
                file_id=file_id,
            )
        except LensEngineError as exc:
            raise AgentError("invalid_values", exc.message) from None

    def predict(self, windows: Sequence[Window]) -> list[dict[str, Any]]:
        """One prediction per window, in order (smoothed for ``osm``).

        Raises:
            AgentError: ``invalid_input`` when a window lacks a fitted column.
        """
        try:
            if self.spec.kind == "state_classifier":
                return self._classify(windows)
            return self._detect(windows)
        except LensEngineError as exc:
            raise AgentError("invalid_input", exc.message) from None

    def _classify(self, windows: Sequence[Window]) -> list[dict[str, Any]]:
        assert self._classifier is not None
        smoothing = int(self.values.get("smoothing") or 1)
        recent: list[str] = []
        out = []
        for window in windows:
            result = self._classifier.classify(window)
            recent.append(result.state)
            del recent[:-smoothing]
            counts = Counter(recent)
            top = max(counts.values())
            state = result.state if counts[result.state] == top else counts.most_common(1)[0][0]
            out.append(
                {
                    **_window_fields(window),
                    "state": state,
                    "confidence": round(result.confidence, 6),
                }
            )
        return out

    def _detect(self, windows: Sequence[Window]) -> list[dict[str, Any]]:
        columns = self.values.get("data_columns") or (windows[0].columns if windows else [])
        baseline = self._baseline
        if baseline is None:
            lead = windows[: int(self.values["baseline_windows"])]
            baseline = _baseline([_features(w, columns) for w in lead])
        mean, std = baseline
        threshold = float(self.values["threshold"])
        out = []
        for window in windows:
            feats = _features(window, columns)
            score = max(
                (abs(f - m) / s for f, m, s in zip(feats, mean, std, strict=True)), default=0.0
            )
            out.append(
                {
                    **_window_fields(window),
                    "anomaly": "1" if score > threshold else "0",
                    "score": round(score, 6),
                }
            )
        return out


def _window_fields(window: Window) -> dict[str, Any]:
    return {
        "window_index": window.index,
        "read_index": window.read_index,
        "rows": window.rows,
        "sensor_timestamp": window.sensor_timestamp,
    }


def _features(window: Window, columns: Sequence[str]) -> list[float]:
    out: list[float] = []
    for name in columns:
        if name not in window.columns:
            raise AgentError("invalid_input", f"The input has no column {name!r}")
        col = window.values[window.columns.index(name)]
        mean = sum(col) / len(col)
        out += [mean, math.sqrt(sum((x - mean) ** 2 for x in col) / len(col))]
    return out


def _baseline(vectors: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    if not vectors:
        raise AgentError("invalid_input", "No baseline window: the input is too short")
    dims = range(len(vectors[0]))
    mean = [sum(v[d] for v in vectors) / len(vectors) for d in dims]
    std = [
        max(
            math.sqrt(sum((v[d] - mean[d]) ** 2 for v in vectors) / len(vectors)),
            1e-3 + abs(mean[d]) * 0.05,
        )
        for d in dims
    ]
    return mean, std


def fit_agent(
    spec: BlueprintSpec,
    values: dict[str, Any],
    models: dict[str, str],
    files: FileReader,
    *,
    training_examples: Sequence[str] = (),
) -> FittedAgent:
    """Fit a blueprint's model.

    ``osm`` learns its centroids from ``values["n_shot"]`` files, else from the
    labelled segments of ``training_examples``, else from the built-in
    reference. ``ad`` takes its baseline from the ``anomaly == "0"`` rows of
    ``training_examples``, else from each input's leading windows.

    Raises:
        AgentError: a file is missing or unreadable, or a training file has
            no label column.
    """
    agent = FittedAgent(spec, values, models, {})
    columns = values.get("data_columns")
    if spec.kind == "state_classifier":
        examples: dict[str, list[bytes]] = {}
        if values.get("n_shot"):
            for state, ids in values["n_shot"].items():
                examples[state] = [_as_csv(files, file_id, spec.target) for file_id in ids]
            agent.fitting = {"n_shot": values["n_shot"]}
        elif training_examples:
            for file_id in training_examples:
                labelled = read_input(files, file_id, spec.target, need_labels=True)
                assert labelled.labels is not None
                for state, start, end in _segments(labelled.labels):
                    examples.setdefault(state, []).append(_table_csv(labelled.table, start, end))
            agent.fitting = {"training_examples": list(training_examples)}
        else:
            for state, ids in _BUILTIN_N_SHOT.items():
                examples[state] = [read_builtin(file_id) for file_id in ids]
            agent.fitting = {"n_shot": _BUILTIN_N_SHOT}
        try:
            agent._classifier = TimeseriesStateProcessor(
                examples,
                data_columns=columns,
                window_size=agent.window_size,
                step_size=agent.step_size,
            )
        except LensEngineError as exc:
            raise AgentError("invalid_input", exc.message) from None
    elif training_examples:
        vectors: list[list[float]] = []
        for file_id in training_examples:
            labelled = read_input(files, file_id, spec.target, need_labels=True)
            assert labelled.labels is not None
            cols = columns or labelled.table.columns
            for window in agent.windows(labelled.table, file_id):
                rows = labelled.labels[window.read_index : window.read_index + window.rows]
                if _majority(rows) == "0":
                    vectors.append(_features(window, cols))
        agent._baseline = _baseline(vectors)
        agent.fitting = {"training_examples": list(training_examples)}
    else:
        agent.fitting = {"baseline": "leading_windows"}
    return agent


def _as_csv(files: FileReader, file_id: str, target: str) -> bytes:
    if file_id.startswith(BUILTIN_PREFIX):
        return read_builtin(file_id)
    labelled = read_input(files, file_id, target)
    return _table_csv(labelled.table, 0, labelled.table.total_rows)


def table_from_window(payload: Mapping[str, Any]) -> SensorTable:
    """A serving query's window as a table.

    Accepts the columnar form ``{"columns": [...], "rows": [[...], ...]}`` and
    the record form ``{"data": [{"ax": 0.1, ...}, ...]}``.

    Raises:
        AgentError: ``invalid_input`` for any other shape or non-numeric cells.
    """
    columns = payload.get("columns")
    rows = payload.get("rows")
    if columns is None and isinstance(payload.get("data"), list) and payload["data"]:
        records = payload["data"]
        if not all(isinstance(r, dict) for r in records):
            raise AgentError("invalid_input", "data must be a list of objects")
        columns = list(records[0])
        rows = [[r.get(c) for c in columns] for r in records]
    if not isinstance(columns, list) or not isinstance(rows, list) or not rows:
        raise AgentError(
            "invalid_input", "A window needs columns and rows (or data: a list of records)"
        )
    values: list[list[float]] = [[] for _ in columns]
    for number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise AgentError("invalid_input", f"Row {number} does not match the columns")
        for c, cell in enumerate(row):
            if isinstance(cell, bool) or not isinstance(cell, int | float):
                raise AgentError("invalid_input", f"Row {number} has a non-numeric cell: {cell!r}")
            values[c].append(float(cell))
    names = [str(c) for c in columns]
    keep = [i for i, n in enumerate(names) if n.lower() not in ("timestamp", "time", "t", "ts")]
    return SensorTable([names[i] for i in keep], [values[i] for i in keep], len(rows), None, {})


# ---- scoring -----------------------------------------------------------------------------


def _majority(labels: Sequence[str]) -> str:
    counts = Counter(labels)
    top = max(counts.values())
    return next(label for label in labels if counts[label] == top)  # ties: the earliest


def classification_report(
    truth: Sequence[str], predicted: Sequence[str], class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Per-class precision / recall / F1, macro-F1, accuracy and confusion matrix.

    ``confusion_matrix[i][j]`` counts windows of true class ``i`` predicted as
    ``j`` (classes in ``class_names`` order: sorted labels seen in either list).
    A class with no true and no predicted window is left out of the macro mean.
    """
    names = list(class_names or sorted(set(truth) | set(predicted)))
    index = {name: i for i, name in enumerate(names)}
    matrix = [[0] * len(names) for _ in names]
    for t, p in zip(truth, predicted, strict=True):
        matrix[index[t]][index[p]] += 1
    per_class: dict[str, dict[str, float]] = {}
    f1s = []
    for i, name in enumerate(names):
        tp = matrix[i][i]
        support = sum(matrix[i])
        predicted_n = sum(row[i] for row in matrix)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f1": round(f1, 6),
            "support": support,
        }
        if support or predicted_n:
            f1s.append(f1)
    total = len(truth)
    return {
        "class_names": names,
        "macro_f1": round(sum(f1s) / len(f1s), 6) if f1s else 0.0,
        "accuracy": round(sum(matrix[i][i] for i in range(len(names))) / total, 6)
        if total
        else 0.0,
        "per_class": per_class,
        "confusion_matrix": matrix,
        "num_windows": total,
    }


@dataclass(slots=True)
class ExampleScore:
    """What an eval measured on one example."""

    file_id: str
    truth: list[str]
    predicted: list[str]
    predictions: list[dict[str, Any]]


def score_example(
    agent: FittedAgent, files: FileReader, file_id: str, labels_id: str | None = None
) -> ExampleScore:
    """Predict every window of a labelled example and pair it with its truth.

    The labels are the input's own label column, or ``labels_id``'s (a file
    with one label per input row) when given.

    Raises:
        AgentError: a file is missing or unreadable, there is no label column,
            or the label file's length differs from the input's.
    """
    target = agent.spec.target
    labelled = read_input(files, file_id, target, need_labels=labels_id is None)
    labels = labelled.labels
    if labels_id is not None:
        labels = read_input(files, labels_id, target, need_labels=True).labels
        assert labels is not None
        if len(labels) != labelled.table.total_rows:
            raise AgentError(
                "missing_labels",
                f"{labels_id} has {len(labels)} labels for {labelled.table.total_rows} rows",
            )
    assert labels is not None
    windows = list(agent.windows(labelled.table, file_id))
    predictions = agent.predict(windows)
    truth = [_majority(labels[w.read_index : w.read_index + w.rows]) for w in windows]
    return ExampleScore(file_id, truth, [str(p[target]) for p in predictions], predictions)


def metrics_report(
    agent: FittedAgent, scores: Sequence[ExampleScore], primary: str | None
) -> dict[str, Any]:
    """The eval's report over all examples: ``{primary, primary_value, targets}``.

    Raises:
        AgentError: ``invalid_objective`` for a primary metric the blueprint lacks.
    """
    target = agent.spec.target
    report = classification_report(
        [t for s in scores for t in s.truth], [p for s in scores for p in s.predicted]
    )
    primary = primary or f"{target}.macro_f1"
    return {
        "primary": primary,
        "primary_value": objective_value(agent.spec, {target: report}, primary),
        "targets": {target: report},
    }


def objective_value(spec: BlueprintSpec, targets: Mapping[str, Any], objective: str) -> float:
    """The value of ``objective`` (``macro_f1`` or ``state.macro_f1``) in a report.

    Raises:
        AgentError: ``invalid_objective``.
    """
    target, _, metric = objective.rpartition(".")
    target = target or spec.target
    if target != spec.target or metric not in spec.metrics:
        options = [f"{spec.target}.{m}" for m in spec.metrics]
        raise AgentError(
            "invalid_objective", f"Unknown metric {objective!r} for {spec.key!r}: one of {options}"
        )
    return float(targets[target][metric])


def search_points(
    spec: BlueprintSpec, search_space: Mapping[str, Any] | None, max_trials: int
) -> list[dict[str, Any]]:
    """The values of each trial: the categorical grid in order, at most ``max_trials``.

    ``search_space`` is ``{"parameters": {name: {"kind": "value", "spec":
    {"type": "categorical", "values": [...]}}}}``. The grid is walked with the
    last parameter varying fastest; an empty space gives one trial of defaults.

    Raises:
        AgentError: ``invalid_search_space`` for another kind or type, an
            unknown value name, or a candidate of the wrong type.
    """
    params = (search_space or {}).get("parameters") or {}
    if not isinstance(params, dict):
        raise AgentError("invalid_search_space", "search_space.parameters must be an object")
    names: list[str] = []
    choices: list[list[Any]] = []
    for name, entry in params.items():
        if not isinstance(entry, dict) or entry.get("kind", "value") != "value":
            raise AgentError("invalid_search_space", f"{name}: only kind 'value' is searchable")
        rule = entry.get("spec") or {}
        if rule.get("type") != "categorical" or not rule.get("values"):
            raise AgentError(
                "invalid_search_space", f"{name}: spec must be categorical with values"
            )
        if name not in spec.values:
            raise AgentError(
                "invalid_search_space", f"Blueprint {spec.key!r} has no value {name!r}"
            )
        try:
            candidates = [spec.values[name].check(name, v) for v in rule["values"]]
        except AgentError as exc:
            raise AgentError("invalid_search_space", exc.message) from None
        names.append(name)
        choices.append(candidates)
    grid = itertools.product(*choices)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.islice(grid, max_trials)]
