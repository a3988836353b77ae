"""What the emulated agents compute: fitting, predicting and scoring; pure, no I/O, no asyncio.

The blueprints and their values are :mod:`aiolens.emulator.agents_blueprints`,
the input files :mod:`aiolens.emulator.agents_inputs` (their names are
re-exported here); the store keeps records and the jobs module paces the work.
It reuses the Lens emulator's nearest-centroid classifier
(:mod:`aiolens.emulator.lens_engine`).

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

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiolens.emulator.agents_blueprints import (
    BLUEPRINTS,
    BUILTIN_N_SHOT,
    BUILTIN_PREFIX,
    AgentError,
    BlueprintSpec,
    FileReader,
    ValueSpec,
    read_builtin,
    resolve_models,
    resolve_values,
    search_points,
)
from aiolens.emulator.agents_inputs import (
    load_table,
    majority,
    read_input,
    segments,
    table_csv,
    table_from_window,
)
from aiolens.emulator.lens_engine import (
    LensEngineError,
    SensorTable,
    TimeseriesStateProcessor,
    Window,
    table_windows,
)

__all__ = [
    "BLUEPRINTS",
    "AgentError",
    "BlueprintSpec",
    "ExampleScore",
    "FileReader",
    "FittedAgent",
    "ValueSpec",
    "classification_report",
    "fit_agent",
    "load_table",
    "metrics_report",
    "objective_value",
    "read_input",
    "resolve_models",
    "resolve_values",
    "score_example",
    "search_points",
    "table_from_window",
]


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
                for state, start, end in segments(labelled.labels):
                    examples.setdefault(state, []).append(table_csv(labelled.table, start, end))
            agent.fitting = {"training_examples": list(training_examples)}
        else:
            for state, ids in BUILTIN_N_SHOT.items():
                examples[state] = [read_builtin(file_id) for file_id in ids]
            agent.fitting = {"n_shot": BUILTIN_N_SHOT}
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
                if majority(rows) == "0":
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
    return table_csv(labelled.table, 0, labelled.table.total_rows)


# ---- scoring -----------------------------------------------------------------------------


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
    truth = [majority(labels[w.read_index : w.read_index + w.rows]) for w in windows]
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
