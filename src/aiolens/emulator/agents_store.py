"""In-memory state of the emulated Agents API: blueprints, bundles, instances, evals,
optimizations and their trials (docs/protocol-notes.md, "Agents API"), and cursor paging over them.

Records render their own wire shape (``to_wire``); the emulator reads the
protocol on its own and shares no model with the aiolens client. Uploaded
files live in the Lens emulator's file store (one org, one file namespace):
agents read their inputs from it and write their result files into it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import yaml

from aiolens.emulator._web import ServiceError
from aiolens.emulator.agents_engine import (
    BLUEPRINTS,
    AgentError,
    BlueprintSpec,
    FittedAgent,
)
from aiolens.emulator.lens_store import LensStore

__all__ = [
    "TERMINAL",
    "AgentsStore",
    "Blueprint",
    "Bundle",
    "Eval",
    "Instance",
    "Optimization",
    "Trial",
    "page",
]

TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000

T = TypeVar("T")


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds (``2026-12-02T10:00:00.123Z``)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def new_id(prefix: str) -> str:
    """A prefixed id (``bnd_3f2a...``)."""
    return f"{prefix}_{secrets.token_hex(10)}"


def page(
    items: Sequence[T],
    id_of: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
    query: Mapping[str, str],
) -> dict[str, Any]:
    """One cursor page of ``items`` (already newest first) for a request's query.

    ``limit`` (default 100, at most 1000); ``after=<id>`` starts after that
    item, ``before=<id>`` ends before it (not both). ``next_cursor`` is the
    page's last id when more follow; ``prev_cursor`` its first id when items
    precede it.

    Raises:
        ServiceError: 400 for a bad ``limit``, both cursors, or an unknown cursor.
    """
    raw_limit = query.get("limit")
    try:
        limit = DEFAULT_LIMIT if raw_limit is None else int(raw_limit)
    except ValueError:
        raise ServiceError(
            400, "invalid_parameter", f"limit must be an integer: {raw_limit!r}"
        ) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ServiceError(400, "invalid_parameter", f"limit must be 1..{MAX_LIMIT}: {limit}")
    after, before = query.get("after"), query.get("before")
    if after and before:
        raise ServiceError(400, "invalid_parameter", "Pass after or before, not both")
    ids = [id_of(item) for item in items]

    def position(cursor: str) -> int:
        try:
            return ids.index(cursor)
        except ValueError:
            raise ServiceError(400, "invalid_cursor", f"Unknown cursor: {cursor}") from None

    if before:
        end = position(before)
        start = max(0, end - limit)
    else:
        start = position(after) + 1 if after else 0
        end = min(len(items), start + limit)
    chunk = items[start:end]
    has_more = end < len(items)
    return {
        "data": [render(item) for item in chunk],
        "has_more": has_more,
        "next_cursor": ids[end - 1] if has_more and chunk else None,
        "prev_cursor": ids[start] if start > 0 and chunk else None,
    }


@dataclass(slots=True)
class Blueprint:
    """A blueprint version: a spec with its own value defaults and fitting."""

    id: str
    spec: BlueprintSpec
    key: str
    version: int
    name: str
    description: str
    owner: str = "platform"
    values: dict[str, Any] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    training_examples: list[str] = field(default_factory=list)
    source: dict[str, Any] | None = None
    created_at: str = field(default_factory=now_iso)

    def definition(self) -> dict[str, Any]:
        """The agent definition (what ``?yaml=true`` renders)."""
        return {
            "blueprint_key": self.key,
            "version": self.version,
            "name": self.name,
            "kind": self.spec.kind,
            "target": self.spec.target,
            "models": {**self.spec.models, **self.models},
            "values": {
                name: {**spec.to_wire(), "default": self.values.get(name, spec.default)}
                for name, spec in self.spec.values.items()
            },
            "metrics": [f"{self.spec.target}.{m}" for m in self.spec.metrics],
            "fitting": {"training_examples": self.training_examples}
            if self.training_examples
            else None,
        }

    def to_wire(self, include_yaml: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "blueprint",
            "blueprint_key": self.key,
            "version": self.version,
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "created_at": self.created_at,
            "source": self.source,
            "definition": self.definition(),
        }
        if include_yaml:
            body["yaml"] = yaml.safe_dump(self.definition(), sort_keys=False)
        return body


@dataclass(slots=True)
class Bundle:
    """A blueprint pinned with values, models and artifacts."""

    id: str
    name: str
    description: str
    blueprint: Blueprint
    models: dict[str, str]
    values: dict[str, Any]
    artifacts: dict[str, Any]
    owner: str = "org"
    created_at: str = field(default_factory=now_iso)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "bundle",
            "name": self.name,
            "description": self.description,
            "blueprint_id": self.blueprint.id,
            "blueprint_key": self.blueprint.key,
            "status": "ready",
            "owner": self.owner,
            "models": self.models,
            "values": self.values,
            "artifacts": self.artifacts,
            "created_at": self.created_at,
        }


@dataclass(slots=True)
class _Job:
    """What every long-running record shares: status, timing, its task, pause control."""

    status: str = "pending"
    created_at: str = field(default_factory=now_iso)
    started_at: str | None = None
    finished_at: str | None = None
    error: dict[str, str] | None = None
    task: asyncio.Task[None] | None = None
    resumed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.resumed.set()

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(slots=True)
class Instance(_Job):
    """An agent instance: one run of a bundle (batch) or a serving deployment."""

    id: str = ""
    bundle: Bundle | None = None
    mode: str = "batch"
    sources: list[dict[str, Any]] = field(default_factory=list)
    sink: dict[str, Any] | None = None
    windows_done: int = 0
    inputs_done: int = 0
    queries: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    agent: FittedAgent | None = None

    def event(self, kind: str, message: str, **data: Any) -> None:
        self.events.append(
            {
                "id": new_id("evt"),
                "type": kind,
                "status": self.status,
                "message": message,
                "created_at": now_iso(),
                "data": data,
            }
        )

    def log(self, level: str, event_type: str, message: str) -> None:
        self.logs.append(
            {
                "id": new_id("log"),
                "created_at": now_iso(),
                "level": level,
                "event_type": event_type,
                "message": message,
            }
        )

    def to_wire(self) -> dict[str, Any]:
        assert self.bundle is not None
        return {
            "id": self.id,
            "object": "agent_instance",
            "bundle_id": self.bundle.id,
            "blueprint_id": self.bundle.blueprint.id,
            "name": self.bundle.name,
            "mode": self.mode,
            "status": self.status,
            "connectors": {"source": self.sources, "sink": self.sink},
            "progress": {
                "inputs_total": len(self.sources),
                "inputs_completed": self.inputs_done,
                "windows_processed": self.windows_done,
                "queries": self.queries,
            },
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


@dataclass(slots=True)
class Eval(_Job):
    """An evaluation of a blueprint on labelled examples."""

    id: str = ""
    name: str = ""
    blueprint: Blueprint | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    primary: str | None = None
    targets: dict[str, Any] | None = None
    emit_predictions: bool = False
    results: list[dict[str, Any]] = field(default_factory=list)
    """Per example, what was measured (in the order given)."""
    metrics_report: dict[str, Any] | None = None
    produced_files: list[str] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        assert self.blueprint is not None
        return {
            "id": self.id,
            "object": "eval",
            "name": self.name,
            "blueprint_id": self.blueprint.id,
            "status": self.status,
            "primary": self.primary,
            "targets": self.targets,
            "num_examples": len(self.examples),
            "num_examples_completed": len(self.results),
            "metrics_report": self.metrics_report,
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


@dataclass(slots=True)
class Trial:
    """One trial of an optimization: sampled values, fitted, scored."""

    id: str
    optimization_id: str
    index: int
    values: dict[str, Any]
    status: str = "pending"
    fitting: dict[str, Any] | None = None
    models: dict[str, str] = field(default_factory=dict)
    metrics_report: dict[str, Any] | None = None
    objective_value: float | None = None
    feasible: bool | None = None
    error: dict[str, str] | None = None
    created_at: str = field(default_factory=now_iso)
    finished_at: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "trial",
            "optimization_id": self.optimization_id,
            "index": self.index,
            "status": self.status,
            "trial_values": {"values": self.values, "models": self.models, "fitting": self.fitting},
            "metrics_report": self.metrics_report,
            "objective_value": self.objective_value,
            "feasible": self.feasible,
            "error": self.error,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }


@dataclass(slots=True)
class Optimization(_Job):
    """A search over a blueprint's values."""

    id: str = ""
    name: str = ""
    blueprint: Blueprint | None = None
    objective: str = ""
    max_trials: int = 1
    validation_examples: list[dict[str, Any]] = field(default_factory=list)
    training_examples: list[dict[str, Any]] = field(default_factory=list)
    calibration_examples: list[dict[str, Any]] = field(default_factory=list)
    search_space: dict[str, Any] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, Any] | None = None
    trials: list[Trial] = field(default_factory=list)

    def best(self) -> Trial | None:
        done = [t for t in self.trials if t.status == "completed" and t.feasible]
        return max(done, key=lambda t: (t.objective_value or 0.0, -t.index), default=None)

    def to_wire(self) -> dict[str, Any]:
        assert self.blueprint is not None
        progress = dict.fromkeys(("pending", "running", "completed", "failed", "cancelled"), 0)
        for trial in self.trials:
            progress[trial.status] += 1
        best = self.best()
        return {
            "id": self.id,
            "object": "optimization",
            "name": self.name,
            "blueprint_id": self.blueprint.id,
            "objective": self.objective,
            "status": self.status,
            "budget": {"max_trials": self.max_trials},
            "search_space": self.search_space,
            "overrides": self.overrides,
            "constraints": self.constraints,
            "progress": progress,
            "best_trial": best.to_wire() if best else None,
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


@dataclass
class AgentsStore:
    """Everything the emulated Agents API remembers.

    Args:
        lens: the Lens emulator's state: the API key and the file store.
        step_interval: seconds an instance spends per window (and an eval or a
            trial per example): modelled processing time, so that runs can be
            watched, paused and cancelled.
    """

    lens: LensStore
    step_interval: float = 0.002
    blueprints: dict[str, Blueprint] = field(default_factory=dict)
    bundles: dict[str, Bundle] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    evals: dict[str, Eval] = field(default_factory=dict)
    optimizations: dict[str, Optimization] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for spec in BLUEPRINTS:
            if spec.key == "osm":  # an older version with wider windows, for versions()
                self.add_blueprint(spec, version=1, values={"window_size": 300})
                self.add_blueprint(spec, version=2)
            else:
                self.add_blueprint(spec, version=1)
        osm = self.blueprint("osm")
        quick = Bundle(
            new_id("bnd"),
            "OSM Quick Start (Demo Three State)",
            "The built-in IDLE / NORMAL / WARNING reference, ready to run.",
            osm,
            {},
            {},
            {},
            owner="platform",
        )
        self.bundles[quick.id] = quick

    # ---- lookups ----

    def add_blueprint(
        self,
        spec: BlueprintSpec,
        *,
        version: int,
        key: str | None = None,
        name: str | None = None,
        description: str | None = None,
        owner: str = "platform",
        values: dict[str, Any] | None = None,
        models: dict[str, str] | None = None,
        training_examples: list[str] | None = None,
        source: dict[str, Any] | None = None,
    ) -> Blueprint:
        record = Blueprint(
            new_id("blp"),
            spec,
            key or spec.key,
            version,
            name or spec.name,
            spec.description if description is None else description,
            owner,
            dict(values or {}),
            dict(models or {}),
            list(training_examples or []),
            source,
        )
        self.blueprints[record.id] = record
        return record

    def blueprint(self, reference: str) -> Blueprint:
        """A blueprint by id, or the latest version of a key.

        Raises:
            ServiceError: 404.
        """
        found = self.blueprints.get(reference)
        if found is None:
            versions = self.versions(reference)
            found = versions[0] if versions else None
        if found is None:
            raise ServiceError(404, "not_found", f"Blueprint not found: {reference}")
        return found

    def versions(self, key: str) -> list[Blueprint]:
        """Every version of a key, newest first."""
        matches = [b for b in self.blueprints.values() if b.key == key]
        return sorted(matches, key=lambda b: b.version, reverse=True)

    def _get(self, table: Mapping[str, T], kind: str, record_id: str) -> T:
        try:
            return table[record_id]
        except KeyError:
            raise ServiceError(404, "not_found", f"{kind} not found: {record_id}") from None

    def bundle(self, bundle_id: str) -> Bundle:
        return self._get(self.bundles, "Bundle", bundle_id)

    def instance(self, instance_id: str) -> Instance:
        return self._get(self.instances, "Agent instance", instance_id)

    def eval(self, eval_id: str) -> Eval:
        return self._get(self.evals, "Eval", eval_id)

    def optimization(self, optimization_id: str) -> Optimization:
        return self._get(self.optimizations, "Optimization", optimization_id)

    # ---- files ----

    def read_file(self, file_id: str) -> tuple[bytes, str]:
        """An uploaded file's bytes and format (``jsonl`` by name, else ``csv``).

        Raises:
            AgentError: ``file_not_found``.
        """
        record = self.lens.files.get(file_id)
        if record is None:
            raise AgentError("file_not_found", f"File not found: {file_id}")
        return record.data, "jsonl" if file_id.lower().endswith(".jsonl") else "csv"

    def write_file(self, file_id: str, data: bytes) -> None:
        """Store a result file in the org's files (replacing one of that name)."""
        self.lens.add_file(file_id, data, "text/plain")


def newest_first(records: Mapping[str, T]) -> list[T]:
    """A table's records, newest first (tables keep insertion order)."""
    return list(records.values())[::-1]
