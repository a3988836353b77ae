"""Request parsing shared by the emulated Agents API's routes: fields, data refs, examples, pages.

Every check answers the Agents API's 400 (``invalid_parameter``,
``invalid_data_ref``, ``invalid_objective``) or 404 (``file_not_found``) as a
:class:`~aiolens.emulator._web.ServiceError`. Lists are cursor pages, newest
first (:func:`aiolens.emulator.agents_store.page`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from aiolens.emulator._web import ServiceError, json_response
from aiolens.emulator.agents_engine import BlueprintSpec, objective_value
from aiolens.emulator.agents_serving import AgentSockets
from aiolens.emulator.agents_store import AgentsStore, newest_first, page
from aiolens.emulator.faults import Faults

__all__ = [
    "FAULTS",
    "SOCKETS",
    "STORE",
    "check_metric",
    "data_ref",
    "examples",
    "existing_file",
    "job_page",
    "matches",
    "object_field",
    "paged",
    "status_filter",
    "store_of",
    "text_field",
]

STORE: Final = web.AppKey("agents_store", AgentsStore)
SOCKETS: Final = web.AppKey("agents_sockets", AgentSockets)
FAULTS: Final = web.AppKey("agents_faults", Faults)


def store_of(request: web.Request) -> AgentsStore:
    """The Agents store of the app serving ``request``."""
    return request.app[STORE]


def status_filter(request: web.Request) -> str | None:
    """The ``status`` query filter, ``canceled`` read as ``cancelled``; ``None`` when absent."""
    status = request.query.get("status")
    return "cancelled" if status == "canceled" else status


def matches(query: str | None, *texts: str) -> bool:
    """Whether a ``query`` filter (case-insensitive substring) matches one of ``texts``."""
    return not query or any(query.lower() in text.lower() for text in texts)


def text_field(
    body: dict[str, Any], name: str, *, required: bool = False, default: str = ""
) -> str:
    """``body[name]`` as a string: ``default`` when absent (or null, unless ``required``)."""
    value = body.get(name, default)
    if value is None and not required:
        return default
    if not isinstance(value, str) or (required and not value):
        raise ServiceError(400, "invalid_parameter", f"{name} must be a non-empty string")
    return value


def object_field(body: dict[str, Any], name: str) -> dict[str, Any]:
    """``body[name]`` as an object; ``{}`` when absent or null."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ServiceError(400, "invalid_parameter", f"{name} must be an object")
    return value


def data_ref(store: AgentsStore, ref: Any, where: str) -> dict[str, Any]:
    """A data ref ``{type: "file", id, format?}`` (a bare id is shorthand), checked."""
    if isinstance(ref, str):
        ref = {"type": "file", "id": ref}
    if not isinstance(ref, dict) or ref.get("type", "file") != "file":
        raise ServiceError(400, "invalid_data_ref", f"{where}: a data ref is {{type: 'file', id}}")
    file_id = ref.get("id")
    if not isinstance(file_id, str) or not file_id:
        raise ServiceError(400, "invalid_data_ref", f"{where}: the data ref has no id")
    return {"type": "file", **ref}


def existing_file(store: AgentsStore, ref: dict[str, Any], where: str) -> dict[str, Any]:
    """``ref`` if its file is in the store; 404 ``file_not_found`` otherwise."""
    if ref["id"] not in store.lens.files:
        raise ServiceError(404, "file_not_found", f"{where}: file not found: {ref['id']}")
    return ref


def examples(store: AgentsStore, raw: Any, name: str, *, required: bool) -> list[dict[str, Any]]:
    """Examples ``{inputs: [refs], ground_truth?}``; a bare file id is shorthand."""
    if raw is None and not required:
        return []
    if not isinstance(raw, list) or (required and not raw):
        raise ServiceError(400, "invalid_parameter", f"{name} must be a non-empty list")
    out = []
    for index, example in enumerate(raw):
        where = f"{name}[{index}]"
        if isinstance(example, str):
            example = {"inputs": [example]}
        if not isinstance(example, dict) or not isinstance(example.get("inputs"), list):
            raise ServiceError(400, "invalid_parameter", f"{where} needs inputs: a list of refs")
        if not example["inputs"]:
            raise ServiceError(400, "invalid_parameter", f"{where}.inputs is empty")
        inputs = [existing_file(store, data_ref(store, r, where), where) for r in example["inputs"]]
        entry: dict[str, Any] = {"inputs": inputs}
        truth = example.get("ground_truth")
        if truth is not None:
            entry["ground_truth"] = existing_file(store, data_ref(store, truth, where), where)
        out.append(entry)
    return out


def job_page(
    request: web.Request,
    records: Mapping[str, Any],
    blueprint_and_name: Callable[[Any], tuple[str, str]],
    extra: Callable[[Any], bool] = lambda record: True,
) -> web.Response:
    """A page of a job table (instances, evals, optimizations), newest first, filtered
    by ``status`` (either spelling), ``blueprint_id``, ``query`` (id or name) and ``extra``."""
    q, status = request.query, status_filter(request)
    blueprint_id = q.get("blueprint_id")

    def keep(record: Any) -> bool:
        blueprint, name = blueprint_and_name(record)
        return (
            (not status or record.status == status)
            and (not blueprint_id or blueprint == blueprint_id)
            and matches(q.get("query"), record.id, name)
            and extra(record)
        )

    return paged(request, [r for r in newest_first(records) if keep(r)])


def check_metric(spec: BlueprintSpec, metric: str) -> None:
    """400 ``invalid_objective`` unless ``metric`` is one the blueprint reports."""
    objective_value(spec, {spec.target: dict.fromkeys(spec.metrics, 0.0)}, metric)


def paged(
    request: web.Request, items: list[Any], render: Callable[[Any], dict[str, Any]] | None = None
) -> web.Response:
    """A cursor page of ``items`` (records or dicts with an ``id``) for the request's query."""
    return json_response(
        page(
            items,
            lambda r: r["id"] if isinstance(r, dict) else r.id,
            render or _wire,
            request.query,
        )
    )


def _wire(record: Any) -> dict[str, Any]:
    return record if isinstance(record, dict) else record.to_wire()
