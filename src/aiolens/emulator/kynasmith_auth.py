"""Kynasmith auth and admission: token exchange, scopes, rate limits, the error envelope.

Scopes per route follow the reference pages, and where the vendor SDK asks
for another scope the emulator accepts that one too: reading a detection
session needs ``sessions:read`` per the docs, but SDK 0.1.0 mints its token
with ``projects:read`` for that call, so either grants it.

The middlewares here run for every ``/api`` request, outermost first:
:func:`tap_middleware` (hands each answer to the wire taps),
:func:`request_id_middleware` (``X-Request-ID`` on every answer), the fault
middleware (errors as ``{"error": {...}}``, aiohttp's own 404/405 included),
then :func:`auth_middleware` (bearer token, scope, rate-limit windows with
``RateLimit-*`` headers and ``Retry-After`` on 429). Creates go through
:func:`idempotent` (the ``Idempotency-Key`` header).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from aiohttp import web

from aiolens.emulator._web import INJECTED_FAULT, ServiceError, json_response, read_json
from aiolens.emulator.kynasmith_store import KynasmithState, Token
from aiolens.emulator.kynasmith_wire import AccessTokenBody, ErrorBody, ErrorEnvelope, encode
from aiolens.emulator.wire_tap import WireItem, emit, tapped

__all__ = [
    "ALL_SCOPES",
    "KYNASMITH_KEY",
    "TOKEN_KEY",
    "auth_middleware",
    "auth_routes",
    "error_envelope",
    "idempotent",
    "request_id_middleware",
    "required_token",
    "state_of",
    "tap_middleware",
]

ALL_SCOPES: Final = (
    "movespecs:read", "movespecs:write", "sessions:read", "sessions:write", "tokens:read",
    "projects:read",
)  # fmt: skip

KYNASMITH_KEY: Final = web.AppKey("kynasmith_state", KynasmithState)
TOKEN_KEY: Final[web.RequestKey[Token | None]] = web.RequestKey("kynasmith_token")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def state_of(request: web.Request) -> KynasmithState:
    """The Kynasmith state of the app serving ``request``."""
    return request.app[KYNASMITH_KEY]


def required_token(request: web.Request) -> Token:
    """The request's access token.

    Raises:
        ServiceError: 401 ``access_token_missing`` on a public route called without one.
    """
    token: Token | None = request.get(TOKEN_KEY)
    if token is None:
        raise ServiceError(401, "access_token_missing", "Missing Authorization: Bearer <token>")
    return token


def error_envelope(err: ServiceError) -> dict[str, Any]:
    """The ``{"error": {code, message, retryable, details}}`` body for ``err``."""
    details = {k: v if isinstance(v, str | int | float | bool | None) else str(v)
               for k, v in err.details.items()}  # fmt: skip
    envelope = ErrorEnvelope(ErrorBody(err.code, err.message, err.retryable, details))
    return {"error": envelope.error}


def _scopes_for(request: web.Request) -> tuple[frozenset[str] | None, str]:
    """(any one of these scopes is needed, or None for public; the rate-limit bucket)."""
    path, method = request.path, request.method
    if path.startswith("/api/movespecs"):
        read = method == "GET"
        public = read and (path == "/api/movespecs" or path.count("/") == 3)
        scope = None if public else "movespecs:read" if read else "movespecs:write"
        return (None if scope is None else frozenset({scope})), "movespecs"
    if path.startswith("/api/detection/sessions"):
        if method == "POST" and path == "/api/detection/sessions":
            return frozenset({"sessions:write"}), "sessions"
        if method == "GET":
            return frozenset({"sessions:read", "projects:read"}), ""
        return frozenset({"sessions:write"}), ""
    return None, ""


def _authenticate(
    request: web.Request, state: KynasmithState, needed: frozenset[str] | None
) -> Token | None:
    if request.path.endswith("/stream") or request.path in (
        "/api/auth/access-tokens",
        "/api/health",
    ):
        return None
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        if needed is None:
            return None
        raise ServiceError(401, "access_token_missing", "Missing Authorization: Bearer <token>")
    token = state.tokens.get(header[7:])
    if token is None:
        raise ServiceError(401, "access_token_invalid", "The access token is invalid")
    if token.expires_at <= time.monotonic():
        raise ServiceError(401, "access_token_expired", "The access token expired", retryable=True)
    if needed is not None and not needed & token.scopes:
        wanted = " or ".join(sorted(needed))
        raise ServiceError(
            403,
            "insufficient_scope",
            f"The token lacks scope {wanted}",
            details={"required_scope": wanted},
        )
    return token


@web.middleware
async def tap_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hand every JSON answer but injected faults to the wire taps (:mod:`.wire_tap`)."""
    response = await handler(request)
    if (
        tapped()
        and isinstance(response, web.Response)
        and isinstance(response.body, bytes)
        and not request.get(INJECTED_FAULT)
    ):
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else request.path
        emit(
            WireItem(
                "kynasmith", "rest", f"{request.method} {route}", response.status, response.body
            )
        )
    return response


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Put ``X-Request-ID`` on every answer (aiohttp's own 404 / 405 as an error envelope)."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = "not_found" if exc.status == 404 else "method_not_allowed"
        response = json_response(
            error_envelope(ServiceError(exc.status, code, exc.reason)), exc.status
        )
    if not response.prepared:
        response.headers["X-Request-ID"] = f"req_{secrets.token_hex(8)}"
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, check the scope and count the request in its rate-limit windows."""
    state = state_of(request)
    needed, bucket = _scopes_for(request)
    token = _authenticate(request, state, needed)
    headers: dict[str, str] = {}
    if token is not None:
        for name in ("project", "organization", bucket):
            if not name:
                continue
            key = "org" if name == "organization" else token.project_id
            ok, limit, remaining, reset = state.allow(f"{name}:{key}", name)
            wait = max(1, round(reset))
            headers.update(
                {
                    "RateLimit-Limit": str(limit),
                    "RateLimit-Remaining": str(remaining),
                    "RateLimit-Reset": str(wait),
                }
            )
            if not ok:
                raise ServiceError(
                    429,
                    "rate_limited",
                    f"Too many requests. Retry after {wait} seconds.",
                    details={"retry_after_seconds": wait},
                    headers={**headers, "Retry-After": str(wait)},
                )
    request[TOKEN_KEY] = token
    response = await handler(request)
    if not response.prepared:
        response.headers.update(headers)
    return response


auth_routes: web.RouteTableDef = web.RouteTableDef()


@auth_routes.get("/health")
async def health(request: web.Request) -> web.Response:
    """``GET /api/health``: ``{"status": "ok"}`` (the path is inferred)."""
    return json_response({"status": "ok"})


@auth_routes.post("/auth/access-tokens")
async def mint_token(request: web.Request) -> web.Response:
    """Exchange the API key (combined, or the legacy id + secret pair) for an access token."""
    state = state_of(request)
    body = await read_json(request)
    key = body.get("api_key")
    if key is None and body.get("api_key_id") and body.get("api_key_secret"):
        key = f"{body['api_key_id']}:{body['api_key_secret']}"
    if not isinstance(key, str) or not secrets.compare_digest(key, state.api_key):
        raise ServiceError(401, "api_key_invalid", "Unknown or revoked API key")
    project = body.get("project_id") or state.project_id
    if project != state.project_id:
        raise ServiceError(403, "project_mismatch", "project_id does not match the credential")
    scopes = body.get("scopes") or list(ALL_SCOPES)
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ServiceError(
            422, "validation_error", "scopes must be a list of strings", details={"field": "scopes"}
        )
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise ServiceError(
            422, "validation_error", f"Unknown scopes: {unknown}", details={"field": "scopes"}
        )
    answer = AccessTokenBody(
        access_token=state.mint_access_token(project, scopes),
        token_type="Bearer",
        expires_in_seconds=state.token_lifetime(),
        organization_id=state.organization_id,
        project_id=project,
        scopes=scopes,
    )
    return json_response(answer)


async def idempotent(
    request: web.Request, make: Callable[[dict[str, Any]], Awaitable[msgspec.Struct]]
) -> web.Response:
    """Answer 201 with ``make(body)``, run once per ``Idempotency-Key``.

    Keys are kept per project. The stored request is the method, path and
    body: the same key again → the stored answer (``Idempotent-Replayed:
    true``); the same key on another endpoint (a fork of another MoveSpec …)
    or with another body → 409 ``conflict`` with ``details.reason =
    "idempotency_key_reuse"``, never someone else's answer.
    """
    state = state_of(request)
    raw = await request.read()
    body = await read_json(request)
    header = request.headers.get("Idempotency-Key")
    token = request.get(TOKEN_KEY)
    key = f"{token.project_id if token else ''}:{header}"
    fingerprint = hashlib.sha256(f"{request.method} {request.path}\n".encode() + raw).digest()
    if header:
        stored = state.idempotency.get(key)
        if stored is not None:
            digest, status, answer = stored
            if digest != fingerprint:
                raise ServiceError(
                    409,
                    "conflict",
                    "Idempotency-Key reused for another request",
                    details={"reason": "idempotency_key_reuse"},
                )
            return web.Response(
                body=answer,
                status=status,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
    answer = encode(await make(body))
    if header:
        state.idempotency[key] = (fingerprint, 201, answer)
    return web.Response(body=answer, status=201, content_type="application/json")
