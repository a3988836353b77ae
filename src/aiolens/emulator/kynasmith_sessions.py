"""Kynasmith detection sessions over REST: create, read, finalize, cancel.

Create checks the body as the SDK's request model does (``mode`` live or
replay, ``project_id`` matching the token, ``contract_major`` 1, exactly one
of ``movespec_id`` and ``movespec_version_id``), resolves the MoveSpec's
released version and answers 201 with the stream URL and a JWT-shaped runtime
token. Finalize answers the record in ``finalizing`` and completes the session
right after; cancel answers it ``cancelled``. Both tell attached sockets.
Acting on a terminal session is 409 ``session_terminal``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aiolens.emulator._web import ServiceError, json_response
from aiolens.emulator.detector import RepetitionDetector
from aiolens.emulator.kynasmith_auth import TOKEN_KEY, idempotent, required_token, state_of
from aiolens.emulator.kynasmith_realtime import announce, finish
from aiolens.emulator.kynasmith_store import DetectionSession, KynasmithState, new_uuid
from aiolens.emulator.kynasmith_wire import (
    CONTRACT_MAJOR,
    EVENT_SCHEMA,
    POSE_SCHEMA,
    TERMINAL,
    SessionCreatedBody,
)
from aiolens.emulator.movespec_yaml import MoveSpecDefinition, validate_movespec_yaml

__all__ = ["session_routes"]

session_routes: web.RouteTableDef = web.RouteTableDef()


def _record_response(request: web.Request, session: DetectionSession) -> web.Response:
    record = session.record(state_of(request).organization_id)
    return json_response(record)


def _definition(state: KynasmithState, version_id: str) -> MoveSpecDefinition:
    definition, errors, _ = validate_movespec_yaml(state.versions[version_id].yaml_source)
    if definition is None:
        raise ServiceError(409, "movespec_invalid", f"MoveSpec version has {len(errors)} errors")
    return definition


def _resolve_version(state: KynasmithState, body: dict[str, Any]) -> str:
    """The MoveSpec version a create body names (exactly one reference)."""
    spec_id, version_id = body.get("movespec_id"), body.get("movespec_version_id")
    if bool(spec_id) == bool(version_id):
        raise ServiceError(
            422,
            "validation_error",
            "Give exactly one of movespec_id and movespec_version_id",
            details={"field": "movespec_id"},
        )
    if spec_id:
        spec = state.movespecs.get(spec_id) if isinstance(spec_id, str) else None
        if spec is None:
            raise ServiceError(404, "not_found", f"MoveSpec {spec_id} not found")
        if spec.current_released_version_id is None:
            raise ServiceError(409, "movespec_not_released", "The MoveSpec has no release")
        return spec.current_released_version_id
    if not isinstance(version_id, str) or version_id not in state.versions:
        raise ServiceError(404, "not_found", f"MoveSpec version {version_id} not found")
    return version_id


@session_routes.post("/detection/sessions")
async def create_session(request: web.Request) -> web.Response:
    """``POST /api/detection/sessions`` (idempotent with ``Idempotency-Key``)."""
    state = state_of(request)
    token = required_token(request)

    async def make(body: dict[str, Any]) -> SessionCreatedBody:
        mode = body.get("mode")
        if mode not in ("live", "replay"):
            raise ServiceError(
                422, "validation_error", "mode must be live or replay", details={"field": "mode"}
            )
        if body.get("project_id") != token.project_id:
            raise ServiceError(403, "project_mismatch", "project_id does not match the token")
        major = body.get("contract_major", CONTRACT_MAJOR)
        if major != CONTRACT_MAJOR:
            raise ServiceError(
                409,
                "contract_version_unsupported",
                f"contract_major {major} is not supported",
                retryable=False,
                details={"supported_contract_major": CONTRACT_MAJOR},
            )
        version_id = _resolve_version(state, body)
        session_id = new_uuid()
        runtime_token, runtime_expires_at = state.mint_runtime_token(session_id, token.project_id)
        session = DetectionSession(
            session_id,
            token.project_id,
            mode,
            version_id,
            _definition(state, version_id),
            runtime_token,
            runtime_expires_at,
        )
        session.detector = RepetitionDetector(session.definition, session_id)
        state.sessions[session_id] = session
        scheme = "wss" if request.secure else "ws"
        return SessionCreatedBody(
            session_id=session_id,
            project_id=token.project_id,
            status="created",
            mode=mode,
            resolved_movespec_version_id=version_id,
            stream_url=f"{scheme}://{request.host}/api/detection/sessions/{session_id}/stream",
            runtime_token=runtime_token,
            input_schema_version=POSE_SCHEMA,
            output_schema_version=EVENT_SCHEMA,
        )

    return await idempotent(request, make)


def _session(request: web.Request) -> DetectionSession:
    session = state_of(request).sessions.get(request.match_info["session_id"])
    token = request.get(TOKEN_KEY)
    if session is None or (token is not None and token.project_id != session.project_id):
        raise ServiceError(404, "not_found", "Detection session not found")
    return session


@session_routes.get("/detection/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    """The stored session record."""
    return _record_response(request, _session(request))


@session_routes.post("/detection/sessions/{session_id}/finalize")
async def finalize_session(request: web.Request) -> web.Response:
    """Move the session to ``finalizing`` (the answer) and complete it right after."""
    session = _session(request)
    if session.status in TERMINAL:
        raise ServiceError(409, "session_terminal", f"Session is already {session.status}")
    session.status = "finalizing"
    answer = _record_response(request, session)
    await announce(session, finish(session, "completed"))
    return answer


@session_routes.post("/detection/sessions/{session_id}/cancel")
async def cancel_session(request: web.Request) -> web.Response:
    """Cancel the session (again on a cancelled one is a no-op); answer its record."""
    session = _session(request)
    if session.status in ("completed", "failed"):
        raise ServiceError(409, "session_terminal", f"Session is already {session.status}")
    await announce(session, finish(session, "cancelled"))
    return _record_response(request, session)
