"""In-memory state of the emulated Agents API (docs/protocol-notes.md, "Agents API"): the tables
of blueprints, bundles, instances, evals and optimizations, and cursor paging over them.

The records are :mod:`aiolens.emulator.agents_records` (re-exported here). Uploaded
files live in the Lens emulator's file store (one org, one file namespace):
agents read their inputs from it and write their result files into it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from aiolens.emulator._web import ServiceError
from aiolens.emulator.agents_engine import (
    BLUEPRINTS,
    AgentError,
    BlueprintSpec,
)
from aiolens.emulator.agents_records import (
    TERMINAL,
    Blueprint,
    Bundle,
    Eval,
    Instance,
    Job,
    Optimization,
    Trial,
    new_id,
    now_iso,
)
from aiolens.emulator.lens_store import LensStore

__all__ = [
    "TERMINAL",
    "AgentsStore",
    "Blueprint",
    "Bundle",
    "Eval",
    "Instance",
    "Job",
    "Optimization",
    "Trial",
    "new_id",
    "newest_first",
    "now_iso",
    "page",
]

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000

T = TypeVar("T")


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
