"""REST routes of the emulated Agents API, as an aiohttp sub-app.

Protocol: docs/protocol-notes.md, "Agents API".

Mounted at ``/agents`` (the 26.8 SDK layout: the host root, beside ``/v0.5``)
and at ``/platform/agents`` (the 26.10 layout, under the platform base URL).
Lists are cursor pages, newest first. Creates answer 201, a run, an eval and
an optimization 202 (they start in the background), deletes 204 without a
body. Errors use the Lens envelope ``{"errors": [{"code", "message"}]}``.
Status filters accept both ``cancelled`` and ``canceled``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from aiolens.emulator._web import ServiceError, fault_middleware, json_response, read_json
from aiolens.emulator.agents_engine import (
    AgentError,
    BlueprintSpec,
    objective_value,
    resolve_models,
    resolve_values,
    search_points,
)
from aiolens.emulator.agents_jobs import (
    cancel_job,
    shutdown,
    start_eval,
    start_instance,
    start_optimization,
)
from aiolens.emulator.agents_serving import (
    AgentSockets,
    answer_query,
    serving_instance,
    start_serving,
)
from aiolens.emulator.agents_store import (
    AgentsStore,
    Bundle,
    Eval,
    Instance,
    Optimization,
    new_id,
    newest_first,
    page,
)
from aiolens.emulator.faults import Faults

__all__ = ["agents_app"]

STORE: Final = web.AppKey("agents_store", AgentsStore)
SOCKETS: Final = web.AppKey("agents_sockets", AgentSockets)
FAULTS: Final = web.AppKey("agents_faults", Faults)

routes: web.RouteTableDef = web.RouteTableDef()

NODE_REGISTRY: Final = (
    {"name": "file_reader", "kind": "connector", "role": "source", "formats": ["csv", "jsonl"]},
    {"name": "file_writer", "kind": "connector", "role": "sink", "formats": ["jsonl"]},
    {"name": "serving_endpoint", "kind": "connector", "role": "source", "formats": ["json"]},
    {"name": "window_features", "kind": "processor", "description": "Per-column mean and std."},
    {"name": "state_classifier", "kind": "processor", "blueprints": ["osm"]},
    {"name": "anomaly_detector", "kind": "processor", "blueprints": ["ad"]},
)


def _error_body(err: ServiceError) -> dict[str, Any]:
    return {
        "errors": [
            {"code": err.code, "message": err.message, "error_uid": f"err-{secrets.token_hex(8)}"}
        ]
    }


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    key = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not key or key == request.headers.get("Authorization", ""):
        raise ServiceError(401, "unauthorized", "Missing Authorization: Bearer <API_KEY>")
    if not secrets.compare_digest(key, request.app[STORE].lens.api_key):
        raise ServiceError(401, "unauthorized", "Invalid API key")
    try:
        result: web.StreamResponse = await handler(request)
    except AgentError as exc:
        status = 404 if exc.code == "file_not_found" else 400
        raise ServiceError(status, exc.code, exc.message) from None
    return result


def _store(request: web.Request) -> AgentsStore:
    return request.app[STORE]


def _status_filter(request: web.Request) -> str | None:
    status = request.query.get("status")
    return "cancelled" if status == "canceled" else status


def _matches(query: str | None, *texts: str) -> bool:
    return not query or any(query.lower() in text.lower() for text in texts)


def _text(body: dict[str, Any], name: str, *, required: bool = False, default: str = "") -> str:
    value = body.get(name, default)
    if value is None and not required:
        return default
    if not isinstance(value, str) or (required and not value):
        raise ServiceError(400, "invalid_parameter", f"{name} must be a non-empty string")
    return value


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ServiceError(400, "invalid_parameter", f"{name} must be an object")
    return value


def _ref(store: AgentsStore, ref: Any, where: str) -> dict[str, Any]:
    """A data ref ``{type: "file", id, format?}`` (a bare id is shorthand), checked."""
    if isinstance(ref, str):
        ref = {"type": "file", "id": ref}
    if not isinstance(ref, dict) or ref.get("type", "file") != "file":
        raise ServiceError(400, "invalid_data_ref", f"{where}: a data ref is {{type: 'file', id}}")
    file_id = ref.get("id")
    if not isinstance(file_id, str) or not file_id:
        raise ServiceError(400, "invalid_data_ref", f"{where}: the data ref has no id")
    return {"type": "file", **ref}


def _existing(store: AgentsStore, ref: dict[str, Any], where: str) -> dict[str, Any]:
    if ref["id"] not in store.lens.files:
        raise ServiceError(404, "file_not_found", f"{where}: file not found: {ref['id']}")
    return ref


def _examples(store: AgentsStore, raw: Any, name: str, *, required: bool) -> list[dict[str, Any]]:
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
        inputs = [_existing(store, _ref(store, r, where), where) for r in example["inputs"]]
        entry: dict[str, Any] = {"inputs": inputs}
        truth = example.get("ground_truth")
        if truth is not None:
            entry["ground_truth"] = _existing(store, _ref(store, truth, where), where)
        out.append(entry)
    return out


def _filtered(
    request: web.Request,
    records: Mapping[str, Any],
    blueprint_and_name: Callable[[Any], tuple[str, str]],
    extra: Callable[[Any], bool] = lambda record: True,
) -> web.Response:
    """A page of a job table (instances, evals, optimizations), newest first, filtered
    by ``status`` (either spelling), ``blueprint_id``, ``query`` (id or name) and ``extra``."""
    q, status = request.query, _status_filter(request)
    blueprint_id = q.get("blueprint_id")

    def keep(record: Any) -> bool:
        blueprint, name = blueprint_and_name(record)
        return (
            (not status or record.status == status)
            and (not blueprint_id or blueprint == blueprint_id)
            and _matches(q.get("query"), record.id, name)
            and extra(record)
        )

    return _paged(request, [r for r in newest_first(records) if keep(r)])


def _check_metric(spec: BlueprintSpec, metric: str) -> None:
    """400 ``invalid_objective`` unless ``metric`` is one the blueprint reports."""
    objective_value(spec, {spec.target: dict.fromkeys(spec.metrics, 0.0)}, metric)


def _paged(
    request: web.Request, items: list[Any], render: Callable[[Any], dict[str, Any]] | None = None
) -> web.Response:
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


# ---- blueprints --------------------------------------------------------------------------


@routes.get("/blueprints")
async def blueprints_list(request: web.Request) -> web.Response:
    key = request.query.get("key")
    items = [b for b in newest_first(_store(request).blueprints) if not key or b.key == key]
    return _paged(request, items)


@routes.get("/blueprints/{ref}")
async def blueprints_get(request: web.Request) -> web.Response:
    blueprint = _store(request).blueprint(request.match_info["ref"])
    # requests (the official SDK) sends a Python bool as "True"; aiolens sends "true".
    include = request.query.get("yaml", "").lower() in ("true", "1")
    return json_response(blueprint.to_wire(include_yaml=include))


@routes.get("/blueprints/{ref}/versions")
async def blueprints_versions(request: web.Request) -> web.Response:
    store = _store(request)
    key = store.blueprint(request.match_info["ref"]).key
    return _paged(request, store.versions(key))


# ---- bundles -----------------------------------------------------------------------------


@routes.get("/bundles")
async def bundles_list(request: web.Request) -> web.Response:
    query, blueprint_id = request.query.get("query"), request.query.get("blueprint_id")
    items = [
        b
        for b in newest_first(_store(request).bundles)
        if _matches(query, b.name, b.id) and (not blueprint_id or b.blueprint.id == blueprint_id)
    ]
    return _paged(request, items)


@routes.post("/bundles")
async def bundles_create(request: web.Request) -> web.Response:
    store = _store(request)
    body = await read_json(request)
    blueprint = store.blueprint(_text(body, "blueprint", required=True))
    models, values = _object(body, "models"), _object(body, "values")
    if "model" in body and isinstance(body["model"], str):  # the 26.8 SDK's single model
        models = {next(iter(blueprint.spec.models)): body["model"], **models}
    resolve_values(blueprint.spec, blueprint.values, values)  # 400 on a bad value
    resolve_models(blueprint.spec, blueprint.models, models)
    artifacts = _object(body, "artifacts")
    for file_id in artifacts.get("training_examples") or []:
        _existing(store, _ref(store, file_id, "artifacts"), "artifacts.training_examples")
    bundle = Bundle(
        new_id("bnd"),
        _text(body, "name", required=True),
        _text(body, "description"),
        blueprint,
        models,
        values,
        artifacts,
    )
    store.bundles[bundle.id] = bundle
    return json_response(bundle.to_wire(), 201)


@routes.get("/bundles/{bundle_id}")
async def bundles_get(request: web.Request) -> web.Response:
    return json_response(_store(request).bundle(request.match_info["bundle_id"]).to_wire())


@routes.delete("/bundles/{bundle_id}")
async def bundles_delete(request: web.Request) -> web.Response:
    store = _store(request)
    bundle = store.bundle(request.match_info["bundle_id"])
    if bundle.owner == "platform":
        raise ServiceError(403, "forbidden", "Platform bundles cannot be deleted")
    del store.bundles[bundle.id]
    return web.Response(status=204)


@routes.post("/bundles/{bundle_id}/run")
async def bundles_run(request: web.Request) -> web.Response:
    store = _store(request)
    bundle = store.bundle(request.match_info["bundle_id"])
    body = await read_json(request)
    connectors = body.get("connectors")
    if not isinstance(connectors, dict) or not isinstance(connectors.get("source"), list):
        raise ServiceError(400, "invalid_connectors", "connectors.source (a list) is required")
    mode = body.get("mode", "batch")
    if mode not in ("batch", "serving"):
        raise ServiceError(400, "invalid_parameter", f"mode must be batch or serving: {mode!r}")
    sources = [_ref(store, r, "connectors.source") for r in connectors["source"]]
    sink = connectors.get("sink")
    instance = Instance(
        id=new_id("agt"),
        bundle=bundle,
        mode=mode,
        sources=[_existing(store, r, "connectors.source") for r in sources],
        sink=_ref(store, sink, "connectors.sink") if sink is not None else None,
    )
    if mode == "batch" and not instance.sources:
        raise ServiceError(400, "invalid_connectors", "A batch run needs at least one source")
    instance.event("instance.created", f"Instance of {bundle.name} created")
    instance.log("info", "instance.created", f"{mode} run of bundle {bundle.id}")
    store.instances[instance.id] = instance
    if mode == "serving":
        start_serving(instance)
    else:
        start_instance(store, request.app[FAULTS], instance)
    return json_response(instance.to_wire(), 202)


# ---- instances ---------------------------------------------------------------------------


@routes.get("/instances")
async def instances_list(request: web.Request) -> web.Response:
    bundle_id = request.query.get("bundle_id")
    return _filtered(
        request,
        _store(request).instances,
        lambda i: (i.bundle.blueprint.id, i.bundle.name) if i.bundle else ("", ""),
        lambda i: not bundle_id or (i.bundle is not None and i.bundle.id == bundle_id),
    )


def _instance(request: web.Request) -> Instance:
    return _store(request).instance(request.match_info["instance_id"])


@routes.get("/instances/{instance_id}")
async def instances_get(request: web.Request) -> web.Response:
    return json_response(_instance(request).to_wire())


@routes.delete("/instances/{instance_id}")
async def instances_delete(request: web.Request) -> web.Response:
    instance = _instance(request)
    if not instance.terminal:
        cancel_job(instance)
    await request.app[SOCKETS].close_instance(instance.id)
    del _store(request).instances[instance.id]
    return web.Response(status=204)


@routes.get("/instances/{instance_id}/events")
async def instances_events(request: web.Request) -> web.Response:
    return json_response({"data": _instance(request).events})


@routes.get("/instances/{instance_id}/results")
async def instances_results(request: web.Request) -> web.Response:
    return _paged(request, list(reversed(_instance(request).results)))


@routes.get("/instances/{instance_id}/logs")
async def instances_logs(request: web.Request) -> web.Response:
    level, search = request.query.get("level"), request.query.get("search")
    logs = [
        entry
        for entry in reversed(_instance(request).logs)
        if (not level or entry["level"] == level.lower())
        and _matches(search, entry["message"], entry["event_type"])
    ]
    return _paged(request, logs)


@routes.post("/instances/{instance_id}/cancel")
async def instances_cancel(request: web.Request) -> web.Response:
    instance = _instance(request)
    if instance.terminal:
        raise ServiceError(409, "invalid_state", f"Instance {instance.id} is {instance.status}")
    was_running = instance.task is not None and not instance.task.done()
    cancel_job(instance)
    if not was_running:  # a serving instance (no job) or one whose job never started
        instance.event("instance.cancelled", "Instance cancelled")
        instance.log("info", "instance.cancelled", "Run cancelled")
    await request.app[SOCKETS].close_instance(instance.id)
    return json_response(instance.to_wire())


@routes.post("/instances/{instance_id}/pause")
async def instances_pause(request: web.Request) -> web.Response:
    instance = _instance(request)
    if instance.status != "running" or instance.mode != "batch":
        raise ServiceError(
            409, "invalid_state", f"Only a running batch instance can pause ({instance.status})"
        )
    instance.status = "paused"
    instance.resumed.clear()
    instance.event("instance.paused", "Instance paused")
    instance.log("info", "instance.paused", "Run paused")
    return json_response(instance.to_wire())


@routes.post("/instances/{instance_id}/resume")
async def instances_resume(request: web.Request) -> web.Response:
    instance = _instance(request)
    if instance.status != "paused":
        raise ServiceError(409, "invalid_state", f"Instance {instance.id} is not paused")
    instance.status = "running"
    instance.resumed.set()
    instance.event("instance.resumed", "Instance resumed")
    instance.log("info", "instance.resumed", "Run resumed")
    return json_response(instance.to_wire())


@routes.post("/instances/{instance_id}/query")
async def instances_query(request: web.Request) -> web.Response:
    instance = _instance(request)
    serving_instance(instance)
    body = await read_json(request)
    return json_response(answer_query(_store(request), instance, body))


# ---- evals -------------------------------------------------------------------------------


@routes.get("/evals")
async def evals_list(request: web.Request) -> web.Response:
    return _filtered(
        request,
        _store(request).evals,
        lambda e: (e.blueprint.id if e.blueprint else "", e.name),
    )


@routes.post("/evals")
async def evals_create(request: web.Request) -> web.Response:
    store = _store(request)
    body = await read_json(request)
    blueprint = store.blueprint(_text(body, "blueprint_id", required=True))
    primary = body.get("primary")
    if primary is not None:
        _check_metric(blueprint.spec, _text(body, "primary"))
    evaluation = Eval(
        id=new_id("evl"),
        name=_text(body, "name"),
        blueprint=blueprint,
        examples=_examples(store, body.get("examples"), "examples", required=True),
        primary=primary,
        targets=_object(body, "targets") or None,
        emit_predictions=bool(body.get("emit_predictions", False)),
    )
    store.evals[evaluation.id] = evaluation
    start_eval(store, evaluation)
    return json_response(evaluation.to_wire(), 202)


def _eval(request: web.Request) -> Eval:
    return _store(request).eval(request.match_info["eval_id"])


@routes.get("/evals/{eval_id}")
async def evals_get(request: web.Request) -> web.Response:
    return json_response(_eval(request).to_wire())


@routes.get("/evals/{eval_id}/examples")
async def evals_examples(request: web.Request) -> web.Response:
    results = _eval(request).results
    items = [{"id": f"exm_{r['index']}", **r} for r in results]
    return _paged(request, items)


@routes.post("/evals/{eval_id}/cancel")
async def evals_cancel(request: web.Request) -> web.Response:
    evaluation = _eval(request)
    if evaluation.terminal:
        raise ServiceError(409, "invalid_state", f"Eval {evaluation.id} is {evaluation.status}")
    cancel_job(evaluation)
    return json_response(evaluation.to_wire())


@routes.delete("/evals/{eval_id}")
async def evals_delete(request: web.Request) -> web.Response:
    store = _store(request)
    evaluation = _eval(request)
    if not evaluation.terminal:
        raise ServiceError(409, "invalid_state", "Cancel the eval before deleting it")
    for file_id in evaluation.produced_files:
        store.lens.files.pop(file_id, None)
    del store.evals[evaluation.id]
    return web.Response(status=204)


# ---- optimizations -----------------------------------------------------------------------


@routes.get("/optimizations")
async def optimizations_list(request: web.Request) -> web.Response:
    return _filtered(
        request,
        _store(request).optimizations,
        lambda o: (o.blueprint.id if o.blueprint else "", o.name),
    )


@routes.post("/optimizations")
async def optimizations_create(request: web.Request) -> web.Response:
    store = _store(request)
    body = await read_json(request)
    blueprint = store.blueprint(_text(body, "blueprint_id", required=True))
    objective = _text(body, "objective", required=True)
    _check_metric(blueprint.spec, objective)
    budget = _object(body, "budget")
    max_trials = budget.get("max_trials")
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise ServiceError(400, "invalid_parameter", "budget.max_trials must be an integer >= 1")
    overrides = _object(body, "overrides")
    resolve_values(blueprint.spec, blueprint.values, overrides.get("values"))
    resolve_models(blueprint.spec, blueprint.models, overrides.get("models"))
    search_space = _object(body, "search_space") or None
    search_points(blueprint.spec, search_space, max_trials)  # 400 on a bad space
    optimization = Optimization(
        id=new_id("opt"),
        name=_text(body, "name"),
        blueprint=blueprint,
        objective=objective,
        max_trials=max_trials,
        validation_examples=_examples(
            store, body.get("validation_examples"), "validation_examples", required=True
        ),
        training_examples=_examples(
            store, body.get("training_examples"), "training_examples", required=False
        ),
        calibration_examples=_examples(
            store, body.get("calibration_examples"), "calibration_examples", required=False
        ),
        search_space=search_space,
        overrides=overrides,
        constraints=_object(body, "constraints") or None,
    )
    store.optimizations[optimization.id] = optimization
    start_optimization(store, optimization)
    return json_response(optimization.to_wire(), 202)


def _optimization(request: web.Request) -> Optimization:
    return _store(request).optimization(request.match_info["optimization_id"])


@routes.get("/optimizations/{optimization_id}")
async def optimizations_get(request: web.Request) -> web.Response:
    return json_response(_optimization(request).to_wire())


@routes.get("/optimizations/{optimization_id}/trials")
async def optimizations_trials(request: web.Request) -> web.Response:
    status = _status_filter(request)
    trials = [
        t for t in reversed(_optimization(request).trials) if not status or t.status == status
    ]
    return _paged(request, trials)


@routes.post("/optimizations/{optimization_id}/trials/{trial_id}/promote")
async def optimizations_promote(request: web.Request) -> web.Response:
    store = _store(request)
    optimization = _optimization(request)
    trial_id = request.match_info["trial_id"]
    trial = next((t for t in optimization.trials if t.id == trial_id), None)
    if trial is None:
        raise ServiceError(404, "not_found", f"Trial not found: {trial_id}")
    if trial.status != "completed":
        raise ServiceError(409, "invalid_state", f"Trial {trial.id} is {trial.status}")
    body = await read_json(request)
    base = optimization.blueprint
    assert base is not None
    key = _text(body, "blueprint_key") or f"{base.key}-{trial.id}"
    overrides = optimization.overrides.get("values") or {}
    training = [e["inputs"][0]["id"] for e in optimization.training_examples]
    blueprint = store.add_blueprint(
        base.spec,
        version=len(store.versions(key)) + 1,
        key=key,
        name=_text(body, "name") or base.name,
        description=_text(body, "description", default=base.description) or base.description,
        owner="org",
        values={**base.values, **overrides, **trial.values},
        models=trial.models,
        training_examples=training or base.training_examples,
        source={"optimization_id": optimization.id, "trial_id": trial.id},
    )
    return json_response(blueprint.to_wire(), 201)


@routes.post("/optimizations/{optimization_id}/cancel")
async def optimizations_cancel(request: web.Request) -> web.Response:
    optimization = _optimization(request)
    if optimization.terminal:
        raise ServiceError(409, "invalid_state", f"Optimization is {optimization.status}")
    cancel_job(optimization)
    for trial in optimization.trials:
        if trial.status in ("pending", "running"):
            trial.status = "cancelled"
    return json_response(optimization.to_wire())


@routes.delete("/optimizations/{optimization_id}")
async def optimizations_delete(request: web.Request) -> web.Response:
    optimization = _optimization(request)
    if not optimization.terminal:
        raise ServiceError(409, "invalid_state", "Cancel the optimization before deleting it")
    del _store(request).optimizations[optimization.id]
    return web.Response(status=204)


# ---- nodes -------------------------------------------------------------------------------


@routes.get("/nodes/registry")
async def nodes_registry(request: web.Request) -> web.Response:
    return json_response({"data": list(NODE_REGISTRY)})


def agents_app(store: AgentsStore, faults: Faults, sockets: AgentSockets) -> web.Application:
    """The Agents API as an aiohttp application, to mount at ``…/agents``.

    Mount one per layout; they share ``store`` and ``sockets`` (so every
    record, and cancelling through one layout closes sockets opened through
    the other).
    """
    app = web.Application(middlewares=[fault_middleware(faults, _error_body), _auth])
    app[STORE] = store
    app[SOCKETS] = sockets
    app[FAULTS] = faults
    app.add_routes(routes)
    app.router.add_get("/instances/{instance_id}/connect", sockets.connect)
    app.on_shutdown.append(sockets.shutdown)

    async def stop_jobs(app: web.Application) -> None:
        await shutdown(store)

    app.on_shutdown.append(stop_jobs)
    return app
