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
from typing import Any, Final

from aiohttp import web

from aiolens.emulator._web import ServiceError, fault_middleware, json_response, read_json
from aiolens.emulator.agents_engine import AgentError, resolve_models, resolve_values
from aiolens.emulator.agents_jobs import cancel_job, shutdown, start_instance
from aiolens.emulator.agents_requests import (
    FAULTS,
    SOCKETS,
    STORE,
    data_ref,
    existing_file,
    job_page,
    matches,
    object_field,
    paged,
    store_of,
    text_field,
)
from aiolens.emulator.agents_rest_evals import eval_routes
from aiolens.emulator.agents_serving import (
    AgentSockets,
    answer_query,
    serving_instance,
    start_serving,
)
from aiolens.emulator.agents_store import AgentsStore, Bundle, Instance, new_id, newest_first
from aiolens.emulator.faults import Faults

__all__ = ["agents_app"]

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


# ---- blueprints --------------------------------------------------------------------------


@routes.get("/blueprints")
async def blueprints_list(request: web.Request) -> web.Response:
    key = request.query.get("key")
    items = [b for b in newest_first(store_of(request).blueprints) if not key or b.key == key]
    return paged(request, items)


@routes.get("/blueprints/{ref}")
async def blueprints_get(request: web.Request) -> web.Response:
    blueprint = store_of(request).blueprint(request.match_info["ref"])
    # requests (the official SDK) sends a Python bool as "True"; aiolens sends "true".
    include = request.query.get("yaml", "").lower() in ("true", "1")
    return json_response(blueprint.to_wire(include_yaml=include))


@routes.get("/blueprints/{ref}/versions")
async def blueprints_versions(request: web.Request) -> web.Response:
    store = store_of(request)
    key = store.blueprint(request.match_info["ref"]).key
    return paged(request, store.versions(key))


# ---- bundles -----------------------------------------------------------------------------


@routes.get("/bundles")
async def bundles_list(request: web.Request) -> web.Response:
    query, blueprint_id = request.query.get("query"), request.query.get("blueprint_id")
    items = [
        b
        for b in newest_first(store_of(request).bundles)
        if matches(query, b.name, b.id) and (not blueprint_id or b.blueprint.id == blueprint_id)
    ]
    return paged(request, items)


@routes.post("/bundles")
async def bundles_create(request: web.Request) -> web.Response:
    store = store_of(request)
    body = await read_json(request)
    blueprint = store.blueprint(text_field(body, "blueprint", required=True))
    models, values = object_field(body, "models"), object_field(body, "values")
    if "model" in body and isinstance(body["model"], str):  # the 26.8 SDK's single model
        models = {next(iter(blueprint.spec.models)): body["model"], **models}
    resolve_values(blueprint.spec, blueprint.values, values)  # 400 on a bad value
    resolve_models(blueprint.spec, blueprint.models, models)
    artifacts = object_field(body, "artifacts")
    for file_id in artifacts.get("training_examples") or []:
        existing_file(store, data_ref(store, file_id, "artifacts"), "artifacts.training_examples")
    bundle = Bundle(
        new_id("bnd"),
        text_field(body, "name", required=True),
        text_field(body, "description"),
        blueprint,
        models,
        values,
        artifacts,
    )
    store.bundles[bundle.id] = bundle
    return json_response(bundle.to_wire(), 201)


@routes.get("/bundles/{bundle_id}")
async def bundles_get(request: web.Request) -> web.Response:
    return json_response(store_of(request).bundle(request.match_info["bundle_id"]).to_wire())


@routes.delete("/bundles/{bundle_id}")
async def bundles_delete(request: web.Request) -> web.Response:
    store = store_of(request)
    bundle = store.bundle(request.match_info["bundle_id"])
    if bundle.owner == "platform":
        raise ServiceError(403, "forbidden", "Platform bundles cannot be deleted")
    del store.bundles[bundle.id]
    return web.Response(status=204)


@routes.post("/bundles/{bundle_id}/run")
async def bundles_run(request: web.Request) -> web.Response:
    store = store_of(request)
    bundle = store.bundle(request.match_info["bundle_id"])
    body = await read_json(request)
    connectors = body.get("connectors")
    if not isinstance(connectors, dict) or not isinstance(connectors.get("source"), list):
        raise ServiceError(400, "invalid_connectors", "connectors.source (a list) is required")
    mode = body.get("mode", "batch")
    if mode not in ("batch", "serving"):
        raise ServiceError(400, "invalid_parameter", f"mode must be batch or serving: {mode!r}")
    sources = [data_ref(store, r, "connectors.source") for r in connectors["source"]]
    sink = connectors.get("sink")
    instance = Instance(
        id=new_id("agt"),
        bundle=bundle,
        mode=mode,
        sources=[existing_file(store, r, "connectors.source") for r in sources],
        sink=data_ref(store, sink, "connectors.sink") if sink is not None else None,
    )
    if mode == "batch" and not instance.sources:
        raise ServiceError(400, "invalid_connectors", "A batch run needs at least one source")
    instance.milestone(
        "instance.created",
        f"Instance of {bundle.name} created",
        f"{mode} run of bundle {bundle.id}",
    )
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
    return job_page(
        request,
        store_of(request).instances,
        lambda i: (i.bundle.blueprint.id, i.bundle.name) if i.bundle else ("", ""),
        lambda i: not bundle_id or (i.bundle is not None and i.bundle.id == bundle_id),
    )


def _instance(request: web.Request) -> Instance:
    return store_of(request).instance(request.match_info["instance_id"])


@routes.get("/instances/{instance_id}")
async def instances_get(request: web.Request) -> web.Response:
    return json_response(_instance(request).to_wire())


@routes.delete("/instances/{instance_id}")
async def instances_delete(request: web.Request) -> web.Response:
    instance = _instance(request)
    if not instance.terminal:
        cancel_job(instance)
    await request.app[SOCKETS].close_instance(instance.id)
    del store_of(request).instances[instance.id]
    return web.Response(status=204)


@routes.get("/instances/{instance_id}/events")
async def instances_events(request: web.Request) -> web.Response:
    return json_response({"data": _instance(request).events})


@routes.get("/instances/{instance_id}/results")
async def instances_results(request: web.Request) -> web.Response:
    return paged(request, list(reversed(_instance(request).results)))


@routes.get("/instances/{instance_id}/logs")
async def instances_logs(request: web.Request) -> web.Response:
    level, search = request.query.get("level"), request.query.get("search")
    logs = [
        entry
        for entry in reversed(_instance(request).logs)
        if (not level or entry["level"] == level.lower())
        and matches(search, entry["message"], entry["event_type"])
    ]
    return paged(request, logs)


@routes.post("/instances/{instance_id}/cancel")
async def instances_cancel(request: web.Request) -> web.Response:
    instance = _instance(request)
    if instance.terminal:
        raise ServiceError(409, "invalid_state", f"Instance {instance.id} is {instance.status}")
    was_running = instance.task is not None and not instance.task.done()
    cancel_job(instance)
    if not was_running:  # a serving instance (no job) or one whose job never started
        instance.milestone("instance.cancelled", "Instance cancelled", "Run cancelled")
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
    instance.milestone("instance.paused", "Instance paused", "Run paused")
    return json_response(instance.to_wire())


@routes.post("/instances/{instance_id}/resume")
async def instances_resume(request: web.Request) -> web.Response:
    instance = _instance(request)
    if instance.status != "paused":
        raise ServiceError(409, "invalid_state", f"Instance {instance.id} is not paused")
    instance.status = "running"
    instance.resumed.set()
    instance.milestone("instance.resumed", "Instance resumed", "Run resumed")
    return json_response(instance.to_wire())


@routes.post("/instances/{instance_id}/query")
async def instances_query(request: web.Request) -> web.Response:
    instance = _instance(request)
    serving_instance(instance)
    body = await read_json(request)
    return json_response(answer_query(store_of(request), instance, body))


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
    app.add_routes(eval_routes)
    app.router.add_get("/instances/{instance_id}/connect", sockets.connect)
    app.on_shutdown.append(sockets.shutdown)

    async def stop_jobs(app: web.Application) -> None:
        await shutdown(store)

    app.on_shutdown.append(stop_jobs)
    return app
