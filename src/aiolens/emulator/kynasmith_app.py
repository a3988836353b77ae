"""The emulated Kynasmith Detection API (PROTOCOL Part B), as an aiohttp sub-app at ``/api``.

In memory: machine credentials and short-lived tokens with scopes and expiry;
detection sessions and their lifecycle; the realtime socket, which validates
frames and runs the session's MoveSpec through the real detector; MoveSpecs
with drafts, validation, immutable versions (SHA-256 content hash), release
and fork; sliding-window rate limits with ``RateLimit-*`` headers; idempotent
creates (same ``Idempotency-Key`` and body → the stored answer; same key,
other body → 409 ``conflict``). Every answer carries ``X-Request-ID``.

Seeded: public MoveSpecs ``squat`` and ``lunge`` with a released version each.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from aiohttp import WSMsgType, web

from aiolens.emulator._web import (
    ServiceError,
    fault_middleware,
    json_response,
    new_id,
    read_json,
)
from aiolens.emulator.detector import RepetitionDetector
from aiolens.emulator.faults import Faults
from aiolens.emulator.movespec_yaml import (
    LUNGE_YAML,
    SQUAT_YAML,
    MoveSpecDefinition,
    validate_movespec_yaml,
)
from aiolens.kynasmith.models import (
    CONTRACT_MAJOR_VERSION,
    INPUT_SCHEMA_VERSION,
    OUTPUT_SCHEMA_VERSION,
    TERMINAL_STATUSES,
    Cancel,
    Finalize,
    FrameBatch,
    Ping,
    Pong,
    PoseFrame,
    client_message_decoder,
    encoder,
    validate_frame,
)

__all__ = ["KYNASMITH_KEY", "KynasmithState", "kynasmith_app"]

ALL_SCOPES: Final = (
    "movespecs:read", "movespecs:write", "sessions:read", "sessions:write", "tokens:read",
    "projects:read",
)  # fmt: skip
DEFAULT_LIMITS: Final = {"project": 100, "organization": 500, "sessions": 10, "movespecs": 60}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Token:
    project_id: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class DetectionSession:
    session_id: str
    project_id: str
    mode: str
    version_id: str
    definition: MoveSpecDefinition
    runtime_token: str
    status: str = "created"
    accepted_frames_total: int = 0
    last_frame_seq: int = 0
    last_batch_seq: int = 0
    replies: dict[int, list[dict[str, Any] | bytes]] = field(default_factory=dict)
    """Every batch's replies, replayed whole when a batch is re-sent after a reconnect."""
    started_at: str | None = None
    ended_at: str | None = None
    terminal_outcome: str | None = None
    detector: RepetitionDetector | None = None
    sockets: set[web.WebSocketResponse] = field(default_factory=set, repr=False)
    """Realtime sockets attached now; told when the session ends over REST."""

    def record(self, org: str) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "organization_id": org,
            "project_id": self.project_id,
            "mode": self.mode,
            "status": self.status,
            "resolved_movespec_version_id": self.version_id,
            "accepted_frames_total": self.accepted_frames_total,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "terminal_outcome": self.terminal_outcome,
            "error_code": None,
            "error_message": None,
        }

    def end(self, status: str) -> None:
        if self.status not in TERMINAL_STATUSES:
            self.status = status
            self.ended_at = now_iso()
            self.terminal_outcome = status


@dataclass
class KynasmithState:
    """Everything the emulated Kynasmith API remembers.

    Args:
        api_key: the accepted ``<key_id>:<key_secret>`` credential.
        token_ttl: seconds an access token lives.
        limits: requests per rolling minute: ``project``, ``organization``,
            ``sessions`` (session creation) and ``movespecs``.
    """

    api_key: str
    project_id: str = "proj_emulator"
    organization_id: str = "org_emulator"
    token_ttl: float = 900.0
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    tokens: dict[str, Token] = field(default_factory=dict)
    sessions: dict[str, DetectionSession] = field(default_factory=dict)
    movespecs: dict[str, dict[str, Any]] = field(default_factory=dict)
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, tuple[bytes, int, bytes]] = field(default_factory=dict)
    windows: dict[str, deque[float]] = field(default_factory=dict)
    tokens_minted: int = 0

    def __post_init__(self) -> None:
        for yaml_source in (SQUAT_YAML, LUNGE_YAML):
            definition, _, _ = validate_movespec_yaml(yaml_source)
            assert definition is not None
            spec = self.new_movespec(definition.name, "Seeded by the emulator", "public")
            self.drafts[spec["movespec_id"]]["yaml_source"] = yaml_source
            version = self.new_version(spec["movespec_id"])
            spec["current_released_version_id"] = version["movespec_version_id"]

    def new_movespec(self, name: str, description: str | None, visibility: str) -> dict[str, Any]:
        movespec_id = new_id("ms_")
        stamp = now_iso()
        spec = {
            "movespec_id": movespec_id,
            "project_id": self.project_id,
            "organization_id": self.organization_id,
            "name": name,
            "description": description,
            "visibility": visibility,
            "current_released_version_id": None,
            "created_at": stamp,
            "updated_at": stamp,
            "archived_at": None,
            "star_count": 0,
            "created_by": "emulator",
        }
        self.movespecs[movespec_id] = spec
        self.drafts[movespec_id] = {
            "draft_id": new_id("dr_"),
            "movespec_id": movespec_id,
            "yaml_source": f"name: {name}\n",
            "updated_by": None,
            "updated_at": stamp,
        }
        return spec

    def new_version(self, movespec_id: str) -> dict[str, Any]:
        source = self.drafts[movespec_id]["yaml_source"]
        number = 1 + sum(v["movespec_id"] == movespec_id for v in self.versions.values())
        version = {
            "movespec_version_id": new_id("msv_"),
            "movespec_id": movespec_id,
            "version_number": number,
            "yaml_source": source,
            "content_hash": hashlib.sha256(source.encode()).hexdigest(),
            "created_at": now_iso(),
            "created_by": "emulator",
        }
        self.versions[version["movespec_version_id"]] = version
        return version

    def allow(self, bucket: str, limit_name: str) -> tuple[bool, int, int, float]:
        """Count one request; returns (allowed, limit, remaining, reset seconds)."""
        limit = self.limits.get(limit_name, 10**9)
        window = self.windows.setdefault(bucket, deque())
        now = time.monotonic()
        while window and window[0] <= now - 60.0:
            window.popleft()
        reset = 60.0 - (now - window[0]) if window else 60.0
        if len(window) >= limit:
            return False, limit, 0, reset
        window.append(now)
        return True, limit, limit - len(window), reset


def _error(err: ServiceError) -> dict[str, Any]:
    return {
        "error": {
            "code": err.code,
            "message": err.message,
            "retryable": err.retryable,
            "details": err.details,
        }
    }


def _state(request: web.Request) -> KynasmithState:
    state: KynasmithState = request.app[KYNASMITH_KEY]
    return state


def _scopes_for(request: web.Request) -> tuple[str | None, str]:
    """(scope needed or None for public, rate-limit bucket)."""
    path, method = request.path, request.method
    if path.startswith("/api/movespecs"):
        read = method == "GET"
        public = read and (path == "/api/movespecs" or path.count("/") == 3)
        return (None if public else "movespecs:read" if read else "movespecs:write"), "movespecs"
    if path.startswith("/api/detection/sessions"):
        if method == "POST" and path == "/api/detection/sessions":
            return "sessions:write", "sessions"
        return ("sessions:read" if method == "GET" else "sessions:write"), ""
    return None, ""


@web.middleware
async def _request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        response.headers["X-Request-ID"] = f"req_{secrets.token_hex(8)}"
    return response


@web.middleware
async def _auth_and_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = _state(request)
    scope, bucket = _scopes_for(request)
    token = _authenticate(request, state, scope)
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


def _authenticate(request: web.Request, state: KynasmithState, scope: str | None) -> Token | None:
    header = request.headers.get("Authorization", "")
    if request.path.endswith("/stream") or request.path in (
        "/api/auth/access-tokens",
        "/api/health",
    ):
        return None
    if not header.startswith("Bearer "):
        if scope is None:
            return None
        raise ServiceError(401, "access_token_missing", "Missing Authorization: Bearer <token>")
    token = state.tokens.get(header[7:])
    if token is None:
        raise ServiceError(401, "access_token_invalid", "The access token is invalid")
    if token.expires_at <= time.monotonic():
        raise ServiceError(401, "access_token_expired", "The access token expired", retryable=True)
    if scope is not None and scope not in token.scopes:
        raise ServiceError(
            403,
            "insufficient_scope",
            f"The token lacks scope {scope}",
            details={"required_scope": scope},
        )
    return token


routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.post("/auth/access-tokens")
async def mint_token(request: web.Request) -> web.Response:
    state = _state(request)
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
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise ServiceError(
            422, "validation_error", f"Unknown scopes: {unknown}", details={"field": "scopes"}
        )
    token = f"kst_{secrets.token_urlsafe(24)}"
    state.tokens[token] = Token(project, frozenset(scopes), time.monotonic() + state.token_ttl)
    state.tokens_minted += 1
    return json_response(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in_seconds": state.token_ttl,
            "organization_id": state.organization_id,
            "project_id": project,
            "scopes": scopes,
        }
    )


async def _idempotent(
    request: web.Request, make: Callable[[dict[str, Any]], Awaitable[Any]]
) -> web.Response:
    """Run ``make`` once per ``Idempotency-Key``.

    Keys are kept per project. The stored request is the method, path and
    body: the same key on another endpoint (a fork of another MoveSpec …) or
    with another body is a 409 ``conflict``, never someone else's answer.
    """
    state = _state(request)
    raw = await request.read()
    body = await read_json(request)
    header = request.headers.get("Idempotency-Key")
    token: Token | None = request.get(TOKEN_KEY)
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
    result = await make(body)
    answer = encoder.encode(result)
    if header:
        state.idempotency[key] = (fingerprint, 201, answer)
    return web.Response(body=answer, status=201, content_type="application/json")


def _definition(state: KynasmithState, version_id: str) -> MoveSpecDefinition:
    version = state.versions[version_id]
    definition, errors, _ = validate_movespec_yaml(version["yaml_source"])
    if definition is None:
        raise ServiceError(409, "movespec_invalid", f"MoveSpec version has {len(errors)} errors")
    return definition


@routes.post("/detection/sessions")
async def create_session(request: web.Request) -> web.Response:
    state = _state(request)
    token = _token(request)

    async def make(body: dict[str, Any]) -> dict[str, Any]:
        mode = body.get("mode")
        if mode not in ("live", "replay"):
            raise ServiceError(
                422, "validation_error", "mode must be live or replay", details={"field": "mode"}
            )
        if body.get("project_id") != token.project_id:
            raise ServiceError(403, "project_mismatch", "project_id does not match the token")
        major = body.get("contract_major", CONTRACT_MAJOR_VERSION)
        if major != CONTRACT_MAJOR_VERSION:
            raise ServiceError(
                409,
                "contract_version_unsupported",
                f"contract_major {major} is not supported",
                retryable=False,
                details={"supported_contract_major": CONTRACT_MAJOR_VERSION},
            )
        spec_id, version_id = body.get("movespec_id"), body.get("movespec_version_id")
        if bool(spec_id) == bool(version_id):
            raise ServiceError(
                422,
                "validation_error",
                "Give exactly one of movespec_id and movespec_version_id",
                details={"field": "movespec_id"},
            )
        if spec_id:
            spec = state.movespecs.get(spec_id)
            if spec is None:
                raise ServiceError(404, "not_found", f"MoveSpec {spec_id} not found")
            version_id = spec["current_released_version_id"]
            if version_id is None:
                raise ServiceError(409, "movespec_not_released", "The MoveSpec has no release")
        elif version_id not in state.versions:
            raise ServiceError(404, "not_found", f"MoveSpec version {version_id} not found")
        session_id = new_id("sess_")
        session = DetectionSession(
            session_id,
            token.project_id,
            mode,
            version_id,
            _definition(state, version_id),
            f"krt_{secrets.token_urlsafe(24)}",
        )
        session.detector = RepetitionDetector(session.definition, session_id)
        state.sessions[session_id] = session
        scheme = "wss" if request.secure else "ws"
        return {
            "session_id": session_id,
            "project_id": token.project_id,
            "status": "created",
            "mode": mode,
            "resolved_movespec_version_id": version_id,
            "stream_url": f"{scheme}://{request.host}/api/detection/sessions/{session_id}/stream",
            "runtime_token": session.runtime_token,
            "input_schema_version": INPUT_SCHEMA_VERSION,
            "output_schema_version": OUTPUT_SCHEMA_VERSION,
        }

    return await _idempotent(request, make)


def _token(request: web.Request) -> Token:
    token: Token | None = request.get(TOKEN_KEY)
    if token is None:
        raise ServiceError(401, "access_token_missing", "Missing Authorization: Bearer <token>")
    return token


def _session(request: web.Request) -> DetectionSession:
    state = _state(request)
    session = state.sessions.get(request.match_info["session_id"])
    token: Token | None = request.get(TOKEN_KEY)
    if session is None or (token is not None and token.project_id != session.project_id):
        raise ServiceError(404, "not_found", "Detection session not found")
    return session


@routes.get("/detection/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    return json_response(_session(request).record(_state(request).organization_id))


@routes.post("/detection/sessions/{session_id}/finalize")
async def finalize_session(request: web.Request) -> web.Response:
    """Move the session to ``finalizing`` (the answer) and complete it right after (§B.5.3)."""
    session = _session(request)
    if session.status in TERMINAL_STATUSES:
        raise ServiceError(409, "session_terminal", f"Session is already {session.status}")
    session.status = "finalizing"
    answer = json_response(session.record(_state(request).organization_id))
    await _announce(session, _finish(session, "completed"))
    return answer


@routes.post("/detection/sessions/{session_id}/cancel")
async def cancel_session(request: web.Request) -> web.Response:
    session = _session(request)
    if session.status in ("completed", "failed"):
        raise ServiceError(409, "session_terminal", f"Session is already {session.status}")
    await _announce(session, _finish(session, "cancelled"))
    return json_response(session.record(_state(request).organization_id))


async def _announce(session: DetectionSession, replies: list[dict[str, Any] | bytes]) -> None:
    """Tell the sockets attached to a session that REST ended it, then close them."""
    for ws in list(session.sockets):
        try:
            for reply in replies:
                await ws.send_str(reply.decode() if isinstance(reply, bytes) else _msg(reply))
            await ws.close(code=1000)
        except (ConnectionError, RuntimeError):  # it is closing already
            pass


@routes.get("/detection/sessions/{session_id}/stream")
async def stream(request: web.Request) -> web.WebSocketResponse:
    state = _state(request)
    faults: Faults = request.app[FAULTS_KEY]
    session = state.sessions.get(request.match_info["session_id"])
    supplied = request.query.get("runtime_token") or request.headers.get(
        "Authorization", ""
    ).removeprefix("Bearer ")
    ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024 * 1024)
    await ws.prepare(request)
    if session is None or not secrets.compare_digest(supplied, session.runtime_token):
        await ws.send_str(
            _msg(
                {
                    "type": "error",
                    "error": {
                        "code": "access_token_invalid",
                        "message": "Bad runtime token or session",
                        "retryable": False,
                        "details": {},
                    },
                }
            )
        )
        await ws.close(code=1008)
        return ws
    sent = 0

    async def send(message: dict[str, Any] | bytes) -> bool:
        nonlocal sent
        await ws.send_str(message.decode() if isinstance(message, bytes) else _msg(message))
        sent += 1
        if faults.ws_drop_after is not None and sent >= faults.ws_drop_after:
            if request.transport is not None:
                request.transport.abort()
            return False
        return True

    session.sockets.add(ws)
    try:
        await _serve_socket(ws, session, faults, send)
    finally:
        session.sockets.discard(ws)
    return ws


async def _serve_socket(
    ws: web.WebSocketResponse,
    session: DetectionSession,
    faults: Faults,
    send: Callable[[dict[str, Any] | bytes], Awaitable[bool]],
) -> None:
    """Answer one attached socket's messages until it closes or the session ends."""
    await send(_update(session))
    message: FrameBatch | Finalize | Cancel | Ping | Pong | _LooseBatch | None
    async for msg in ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        try:
            message = client_message_decoder.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            message = _loose_batch(msg.data)  # a batch with frames of the wrong shape
            if message is None:
                if not await send(_err("validation_error", f"Malformed message: {exc}")):
                    break
                continue
        if faults.reply_delay:
            await asyncio.sleep(faults.reply_delay)
        if isinstance(message, FrameBatch):
            replies = _batch(session, message.batch_seq, message.frames)
        elif isinstance(message, _LooseBatch):
            replies = _batch(session, message.batch_seq, [_frame(raw) for raw in message.frames])
        elif isinstance(message, Ping):
            replies = [{"type": "pong"}]
        elif isinstance(message, Pong):
            replies = []
        elif isinstance(message, Finalize | Cancel):
            replies = _finish(
                session, "completed" if isinstance(message, Finalize) else "cancelled"
            )
        else:  # pragma: no cover - the union is exhaustive
            replies = []
        fail_after = faults.detection_fail_after
        if (
            fail_after is not None
            and session.accepted_frames_total >= fail_after
            and session.status not in TERMINAL_STATUSES
        ):
            failure = _err("internal_error", "Injected fault: the detection pipeline failed")
            replies = [*replies, failure, *_finish(session, "failed", failure["error"])]
        alive = True
        for reply in replies:
            if not (alive := await send(reply)):
                break
        if not alive:
            break
        if session.status in TERMINAL_STATUSES:
            await ws.close(code=1000)
            break


def _msg(message: dict[str, Any]) -> str:
    return encoder.encode(message).decode()


def _err(code: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"code": code, "message": message, "retryable": False, "details": {}},
    }


def _update(session: DetectionSession) -> dict[str, Any]:
    return {
        "type": "session_update",
        "session_id": session.session_id,
        "status": session.status,
        "accepted_frames_total": session.accepted_frames_total,
        "terminal_outcome": session.terminal_outcome,
    }


class _LooseBatch(msgspec.Struct, tag_field="type", tag="frame_batch"):
    """A ``frame_batch`` whose frames are decoded one by one (see :func:`_loose_batch`)."""

    batch_seq: int
    frames: list[msgspec.Raw]


_loose_batch_decoder: Final = msgspec.json.Decoder(_LooseBatch)
_frame_decoder: Final = msgspec.json.Decoder(PoseFrame)


def _loose_batch(data: str | bytes) -> _LooseBatch | None:
    """A batch that failed strict decoding only because of some frames, else ``None``.

    Such frames are rejected one by one (listed in ``rejected_frame_indexes``)
    instead of failing the whole batch.
    """
    try:
        return _loose_batch_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _frame(raw: msgspec.Raw) -> PoseFrame | None:
    try:
        return _frame_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _batch(
    session: DetectionSession, batch_seq: int, frames: list[PoseFrame] | list[PoseFrame | None]
) -> list[dict[str, Any] | bytes]:
    """Process one batch; ``None`` frames (undecodable) are rejected."""
    if session.status in TERMINAL_STATUSES:
        return [_err("session_terminal", f"Session is {session.status}")]
    if batch_seq in session.replies:  # re-sent after a reconnect: replay, never recount
        return session.replies[batch_seq]
    if batch_seq <= session.last_batch_seq:
        return [_err("validation_error", f"batch_seq {batch_seq} does not increase")]
    replies: list[dict[str, Any] | bytes] = []
    if session.status == "created":
        session.status = "streaming"
        session.started_at = now_iso()
        replies.append(_update(session))
    session.last_batch_seq = batch_seq
    rejected, events = [], []
    assert session.detector is not None
    for index, frame in enumerate(frames):
        seq = None if frame is None else frame.frame_seq
        if frame is None or seq is None or seq <= session.last_frame_seq or validate_frame(frame):
            rejected.append(index)
            continue
        session.last_frame_seq = seq
        session.accepted_frames_total += 1
        events.extend(session.detector.process(frame))
    stored: list[dict[str, Any] | bytes] = []
    if events:
        stored.append({"type": "event_batch", "batch_seq": batch_seq, "events": events})
    stored.append(
        encoder.encode(
            {
                "type": "frame_ack",
                "batch_seq": batch_seq,
                "accepted_frame_count": len(frames) - len(rejected),
                "accepted_frames_total": session.accepted_frames_total,
                "rejected_frame_indexes": rejected,
            }
        )
    )
    session.replies[batch_seq] = stored
    return replies + stored


def _finish(
    session: DetectionSession, status: str, error: dict[str, Any] | None = None
) -> list[dict[str, Any] | bytes]:
    replies: list[dict[str, Any] | bytes] = []
    if session.status not in TERMINAL_STATUSES and status == "completed":
        session.status = "finalizing"
        replies.append(_update(session))
    session.end(status)
    replies.append(
        {
            "type": "session_done",
            "session_id": session.session_id,
            "status": session.status,
            "accepted_frames_total": session.accepted_frames_total,
            "terminal_outcome": session.terminal_outcome,
            "error": error,
        }
    )
    return replies


# ---- MoveSpecs ----------------------------------------------------------------------------


def _visible(request: web.Request, spec: dict[str, Any]) -> bool:
    """Public MoveSpecs are visible to anyone; others only to their project's tokens."""
    token: Token | None = request.get(TOKEN_KEY)
    return spec["visibility"] == "public" or (
        token is not None and token.project_id == spec["project_id"]
    )


def _spec(request: web.Request) -> dict[str, Any]:
    spec = _state(request).movespecs.get(request.match_info["movespec_id"])
    if spec is None or not _visible(request, spec):
        raise ServiceError(404, "not_found", "MoveSpec not found")
    return spec


@routes.get("/movespecs")
async def list_movespecs(request: web.Request) -> web.Response:
    specs = [s for s in _state(request).movespecs.values() if _visible(request, s)]
    visibility = request.query.get("visibility")
    if visibility:
        specs = [s for s in specs if s["visibility"] == visibility]
    project = request.query.get("project_id")
    if project:
        specs = [s for s in specs if s["project_id"] == project]
    return json_response(specs)


@routes.post("/movespecs")
async def create_movespec(request: web.Request) -> web.Response:
    body = await read_json(request)
    token = _token(request)
    if body.get("project_id") != token.project_id:
        raise ServiceError(403, "project_mismatch", "project_id does not match the token")
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > 255:
        raise ServiceError(
            422, "validation_error", "name is required (≤255 characters)", details={"field": "name"}
        )
    spec = _state(request).new_movespec(name, body.get("description"), "private")
    return json_response(spec, 201)


@routes.get("/movespecs/{movespec_id}")
async def get_movespec(request: web.Request) -> web.Response:
    return json_response(_spec(request))


@routes.patch("/movespecs/{movespec_id}")
async def patch_movespec(request: web.Request) -> web.Response:
    spec = _spec(request)
    body = await read_json(request)
    if "visibility" in body and body["visibility"] not in ("private", "public"):
        raise ServiceError(
            422,
            "validation_error",
            "visibility must be private or public",
            details={"field": "visibility"},
        )
    for key in ("name", "description", "visibility"):
        if key in body:
            spec[key] = body[key]
    spec["updated_at"] = now_iso()
    return json_response(spec)


@routes.get("/movespecs/{movespec_id}/draft")
async def get_draft(request: web.Request) -> web.Response:
    return json_response(_state(request).drafts[_spec(request)["movespec_id"]])


@routes.put("/movespecs/{movespec_id}/draft")
async def put_draft(request: web.Request) -> web.Response:
    spec = _spec(request)
    body = await read_json(request)
    if not isinstance(body.get("yaml_source"), str):
        raise ServiceError(
            422, "validation_error", "yaml_source is required", details={"field": "yaml_source"}
        )
    draft = _state(request).drafts[spec["movespec_id"]]
    draft.update(yaml_source=body["yaml_source"], updated_at=now_iso(), updated_by="api")
    return json_response(draft)


@routes.post("/movespecs/{movespec_id}/draft/validate")
async def validate_draft(request: web.Request) -> web.Response:
    draft = _state(request).drafts[_spec(request)["movespec_id"]]
    _, errors, warnings = validate_movespec_yaml(draft["yaml_source"])
    return json_response(
        {
            "ok": not errors,
            "target_type": "draft",
            "target_id": draft["draft_id"],
            "validated_at": now_iso(),
            "errors": errors,
            "warnings": warnings,
        }
    )


@routes.get("/movespecs/{movespec_id}/versions")
async def list_versions(request: web.Request) -> web.Response:
    spec_id = _spec(request)["movespec_id"]
    return json_response(
        [v for v in _state(request).versions.values() if v["movespec_id"] == spec_id]
    )


@routes.post("/movespecs/{movespec_id}/versions")
async def create_version(request: web.Request) -> web.Response:
    state = _state(request)
    spec_id = _spec(request)["movespec_id"]
    _, errors, _ = validate_movespec_yaml(state.drafts[spec_id]["yaml_source"])
    if errors:
        raise ServiceError(
            422,
            "movespec_invalid",
            f"The draft has {len(errors)} error(s)",
            details={"errors": len(errors), "first": errors[0].message},
        )
    return json_response(state.new_version(spec_id), 201)


def _version(request: web.Request) -> dict[str, Any]:
    version = _state(request).versions.get(request.match_info["version_id"])
    if version is None or version["movespec_id"] != request.match_info["movespec_id"]:
        raise ServiceError(404, "not_found", "MoveSpec version not found")
    return version


@routes.get("/movespecs/{movespec_id}/versions/{version_id}")
async def get_version(request: web.Request) -> web.Response:
    return json_response(_version(request))


@routes.post("/movespecs/{movespec_id}/versions/{version_id}/release")
async def release_version(request: web.Request) -> web.Response:
    spec = _spec(request)
    spec["current_released_version_id"] = _version(request)["movespec_version_id"]
    spec["updated_at"] = now_iso()
    return json_response(spec)


@routes.post("/movespecs/{movespec_id}/fork")
async def fork_movespec(request: web.Request) -> web.Response:
    source = _spec(request)
    state = _state(request)
    token = _token(request)

    async def make(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("project_id") != token.project_id:
            raise ServiceError(403, "project_mismatch", "project_id does not match the token")
        spec = state.new_movespec(
            str(body.get("name") or source["name"])[:255],
            body.get("description", source["description"]),
            "private",
        )
        state.drafts[spec["movespec_id"]]["yaml_source"] = state.drafts[source["movespec_id"]][
            "yaml_source"
        ]
        return spec

    return await _idempotent(request, make)


KYNASMITH_KEY: Final = web.AppKey("kynasmith_state", KynasmithState)
TOKEN_KEY: Final[web.RequestKey[Token | None]] = web.RequestKey("kynasmith_token")
FAULTS_KEY: Final = web.AppKey("kynasmith_faults", Faults)


def kynasmith_app(state: KynasmithState, faults: Faults) -> web.Application:
    """The Kynasmith API as an aiohttp application, to mount at ``/api``."""
    app = web.Application(
        middlewares=[_request_id, fault_middleware(faults, _error), _auth_and_limits]
    )
    app[KYNASMITH_KEY] = state
    app[FAULTS_KEY] = faults
    app.add_routes(routes)
    return app
