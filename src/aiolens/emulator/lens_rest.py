"""REST routes of the emulated Lens API (docs/protocol-notes.md), as an aiohttp sub-app."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import web

from aiolens.emulator._web import (
    ServiceError,
    fault_middleware,
    json_response,
    read_json,
    shard,
)
from aiolens.emulator.faults import Faults
from aiolens.emulator.lens_events import EventContext, destroy, handle_event
from aiolens.emulator.lens_files import file_routes
from aiolens.emulator.lens_realtime import add_realtime_routes
from aiolens.emulator.lens_store import STORE_KEY, LensRecord, LensStore, SessionRecord
from aiolens.emulator.lens_uploads import add_upload_routes

__all__ = ["STORE_KEY", "error_body", "lens_app", "unknown_route_middleware", "ws_base_url"]

FAULTS_KEY: Final = web.AppKey("lens_faults", Faults)
PREFIX: Final = "/v0.5"

routes: web.RouteTableDef = web.RouteTableDef()

log: logging.Logger = logging.getLogger("aiolens.emulator")


def error_body(err: ServiceError) -> dict[str, Any]:
    """The ``errors`` array (seeds 000, 003); 401s also keep the legacy ``detail``."""
    body: dict[str, Any] = {"detail": err.message} if err.code == "unauthorized" else {}
    return body | {
        "errors": [
            {
                "code": err.code,
                "message": err.message,
                "error_uid": f"err-{secrets.token_hex(16)}",
            }
        ]
    }


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.method != "OPTIONS":
        store = request.app[STORE_KEY]
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            key = header[len("Bearer ") :]
        else:
            # Browser-style auth: a subprotocol ending in bearer.<key> (docs/protocol-notes.md).
            protocols = request.headers.get("Sec-WebSocket-Protocol", "")
            key = next(
                (
                    p.strip().rpartition("bearer.")[2]
                    for p in protocols.split(",")
                    if "bearer." in p
                ),
                "",
            )
        if not key:
            raise ServiceError(401, "unauthorized", "Missing Authorization: Bearer <API_KEY>")
        if not secrets.compare_digest(key, store.api_key):
            raise ServiceError(401, "unauthorized", "Invalid API key")
    result: web.StreamResponse = await handler(request)
    return result


@web.middleware
async def unknown_route_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Unknown routes (404) and methods (405) answer the ``errors`` array, as JSON.

    For the root application: aiohttp answers text/plain ``404: Not Found`` on
    its own. Paths under ``/api`` (the Kynasmith service) are left to that
    service's envelope.
    """
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status not in (404, 405) or request.path.startswith("/api/"):
            raise
        code = "not_found" if exc.status == 404 else "method_not_allowed"
        err = ServiceError(exc.status, code, f"No route for {request.method} {request.path}")
        return json_response(
            error_body(err),
            exc.status,
            {"Allow": exc.headers.get("Allow", "")} if exc.status == 405 else None,
        )
    return response


def ws_base_url(request: web.Request) -> str:
    """``ws://host:port/v0.5`` as the client reached us."""
    scheme = "wss" if request.secure else "ws"
    return f"{scheme}://{request.host}{PREFIX}"


def _store(request: web.Request) -> LensStore:
    return request.app[STORE_KEY]


def _require(body: dict[str, Any], key: str, kind: type = str) -> Any:
    """``body[key]``; 400 when it is missing or empty, or not a ``kind`` (an id: a string)."""
    value = body.get(key)
    if value is None or value == "":
        raise ServiceError(400, "missing_parameter", f"Failed to find key: {key}")
    if not isinstance(value, kind):
        raise ServiceError(400, "invalid_parameter", f"{key} must be a {kind.__name__}")
    return value


# ---- lenses -------------------------------------------------------------------------------


@routes.get("/lens/info")
async def lens_info(request: web.Request) -> web.Response:
    store = _store(request)
    return json_response({"num_lenses": len(store.lenses), "last_updated": time.time()})


@routes.get("/lens/metadata")
async def lens_metadata(request: web.Request) -> web.Response:
    store = _store(request)
    lens_id = request.query.get("lens_id")
    lenses = [store.lens(lens_id)] if lens_id else list(store.lenses.values())
    return json_response([lens.to_wire() for lens in shard(lenses, request)])


@routes.post("/lens/register")
async def lens_register(request: web.Request) -> web.Response:
    store = _store(request)
    body = await read_json(request)
    outer = _require(body, "lens_config", object)
    if not isinstance(outer, dict):
        return json_response(
            {"is_valid": False, "error_messages": ["lens_config must be an object"]}
        )
    config = copy.deepcopy(outer)
    # The official examples nest a second lens_config inside the first (docs/protocol-notes.md).
    inner = config.pop("lens_config", None)
    if isinstance(inner, dict):
        config.update(inner)
    name = str(config.pop("lens_name", None) or "Untitled Lens")
    pipeline = config.get("model_pipeline")
    if not pipeline:
        config["model_pipeline"] = [{"processor_name": "lens_noop_processor"}]
    elif not isinstance(pipeline, list) or not all(
        isinstance(p, dict) and p.get("processor_name") for p in pipeline
    ):
        return json_response(
            {
                "is_valid": False,
                "error_messages": ["model_pipeline must be a list of {processor_name, ...}"],
            }
        )
    for step in config["model_pipeline"]:
        step.setdefault("processor_config", {})
    parameters = config.get("model_parameters") or {}
    if not isinstance(parameters, dict):
        return json_response(
            {"is_valid": False, "error_messages": ["model_parameters must be an object"]}
        )
    problems = _check_parameters(parameters)
    if problems:
        return json_response({"is_valid": False, "error_messages": problems})
    lens = LensRecord(store.new_lens_id(name), name, config)
    store.lenses[lens.lens_id] = lens
    return json_response(lens.to_wire())


def _check_parameters(params: dict[str, Any]) -> list[str]:
    problems = []
    for key in ("sensor_buffer_size", "input_frame_step_size", "window_size", "step_size"):
        value = params.get(key)
        if value is not None and (not isinstance(value, int) or value <= 0):
            problems.append(f"invalid_model_parameter: {key} must be a positive integer")
    return problems


@routes.post("/lens/clone")
async def lens_clone(request: web.Request) -> web.Response:
    store = _store(request)
    source = store.lens(_require(await read_json(request), "lens_id"))
    config = copy.deepcopy(source.lens_config)
    config["origin_lens_id"] = source.lens_id
    lens = LensRecord(store.new_lens_id(source.lens_name), source.lens_name, config)
    store.lenses[lens.lens_id] = lens
    return json_response(lens.to_wire())


@routes.post("/lens/modify")
async def lens_modify(request: web.Request) -> web.Response:
    store = _store(request)
    body = await read_json(request)
    lens = store.lens(_require(body, "lens_id"))
    if not lens.lens_modifiable:
        raise ServiceError(409, "lens_not_modifiable", f"Lens {lens.lens_id} is not modifiable")
    if body.get("lens_name"):
        lens.lens_name = str(body["lens_name"])
    if isinstance(body.get("lens_config"), dict):
        lens.lens_config = copy.deepcopy(body["lens_config"])
    # The official SDK flattens modifications into the top level of the body.
    for key, value in body.items():
        if key not in ("lens_id", "lens_name", "lens_config"):
            lens.lens_config[key] = value
    return json_response(lens.to_wire())


@routes.post("/lens/delete")
async def lens_delete(request: web.Request) -> web.Response:
    store = _store(request)
    lens = store.lens(_require(await read_json(request), "lens_id"))
    if not lens.lens_modifiable:
        raise ServiceError(
            409, "lens_not_modifiable", f"Built-in lens {lens.lens_id} cannot be deleted"
        )
    del store.lenses[lens.lens_id]
    return json_response({"is_valid": True, "lens_id": lens.lens_id, "errors": []})


# ---- sessions ------------------------------------------------------------------------------


@routes.post("/lens/sessions/create")
async def session_create(request: web.Request) -> web.Response:
    store = _store(request)
    lens = store.lens(_require(await read_json(request), "lens_id"))
    if len(store.active_sessions()) >= store.max_active_sessions:
        raise ServiceError(
            429,
            "rate_limited",
            "Concurrent session limit reached; destroy unused sessions",
            headers={"Retry-After": "1"},
        )
    session = SessionRecord(
        store.new_session_id(),
        lens.lens_id,
        lens.lens_name,
        copy.deepcopy(lens.lens_config),
        store.org_id,
        session_ttl_sec=math.ceil(store.session_ttl_sec),
    )
    store.sessions[session.session_id] = session
    return json_response(session.record(ws_base_url(request), store.api_key, enum_prefix=True))


@routes.post("/lens/sessions/destroy")
async def session_destroy(request: web.Request) -> web.Response:
    store = _store(request)
    session = store.session(_require(await read_json(request), "session_id"))
    destroy(session)
    return json_response(session.summary(ws_base_url(request)))


@routes.get("/lens/sessions/info")
async def sessions_info(request: web.Request) -> web.Response:
    store = _store(request)
    return json_response(
        {
            "num_active_sessions": len(store.active_sessions()),
            "num_sessions": len(store.sessions),
            "last_updated": time.time(),
        }
    )


@routes.get("/lens/sessions/metadata")
async def sessions_metadata(request: web.Request) -> web.Response:
    store = _store(request)
    session_id = request.query.get("session_id")
    sessions = [store.session(session_id)] if session_id else store.active_sessions()
    base = ws_base_url(request)
    return json_response([s.summary(base) for s in shard(sessions, request)])


@routes.post("/lens/sessions/events/process")
async def session_event(request: web.Request) -> web.Response:
    store = _store(request)
    body = await read_json(request)
    session = store.session(_require(body, "session_id"))
    event = _require(body, "event", object)
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise ServiceError(400, "malformed_body", "event must be {type, event_data}")
    session.start()
    reply = handle_event(
        EventContext(store, ws_base_url(request)), session, event["type"], event.get("event_data")
    )
    if reply.get("type") == "error":
        return json_response({"type": "error", "event_data": {"message": reply.get("message")}})
    if "type" not in reply:  # session.status: the record itself
        return json_response({"type": "success", "event_data": reply})
    return json_response({"type": "success", "event_data": reply.get("event_data")})


async def _expire_idle_sessions(app: web.Application) -> AsyncIterator[None]:
    """While the app runs: destroy sessions idle for longer than ``session_ttl_sec``.

    A session is idle when it received no event and ran no input stream for
    that long (docs/protocol-notes.md, row 7). Checked every quarter of the TTL
    (at most every 30 s); cancelled when the app stops.
    """
    store = app[STORE_KEY]

    def producing(session: SessionRecord) -> bool:
        runtime = session.extra.get("runtime")
        return bool(getattr(runtime, "producing", False))

    async def sweep() -> None:
        interval = min(max(store.session_ttl_sec / 4, 0.01), 30.0)
        while True:
            await asyncio.sleep(interval)
            for session in store.expired_sessions(time.time(), producing):
                log.info(
                    "session %s expired after %.0f s of inactivity",
                    session.session_id,
                    store.session_ttl_sec,
                )
                try:
                    destroy(session)
                except Exception:  # one bad session must not stop the expiry of the others
                    log.exception("expiring session %s failed", session.session_id)

    task = asyncio.get_running_loop().create_task(sweep(), name="lens-session-ttl")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def lens_app(store: LensStore, faults: Faults) -> web.Application:
    """The Lens REST API as an aiohttp application, to mount at ``/v0.5``.

    It includes the realtime routes of :mod:`aiolens.emulator.lens_realtime`.
    """
    app = web.Application(
        middlewares=[fault_middleware(faults, error_body), _auth],
        client_max_size=store.max_upload_bytes + 1024 * 1024,
    )
    app[STORE_KEY] = store
    app[FAULTS_KEY] = faults
    app.add_routes(routes)
    app.add_routes(file_routes)
    app.cleanup_ctx.append(_expire_idle_sessions)
    add_upload_routes(app, store)
    add_realtime_routes(app, store, faults, ws_base_url)
    return app
