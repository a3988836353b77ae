"""msgspec models of the Agents API's bodies (docs/protocol-notes.md, "Agents API").

Unknown fields are ignored and nearly every field is optional, so new server
fields, and fields this reading of the protocol does not know, never break a
client. Statuses are normalised: the older ``canceled`` spelling reads as
``cancelled`` (:class:`AgentStatus`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

import msgspec

__all__ = [
    "TERMINAL_STATUSES",
    "AgentStatus",
    "Blueprint",
    "Bundle",
    "DataRef",
    "Eval",
    "EvalExample",
    "Instance",
    "InstanceEvent",
    "LogEntry",
    "Node",
    "NodeRegistry",
    "Optimization",
    "QueryResult",
    "ResultRef",
    "Trial",
    "data_ref",
    "example",
]


class AgentStatus(enum.StrEnum):
    """The status of an instance, an eval, an optimization or a trial."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, raw: str | None) -> AgentStatus:
        """Read any spelling (``canceled`` too, any case); unknown values give ``UNKNOWN``."""
        value = (raw or "").strip().lower()
        if value == "canceled":
            return cls.CANCELLED
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN

    @property
    def terminal(self) -> bool:
        """Whether the record will not change state again."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES: Final = frozenset(
    {AgentStatus.COMPLETED, AgentStatus.FAILED, AgentStatus.CANCELLED}
)


def _normalise(raw: str) -> str:
    return "cancelled" if raw.lower() == "canceled" else raw


class _Status:
    """``status`` normalised on decode, plus :attr:`state` and :attr:`terminal`."""

    status: str

    @property
    def state(self) -> AgentStatus:
        """The status as an :class:`AgentStatus`."""
        return AgentStatus.parse(self.status)

    @property
    def terminal(self) -> bool:
        """Whether it is ``completed``, ``failed`` or ``cancelled`` (either spelling)."""
        return self.state.terminal


class DataRef(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A reference to data: ``{type: "file", id, format?}``."""

    id: str
    type: str = "file"
    format: str | None = None


def data_ref(ref: str | DataRef | Mapping[str, Any]) -> dict[str, Any]:
    """The wire form of a data ref; a bare file id is shorthand for ``{type: "file", id}``.

    Raises:
        ValueError: an empty id, or a mapping without a string ``id``.
    """
    if isinstance(ref, str):
        if not ref:
            raise ValueError("A file id cannot be empty")
        return {"type": "file", "id": ref}
    if isinstance(ref, DataRef):
        return msgspec.to_builtins(ref)  # type: ignore[no-any-return]
    if not isinstance(ref, Mapping) or not isinstance(ref.get("id"), str) or not ref["id"]:
        raise ValueError(f"A data ref needs a non-empty string id: {ref!r}")
    return {"type": "file", **ref}


def example(
    item: str | DataRef | Mapping[str, Any],
    ground_truth: str | DataRef | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The wire form of an eval / optimization example.

    A file id (or data ref) alone is an example whose file carries its labels
    in a column named after the target (``state``); a mapping with ``inputs``
    passes through.
    """
    if isinstance(item, Mapping) and "inputs" in item:
        return dict(item)
    out: dict[str, Any] = {"inputs": [data_ref(item)]}
    if ground_truth is not None:
        out["ground_truth"] = data_ref(ground_truth)
    return out


class Blueprint(msgspec.Struct, kw_only=True):
    """A reusable agent definition (``blp_``); ``yaml`` when asked for."""

    id: str
    blueprint_key: str | None = None
    version: int | None = None
    name: str | None = None
    description: str | None = None
    owner: str | None = None
    created_at: str | None = None
    source: dict[str, Any] | None = None
    definition: dict[str, Any] | None = None
    yaml: str | None = None


class Bundle(msgspec.Struct, kw_only=True):
    """A blueprint pinned with values, models and artifacts, ready to run (``bnd_``)."""

    id: str
    name: str | None = None
    description: str | None = None
    blueprint_id: str | None = None
    blueprint_key: str | None = None
    status: str | None = None
    owner: str | None = None
    models: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    artifacts: dict[str, Any] | None = None
    created_at: str | None = None


class _Job(msgspec.Struct, _Status, kw_only=True):
    """What instances, evals and optimizations share; ``canceled`` reads as ``cancelled``."""

    id: str
    status: str
    name: str | None = None
    blueprint_id: str | None = None
    error: dict[str, Any] | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    def __post_init__(self) -> None:
        self.status = _normalise(self.status)


class Instance(_Job, kw_only=True):
    """An agent instance (``agt_``): a batch run or a serving deployment."""

    bundle_id: str | None = None
    mode: str | None = None
    connectors: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None


class InstanceEvent(msgspec.Struct, kw_only=True):
    """One entry of an instance's lifecycle log."""

    type: str
    id: str | None = None
    status: str | None = None
    message: str | None = None
    created_at: str | None = None
    data: dict[str, Any] | None = None


class _EventList(msgspec.Struct):
    data: list[InstanceEvent]


class ResultRef(msgspec.Struct, kw_only=True):
    """An output an instance produced (a file to download with ``client.files``)."""

    id: str
    type: str = "file"
    format: str | None = None
    source: dict[str, Any] | None = None
    created_at: str | None = None


class LogEntry(msgspec.Struct, kw_only=True):
    """One line of an instance's run log."""

    id: str
    level: str | None = None
    message: str | None = None
    event_type: str | None = None
    created_at: str | None = None


class Eval(_Job, kw_only=True):
    """An evaluation of a blueprint on labelled examples (``evl_``).

    ``metrics_report`` is set once it completed: ``{primary, primary_value,
    targets: {<target>: {macro_f1, accuracy, class_names, confusion_matrix ...}}}``.
    """

    primary: str | None = None
    targets: dict[str, Any] | None = None
    num_examples: int | None = None
    metrics_report: dict[str, Any] | None = None


class EvalExample(msgspec.Struct, kw_only=True):
    """What an eval measured on one example."""

    id: str | None = None
    index: int | None = None
    status: str | None = None
    inputs: list[dict[str, Any]] | None = None
    metrics: dict[str, Any] | None = None
    predictions: dict[str, Any] | None = None


class Trial(msgspec.Struct, _Status, kw_only=True):
    """One trial of an optimization: its values, fitting and scores."""

    id: str
    status: str
    optimization_id: str | None = None
    index: int | None = None
    trial_values: dict[str, Any] | None = None
    metrics_report: dict[str, Any] | None = None
    objective_value: float | None = None
    feasible: bool | None = None
    error: dict[str, Any] | None = None
    created_at: str | None = None
    finished_at: str | None = None

    def __post_init__(self) -> None:
        self.status = _normalise(self.status)

    @property
    def values(self) -> dict[str, Any]:
        """The blueprint values this trial used."""
        return dict((self.trial_values or {}).get("values") or {})


class Optimization(_Job, kw_only=True):
    """A search over a blueprint's values (``opt_``), with progress and best trial."""

    objective: str | None = None
    budget: dict[str, Any] | None = None
    search_space: dict[str, Any] | None = None
    progress: dict[str, int] | None = None
    best_trial: Trial | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.progress and "canceled" in self.progress:
            self.progress["cancelled"] = self.progress.pop("canceled")


class Node(msgspec.Struct, kw_only=True):
    """A connector or processing node blueprints can use."""

    name: str
    kind: str | None = None
    role: str | None = None
    description: str | None = None
    formats: list[str] | None = None
    blueprints: list[str] | None = None


class NodeRegistry(msgspec.Struct, kw_only=True):
    """``GET agents/nodes/registry``."""

    data: list[Node] = msgspec.field(default_factory=list)


class QueryResult(msgspec.Struct, kw_only=True):
    """A serving instance's answer to one window."""

    status: str
    response: Any = None
    query_response_time_ms: float | None = None
    error: dict[str, Any] | None = None
