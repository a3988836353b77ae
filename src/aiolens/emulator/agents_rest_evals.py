"""REST routes of the emulated Agents API's evals and optimizations (and their trials).

Protocol: docs/protocol-notes.md, "Agents API". Added to the app of
:func:`aiolens.emulator.agents_rest.agents_app`, behind its auth. Creates
answer 202 (the job starts in the background, :mod:`aiolens.emulator.agents_jobs`);
a job is cancelled while it runs (409 after) and deleted once it has ended
(409 before: cancel it first), with a 204.
"""

from __future__ import annotations

from aiohttp import web

from aiolens.emulator._web import ServiceError, json_response, read_json
from aiolens.emulator.agents_engine import resolve_models, resolve_values, search_points
from aiolens.emulator.agents_jobs import cancel_job, start_eval, start_optimization
from aiolens.emulator.agents_requests import (
    check_metric,
    examples,
    job_page,
    object_field,
    paged,
    status_filter,
    store_of,
    text_field,
)
from aiolens.emulator.agents_store import Eval, Optimization, new_id

__all__ = ["eval_routes"]

eval_routes: web.RouteTableDef = web.RouteTableDef()


def _cancel(job: Eval | Optimization, conflict: str) -> None:
    """Cancel a job still running; 409 ``invalid_state`` saying ``conflict`` once it has ended."""
    if job.terminal:
        raise ServiceError(409, "invalid_state", conflict)
    cancel_job(job)


def _check_ended(job: Eval | Optimization, kind: str) -> None:
    """409 ``invalid_state`` while the job runs: it is cancelled before it is deleted."""
    if not job.terminal:
        raise ServiceError(409, "invalid_state", f"Cancel the {kind} before deleting it")


# ---- evals -------------------------------------------------------------------------------


@eval_routes.get("/evals")
async def evals_list(request: web.Request) -> web.Response:
    return job_page(
        request,
        store_of(request).evals,
        lambda e: (e.blueprint.id if e.blueprint else "", e.name),
    )


@eval_routes.post("/evals")
async def evals_create(request: web.Request) -> web.Response:
    store = store_of(request)
    body = await read_json(request)
    blueprint = store.blueprint(text_field(body, "blueprint_id", required=True))
    primary = body.get("primary")
    if primary is not None:
        check_metric(blueprint.spec, text_field(body, "primary"))
    evaluation = Eval(
        id=new_id("evl"),
        name=text_field(body, "name"),
        blueprint=blueprint,
        examples=examples(store, body.get("examples"), "examples", required=True),
        primary=primary,
        targets=object_field(body, "targets") or None,
        emit_predictions=bool(body.get("emit_predictions", False)),
    )
    store.evals[evaluation.id] = evaluation
    start_eval(store, evaluation)
    return json_response(evaluation.to_wire(), 202)


def _eval(request: web.Request) -> Eval:
    return store_of(request).eval(request.match_info["eval_id"])


@eval_routes.get("/evals/{eval_id}")
async def evals_get(request: web.Request) -> web.Response:
    return json_response(_eval(request).to_wire())


@eval_routes.get("/evals/{eval_id}/examples")
async def evals_examples(request: web.Request) -> web.Response:
    results = _eval(request).results
    items = [{"id": f"exm_{r['index']}", **r} for r in results]
    return paged(request, items)


@eval_routes.post("/evals/{eval_id}/cancel")
async def evals_cancel(request: web.Request) -> web.Response:
    evaluation = _eval(request)
    _cancel(evaluation, f"Eval {evaluation.id} is {evaluation.status}")
    return json_response(evaluation.to_wire())


@eval_routes.delete("/evals/{eval_id}")
async def evals_delete(request: web.Request) -> web.Response:
    store = store_of(request)
    evaluation = _eval(request)
    _check_ended(evaluation, "eval")
    for file_id in evaluation.produced_files:
        store.lens.files.pop(file_id, None)
    del store.evals[evaluation.id]
    return web.Response(status=204)


# ---- optimizations -----------------------------------------------------------------------


@eval_routes.get("/optimizations")
async def optimizations_list(request: web.Request) -> web.Response:
    return job_page(
        request,
        store_of(request).optimizations,
        lambda o: (o.blueprint.id if o.blueprint else "", o.name),
    )


@eval_routes.post("/optimizations")
async def optimizations_create(request: web.Request) -> web.Response:
    store = store_of(request)
    body = await read_json(request)
    blueprint = store.blueprint(text_field(body, "blueprint_id", required=True))
    objective = text_field(body, "objective", required=True)
    check_metric(blueprint.spec, objective)
    budget = object_field(body, "budget")
    max_trials = budget.get("max_trials")
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise ServiceError(400, "invalid_parameter", "budget.max_trials must be an integer >= 1")
    overrides = object_field(body, "overrides")
    resolve_values(blueprint.spec, blueprint.values, overrides.get("values"))
    resolve_models(blueprint.spec, blueprint.models, overrides.get("models"))
    search_space = object_field(body, "search_space") or None
    search_points(blueprint.spec, search_space, max_trials)  # 400 on a bad space
    optimization = Optimization(
        id=new_id("opt"),
        name=text_field(body, "name"),
        blueprint=blueprint,
        objective=objective,
        max_trials=max_trials,
        validation_examples=examples(
            store, body.get("validation_examples"), "validation_examples", required=True
        ),
        training_examples=examples(
            store, body.get("training_examples"), "training_examples", required=False
        ),
        calibration_examples=examples(
            store, body.get("calibration_examples"), "calibration_examples", required=False
        ),
        search_space=search_space,
        overrides=overrides,
        constraints=object_field(body, "constraints") or None,
    )
    store.optimizations[optimization.id] = optimization
    start_optimization(store, optimization)
    return json_response(optimization.to_wire(), 202)


def _optimization(request: web.Request) -> Optimization:
    return store_of(request).optimization(request.match_info["optimization_id"])


@eval_routes.get("/optimizations/{optimization_id}")
async def optimizations_get(request: web.Request) -> web.Response:
    return json_response(_optimization(request).to_wire())


@eval_routes.get("/optimizations/{optimization_id}/trials")
async def optimizations_trials(request: web.Request) -> web.Response:
    status = status_filter(request)
    trials = [
        t for t in reversed(_optimization(request).trials) if not status or t.status == status
    ]
    return paged(request, trials)


@eval_routes.post("/optimizations/{optimization_id}/trials/{trial_id}/promote")
async def optimizations_promote(request: web.Request) -> web.Response:
    store = store_of(request)
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
    key = text_field(body, "blueprint_key") or f"{base.key}-{trial.id}"
    overrides = optimization.overrides.get("values") or {}
    training = [e["inputs"][0]["id"] for e in optimization.training_examples]
    blueprint = store.add_blueprint(
        base.spec,
        version=len(store.versions(key)) + 1,
        key=key,
        name=text_field(body, "name") or base.name,
        description=text_field(body, "description", default=base.description) or base.description,
        owner="org",
        values={**base.values, **overrides, **trial.values},
        models=trial.models,
        training_examples=training or base.training_examples,
        source={"optimization_id": optimization.id, "trial_id": trial.id},
    )
    return json_response(blueprint.to_wire(), 201)


@eval_routes.post("/optimizations/{optimization_id}/cancel")
async def optimizations_cancel(request: web.Request) -> web.Response:
    optimization = _optimization(request)
    _cancel(optimization, f"Optimization is {optimization.status}")
    for trial in optimization.trials:
        if trial.status in ("pending", "running"):
            trial.status = "cancelled"
    return json_response(optimization.to_wire())


@eval_routes.delete("/optimizations/{optimization_id}")
async def optimizations_delete(request: web.Request) -> web.Response:
    optimization = _optimization(request)
    _check_ended(optimization, "optimization")
    del store_of(request).optimizations[optimization.id]
    return web.Response(status=204)
