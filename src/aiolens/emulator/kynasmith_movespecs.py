"""Kynasmith MoveSpecs over REST: catalogue, drafts, validation, versions, release, fork.

Public MoveSpecs are visible to anyone (reading them needs no token); private
ones only to their project's tokens, and to others they are 404. A version is
an immutable snapshot of the draft (SHA-256 ``content_hash``); a draft with
errors cannot become one (422 ``movespec_invalid``). Forks are idempotent with
``Idempotency-Key``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aiolens.emulator._web import ServiceError, json_response, read_json
from aiolens.emulator.kynasmith_auth import TOKEN_KEY, idempotent, required_token, state_of
from aiolens.emulator.kynasmith_store import now_iso
from aiolens.emulator.kynasmith_wire import (
    MoveSpecBody,
    ValidationResultBody,
    VersionBody,
)
from aiolens.emulator.movespec_yaml import validate_movespec_yaml

__all__ = ["movespec_routes"]

movespec_routes: web.RouteTableDef = web.RouteTableDef()


def _visible(request: web.Request, spec: MoveSpecBody) -> bool:
    token = request.get(TOKEN_KEY)
    return spec.visibility == "public" or (
        token is not None and token.project_id == spec.project_id
    )


def _spec(request: web.Request) -> MoveSpecBody:
    spec = state_of(request).movespecs.get(request.match_info["movespec_id"])
    if spec is None or not _visible(request, spec):
        raise ServiceError(404, "not_found", "MoveSpec not found")
    return spec


def _version(request: web.Request) -> VersionBody:
    version = state_of(request).versions.get(request.match_info["version_id"])
    if version is None or version.movespec_id != request.match_info["movespec_id"]:
        raise ServiceError(404, "not_found", "MoveSpec version not found")
    return version


def _invalid(field: str, message: str) -> ServiceError:
    return ServiceError(422, "validation_error", message, details={"field": field})


@movespec_routes.get("/movespecs")
async def list_movespecs(request: web.Request) -> web.Response:
    """The visible MoveSpecs, filtered by ``visibility`` and ``project_id`` when given."""
    specs = [s for s in state_of(request).movespecs.values() if _visible(request, s)]
    visibility = request.query.get("visibility")
    if visibility:
        specs = [s for s in specs if s.visibility == visibility]
    project = request.query.get("project_id")
    if project:
        specs = [s for s in specs if s.project_id == project]
    return json_response(specs)


@movespec_routes.post("/movespecs")
async def create_movespec(request: web.Request) -> web.Response:
    """A new private MoveSpec of the token's project, with an empty draft."""
    body = await read_json(request)
    token = required_token(request)
    if body.get("project_id") != token.project_id:
        raise ServiceError(403, "project_mismatch", "project_id does not match the token")
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > 255:
        raise _invalid("name", "name is required (≤255 characters)")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise _invalid("description", "description must be a string")
    return json_response(state_of(request).new_movespec(name, description, "private"), 201)


@movespec_routes.get("/movespecs/{movespec_id}")
async def get_movespec(request: web.Request) -> web.Response:
    """One MoveSpec."""
    return json_response(_spec(request))


@movespec_routes.patch("/movespecs/{movespec_id}")
async def patch_movespec(request: web.Request) -> web.Response:
    """Change ``name``, ``description`` and ``visibility`` (private or public)."""
    spec = _spec(request)
    body = await read_json(request)
    if "visibility" in body and body["visibility"] not in ("private", "public"):
        raise _invalid("visibility", "visibility must be private or public")
    if "name" in body and (not isinstance(body["name"], str) or not body["name"]):
        raise _invalid("name", "name must be a non-empty string")
    if "description" in body and not isinstance(body["description"], str | None):
        raise _invalid("description", "description must be a string")
    for key in ("name", "description", "visibility"):
        if key in body:
            setattr(spec, key, body[key])
    spec.updated_at = now_iso()
    return json_response(spec)


@movespec_routes.get("/movespecs/{movespec_id}/draft")
async def get_draft(request: web.Request) -> web.Response:
    """The MoveSpec's draft."""
    return json_response(state_of(request).drafts[_spec(request).movespec_id])


@movespec_routes.put("/movespecs/{movespec_id}/draft")
async def put_draft(request: web.Request) -> web.Response:
    """Replace the draft's whole YAML."""
    spec = _spec(request)
    body = await read_json(request)
    if not isinstance(body.get("yaml_source"), str):
        raise _invalid("yaml_source", "yaml_source is required")
    draft = state_of(request).drafts[spec.movespec_id]
    draft.yaml_source = body["yaml_source"]
    draft.updated_at = now_iso()
    draft.updated_by = "api"
    return json_response(draft)


@movespec_routes.post("/movespecs/{movespec_id}/draft/validate")
async def validate_draft(request: web.Request) -> web.Response:
    """Validate the draft: errors (which block a version) and warnings."""
    draft = state_of(request).drafts[_spec(request).movespec_id]
    _, errors, warnings = validate_movespec_yaml(draft.yaml_source)
    return json_response(
        ValidationResultBody(
            ok=not errors,
            target_type="draft",
            target_id=draft.draft_id,
            validated_at=now_iso(),
            errors=errors,
            warnings=warnings,
        )
    )


@movespec_routes.get("/movespecs/{movespec_id}/versions")
async def list_versions(request: web.Request) -> web.Response:
    """The MoveSpec's versions, oldest first."""
    spec_id = _spec(request).movespec_id
    return json_response(
        [v for v in state_of(request).versions.values() if v.movespec_id == spec_id]
    )


@movespec_routes.post("/movespecs/{movespec_id}/versions")
async def create_version(request: web.Request) -> web.Response:
    """Snapshot the draft as a new version (422 when the draft has errors)."""
    state = state_of(request)
    spec_id = _spec(request).movespec_id
    _, errors, _ = validate_movespec_yaml(state.drafts[spec_id].yaml_source)
    if errors:
        raise ServiceError(
            422,
            "movespec_invalid",
            f"The draft has {len(errors)} error(s)",
            details={"errors": len(errors), "first": errors[0].message},
        )
    return json_response(state.new_version(spec_id), 201)


@movespec_routes.get("/movespecs/{movespec_id}/versions/{version_id}")
async def get_version(request: web.Request) -> web.Response:
    """One version."""
    return json_response(_version(request))


@movespec_routes.post("/movespecs/{movespec_id}/versions/{version_id}/release")
async def release_version(request: web.Request) -> web.Response:
    """Make the version the MoveSpec's released one; answer the MoveSpec."""
    spec = _spec(request)
    spec.current_released_version_id = _version(request).movespec_version_id
    spec.updated_at = now_iso()
    return json_response(spec)


@movespec_routes.post("/movespecs/{movespec_id}/fork")
async def fork_movespec(request: web.Request) -> web.Response:
    """Copy a visible MoveSpec (and its draft) into the token's project."""
    source = _spec(request)
    state = state_of(request)
    token = required_token(request)

    async def make(body: dict[str, Any]) -> MoveSpecBody:
        if body.get("project_id") != token.project_id:
            raise ServiceError(403, "project_mismatch", "project_id does not match the token")
        spec = state.new_movespec(
            str(body.get("name") or source.name)[:255],
            body.get("description", source.description),
            "private",
        )
        state.drafts[spec.movespec_id].yaml_source = state.drafts[source.movespec_id].yaml_source
        return spec

    return await idempotent(request, make)
