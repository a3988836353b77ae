"""What the emulated Kynasmith API remembers: tokens, sessions, MoveSpecs, rate windows.

Ids are UUID strings, as the reference pages type them (``string<uuid>``;
clients must treat them as opaque). Access and runtime tokens are JWT-shaped
(``header.payload.signature``, base64url, HS256 over a per-emulator secret)
with ``iat`` and ``exp`` claims, so a client that reads ``exp`` works; the
emulator itself looks tokens up rather than trusting their claims. The
project and organization ids derive from the key id (UUID v5), so a pinned key
(``aiolens emulate --kynasmith-key``) keeps its project id across restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from aiolens.emulator.detector import RepetitionDetector
from aiolens.emulator.kynasmith_wire import (
    TERMINAL,
    DraftBody,
    MoveSpecBody,
    SessionRecordBody,
    VersionBody,
    encode,
)
from aiolens.emulator.movespec_yaml import (
    LUNGE_YAML,
    SQUAT_YAML,
    MoveSpecDefinition,
    validate_movespec_yaml,
)

__all__ = [
    "DEFAULT_LIMITS",
    "DetectionSession",
    "KynasmithState",
    "Token",
    "mint_jwt",
    "new_uuid",
    "now_iso",
]

DEFAULT_LIMITS: Final = {"project": 100, "organization": 500, "sessions": 10, "movespecs": 60}
_ID_NAMESPACE: Final = uuid.UUID("5d3c58e2-6f0b-4a8e-9d5e-2b8a1f0c7e41")


def now_iso() -> str:
    """The current UTC time, ISO-8601 with a ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_uuid() -> str:
    """A random UUID string (version 4)."""
    return str(uuid.uuid4())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_jwt(secret: bytes, claims: dict[str, Any]) -> str:
    """An HS256 JWT over ``claims`` (compact form, unpadded base64url parts)."""
    head = _b64url(encode({"alg": "HS256", "typ": "JWT"}))
    body = _b64url(encode(claims))
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64url(signature)}"


@dataclass
class Token:
    """An access token's grant: its project, scopes and expiry (``time.monotonic``)."""

    project_id: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class DetectionSession:
    """One detection session and its realtime state."""

    session_id: str
    project_id: str
    mode: str
    version_id: str
    definition: MoveSpecDefinition
    runtime_token: str
    runtime_expires_at: float
    """When ``runtime_token`` stops opening the stream (``time.monotonic``)."""
    status: str = "created"
    accepted_frames_total: int = 0
    last_frame_seq: int = 0
    last_batch_seq: int = 0
    replies: dict[int, list[bytes]] = field(default_factory=dict)
    """Every batch's encoded replies, replayed whole when a batch is re-sent after a reconnect."""
    started_at: str | None = None
    ended_at: str | None = None
    terminal_outcome: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    detector: RepetitionDetector | None = None
    sockets: set[web.WebSocketResponse] = field(default_factory=set, repr=False)
    """Realtime sockets attached now; told when the session ends over REST."""

    def record(self, organization_id: str) -> SessionRecordBody:
        """The stored session record (``GET /api/detection/sessions/{id}``)."""
        return SessionRecordBody(
            session_id=self.session_id,
            organization_id=organization_id,
            project_id=self.project_id,
            mode=self.mode,
            status=self.status,
            resolved_movespec_version_id=self.version_id,
            accepted_frames_total=self.accepted_frames_total,
            started_at=self.started_at,
            ended_at=self.ended_at,
            terminal_outcome=self.terminal_outcome,
            error_code=self.error_code,
            error_message=self.error_message,
        )

    def end(self, status: str, error: tuple[str, str] | None = None) -> None:
        """Move to terminal ``status`` (no-op once terminal); ``error`` is (code, message)."""
        if self.status not in TERMINAL:
            self.status = status
            self.ended_at = now_iso()
            self.terminal_outcome = status
            if error is not None:
                self.error_code, self.error_message = error


@dataclass
class KynasmithState:
    """Everything the emulated Kynasmith API remembers.

    Args:
        api_key: the accepted ``<key_id>:<key_secret>`` credential.
        token_ttl: seconds an access token lives (answered as a whole number,
            rounded down, at least 1).
        runtime_token_ttl: seconds a session's runtime token opens its stream.
        limits: requests per rolling minute: ``project``, ``organization``,
            ``sessions`` (session creation) and ``movespecs``.
    """

    api_key: str
    token_ttl: float = 900.0
    runtime_token_ttl: float = 24 * 3600.0
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    project_id: str = ""
    """A UUID derived from the key id (see the module docstring)."""
    organization_id: str = ""
    tokens: dict[str, Token] = field(default_factory=dict)
    sessions: dict[str, DetectionSession] = field(default_factory=dict)
    movespecs: dict[str, MoveSpecBody] = field(default_factory=dict)
    drafts: dict[str, DraftBody] = field(default_factory=dict)
    versions: dict[str, VersionBody] = field(default_factory=dict)
    idempotency: dict[str, tuple[bytes, int, bytes]] = field(default_factory=dict)
    windows: dict[str, deque[float]] = field(default_factory=dict)
    tokens_minted: int = 0
    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def __post_init__(self) -> None:
        key_id = self.api_key.partition(":")[0]
        self.project_id = self.project_id or str(uuid.uuid5(_ID_NAMESPACE, f"project/{key_id}"))
        self.organization_id = self.organization_id or str(
            uuid.uuid5(_ID_NAMESPACE, f"organization/{key_id}")
        )
        for yaml_source in (SQUAT_YAML, LUNGE_YAML):
            definition, _, _ = validate_movespec_yaml(yaml_source)
            assert definition is not None
            spec = self.new_movespec(definition.name, "Seeded by the emulator", "public")
            self.drafts[spec.movespec_id].yaml_source = yaml_source
            version = self.new_version(spec.movespec_id)
            spec.current_released_version_id = version.movespec_version_id

    def token_lifetime(self) -> int:
        """``expires_in_seconds`` as answered: whole seconds, never longer than the real life."""
        return max(1, int(self.token_ttl))

    def mint_access_token(self, project_id: str, scopes: list[str]) -> str:
        """A new access token for ``project_id`` with ``scopes``, remembered until it expires."""
        issued = time.time()
        token = mint_jwt(
            self.signing_key,
            {
                "iss": "aiolens-emulator",
                "sub": self.api_key.partition(":")[0],
                "org_id": self.organization_id,
                "project_id": project_id,
                "scope": " ".join(scopes),
                "iat": int(issued),
                "exp": int(issued + self.token_ttl),
                "jti": new_uuid(),
            },
        )
        self.tokens[token] = Token(project_id, frozenset(scopes), time.monotonic() + self.token_ttl)
        self.tokens_minted += 1
        return token

    def mint_runtime_token(self, session_id: str, project_id: str) -> tuple[str, float]:
        """A session's runtime token and its monotonic expiry."""
        issued = time.time()
        token = mint_jwt(
            self.signing_key,
            {
                "iss": "aiolens-emulator",
                "sub": session_id,
                "aud": "kynasmith-realtime",
                "project_id": project_id,
                "iat": int(issued),
                "exp": int(issued + self.runtime_token_ttl),
                "jti": new_uuid(),
            },
        )
        return token, time.monotonic() + self.runtime_token_ttl

    def new_movespec(self, name: str, description: str | None, visibility: str) -> MoveSpecBody:
        """A new MoveSpec of this project, with an empty draft."""
        stamp = now_iso()
        spec = MoveSpecBody(
            movespec_id=new_uuid(),
            organization_id=self.organization_id,
            project_id=self.project_id,
            name=name,
            description=description,
            visibility=visibility,
            current_released_version_id=None,
            created_by="emulator",
            created_at=stamp,
            updated_at=stamp,
            archived_at=None,
            star_count=0,
        )
        self.movespecs[spec.movespec_id] = spec
        self.drafts[spec.movespec_id] = DraftBody(
            draft_id=new_uuid(),
            movespec_id=spec.movespec_id,
            yaml_source=f"name: {name}\n",
            updated_by=None,
            updated_at=stamp,
        )
        return spec

    def new_version(self, movespec_id: str) -> VersionBody:
        """An immutable snapshot of the MoveSpec's draft."""
        source = self.drafts[movespec_id].yaml_source
        number = 1 + sum(v.movespec_id == movespec_id for v in self.versions.values())
        version = VersionBody(
            movespec_version_id=new_uuid(),
            movespec_id=movespec_id,
            version_number=number,
            yaml_source=source,
            content_hash=hashlib.sha256(source.encode()).hexdigest(),
            created_by="emulator",
            created_at=now_iso(),
        )
        self.versions[version.movespec_version_id] = version
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
