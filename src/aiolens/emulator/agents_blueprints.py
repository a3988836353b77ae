"""The emulated agents' blueprints, their values and model slots, and the grid of trial values.

The emulated Agents API (docs/protocol-notes.md, "Agents API") runs *blueprints*: an agent
definition with typed ``values``, model slots, a prediction *target* and a
*fitting* (the reference data its model learns from). This module holds the
canonical blueprints (``osm``, ``ad``: what they compute is
:mod:`aiolens.emulator.agents_engine`), the checks of values and models against
them, the built-in reference files and an optimization's grid of trial values.
Pure: no I/O but reading the packaged reference files, no asyncio.

Every problem with values raises :class:`AgentError` with a code the REST layer
answers as a 400 (or records as a run's failure).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

__all__ = [
    "BLUEPRINTS",
    "BUILTIN_N_SHOT",
    "BUILTIN_PREFIX",
    "AgentError",
    "BlueprintSpec",
    "FileReader",
    "ValueSpec",
    "read_builtin",
    "resolve_models",
    "resolve_values",
    "search_points",
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

BUILTIN_N_SHOT: Final = {
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


# ---- optimization search -----------------------------------------------------------------


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
