"""The records of the emulated Agents API: blueprints, bundles, and the jobs (agent instances,
evals, optimizations and their trials), each rendering its own wire shape (``to_wire``).

The emulator reads the protocol on its own (docs/protocol-notes.md, "Agents API") and shares
no model with the aiolens client. A job's task and pause control live on its record; what
the jobs do is :mod:`aiolens.emulator.agents_jobs`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from aiolens.emulator.agents_engine import BlueprintSpec, FittedAgent

__all__ = [
    "TERMINAL",
    "Blueprint",
    "Bundle",
    "Eval",
    "Instance",
    "Job",
    "Optimization",
    "Trial",
    "new_id",
    "now_iso",
]

TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds (``2026-12-02T10:00:00.123Z``)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def new_id(prefix: str) -> str:
    """A prefixed id (``bnd_3f2a...``)."""
    return f"{prefix}_{secrets.token_hex(10)}"


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
class Job:
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

    def lifecycle(self) -> dict[str, Any]:
        """The wire fields every job ends with: ``error`` and its timestamps."""
        return {
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


@dataclass(slots=True)
class Instance(Job):
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

    def milestone(self, kind: str, message: str, log_message: str) -> None:
        """Record a step of its life (``instance.paused`` …) in its events and its info logs."""
        self.event(kind, message)
        self.log("info", kind, log_message)

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
            **self.lifecycle(),
        }


@dataclass(slots=True)
class Eval(Job):
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
            **self.lifecycle(),
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
class Optimization(Job):
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
            **self.lifecycle(),
        }
