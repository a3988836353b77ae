"""Kynasmith REST resources: detection sessions and MoveSpecs.

Every call asks the :class:`~aiolens.kynasmith.tokens.TokenManager` for a
token with the scope it needs. Creates send an ``Idempotency-Key`` (generated
once per logical call and reused on every retry), so they are retried safely.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from typing import Any, ClassVar, Final, Literal, TypeVar

from aiolens._core.redact import get_logger
from aiolens._transport.http import HTTPTransport, Timeout
from aiolens._transport.resource import Resource
from aiolens._transport.shielded import best_effort
from aiolens.kynasmith.models import (
    CONTRACT_MAJOR_VERSION,
    DetectionSessionCreated,
    DetectionSessionRecord,
    MoveSpec,
    MoveSpecDraft,
    MoveSpecVersion,
    ValidationResult,
)
from aiolens.kynasmith.tokens import TokenManager

__all__ = ["DetectionSessions", "MoveSpecs"]

log: logging.Logger = get_logger("kynasmith")

T = TypeVar("T")

_SESSIONS: Final = "/api/detection/sessions"
_MOVESPECS: Final = "/api/movespecs"


class _Resource(Resource):
    """A Kynasmith resource group: every call carries a token for ``<_scope>:read``
    (``GET``) or ``<_scope>:write`` (the rest), through :meth:`Resource._request`."""

    __slots__ = ("_tokens",)
    _scope: ClassVar[str]

    def __init__(self, http: HTTPTransport, tokens: TokenManager) -> None:
        super().__init__(http)
        self._tokens = tokens

    async def _project(self, project_id: str | None) -> str:
        """``project_id``, else the credential's project (learnt from the token
        minted with the write scope, the one the call needs anyway)."""
        if project_id:
            return project_id
        if self._tokens.project_id is None:
            await self._tokens.token([f"{self._scope}:write"])
        assert self._tokens.project_id is not None
        return self._tokens.project_id

    async def _call(self, method: str, path: str, response_type: type[T], **options: Any) -> T:
        """One request with a token for the scope ``method`` needs; the answer decoded
        as ``response_type``. ``options``: as for :meth:`Resource._request`."""
        scope = f"{self._scope}:{'read' if method == 'GET' else 'write'}"
        return await self._request(
            method, path, response_type, auth=self._tokens.headers(scope), **options
        )

    async def _keyed(self, path: str, response_type: type[T], key: str | None, **options: Any) -> T:
        """``POST`` with an ``Idempotency-Key`` (``key`` or a new UUID) that is the same
        on every retry, so it is retried safely (the server acts once)."""
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        return await self._call(
            "POST", path, response_type, idempotent=True, headers=headers, **options
        )


class DetectionSessions(_Resource):
    """``/api/detection/sessions``."""

    __slots__ = ()
    _scope = "sessions"

    async def create(
        self,
        *,
        movespec_id: str | None = None,
        movespec_version_id: str | None = None,
        mode: Literal["live", "replay"] = "replay",
        project_id: str | None = None,
        contract_major: int = CONTRACT_MAJOR_VERSION,
        idempotency_key: str | None = None,
        timeout: Timeout | None = None,
    ) -> DetectionSessionCreated:
        """Create a detection session (exactly one of ``movespec_id`` / ``movespec_version_id``).

        Retried safely: the ``Idempotency-Key`` (``idempotency_key`` or a new
        UUID) is the same on every attempt, so the server creates one session.

        Raises:
            ValueError: neither or both MoveSpec references were given.
        """
        if (movespec_id is None) == (movespec_version_id is None):
            raise ValueError("give exactly one of movespec_id and movespec_version_id")
        body: dict[str, Any] = {
            "mode": mode,
            "project_id": await self._project(project_id),
            "contract_major": contract_major,
            "movespec_id": movespec_id,
            "movespec_version_id": movespec_version_id,
        }
        return await self._keyed(
            _SESSIONS, DetectionSessionCreated, idempotency_key, json=body, timeout=timeout
        )

    async def get(
        self, session_id: str, *, timeout: Timeout | None = None
    ) -> DetectionSessionRecord:
        """The stored session record."""
        return await self._call(
            "GET", f"{_SESSIONS}/{session_id}", DetectionSessionRecord, timeout=timeout
        )

    async def cancel(
        self, session_id: str, *, timeout: Timeout | None = None
    ) -> DetectionSessionRecord:
        """Cancel a session (retried; cancelling twice is harmless)."""
        path = f"{_SESSIONS}/{session_id}/cancel"
        return await self._keyed(path, DetectionSessionRecord, None, timeout=timeout)

    async def cancel_quietly(
        self, session_id: str, *, timeout: float = 10.0
    ) -> DetectionSessionRecord | None:
        """Best-effort cleanup cancel: shielded from cancellation, bounded by ``timeout``.

        Failures are logged, not raised; returns the record, or ``None`` when
        the cancel failed or ran out of time. Cancel: the cancel request still
        runs to its end (or ``timeout``), then :class:`asyncio.CancelledError`
        is raised.
        """

        return await best_effort(
            lambda: self.cancel(session_id), timeout=timeout, what=f"cancel session {session_id}"
        )

    async def finalize(
        self, session_id: str, *, timeout: Timeout | None = None
    ) -> DetectionSessionRecord:
        """Finalize over REST (the realtime ``finalize`` message is the usual path)."""
        path = f"{_SESSIONS}/{session_id}/finalize"
        return await self._call(
            "POST", path, DetectionSessionRecord, idempotent=False, timeout=timeout
        )


class MoveSpecs(_Resource):
    """``/api/movespecs``: MoveSpecs, drafts, validation, versions, release, fork."""

    __slots__ = ()
    _scope = "movespecs"

    async def list(
        self,
        *,
        project_id: str | None = None,
        visibility: Literal["private", "public"] | None = None,
    ) -> list[MoveSpec]:
        """MoveSpecs, optionally of one project or visibility."""
        params = {"project_id": project_id, "visibility": visibility}
        return await self._call("GET", _MOVESPECS, list[MoveSpec], params=params)

    async def create(
        self, name: str, *, description: str | None = None, project_id: str | None = None
    ) -> MoveSpec:
        """A new MoveSpec with an empty draft."""
        body = {
            "project_id": await self._project(project_id),
            "name": name,
            "description": description,
        }
        return await self._call("POST", _MOVESPECS, MoveSpec, json=body, idempotent=False)

    async def get(self, movespec_id: str) -> MoveSpec:
        """One MoveSpec."""
        return await self._call("GET", f"{_MOVESPECS}/{movespec_id}", MoveSpec)

    async def update(
        self,
        movespec_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        visibility: Literal["private", "public"] | None = None,
    ) -> MoveSpec:
        """Change name, description or visibility."""
        body = {
            k: v
            for k, v in (("name", name), ("description", description), ("visibility", visibility))
            if v is not None
        }
        path = f"{_MOVESPECS}/{movespec_id}"
        return await self._call("PATCH", path, MoveSpec, json=body, idempotent=True)

    async def get_draft(self, movespec_id: str) -> MoveSpecDraft:
        """The mutable draft."""
        return await self._call("GET", f"{_MOVESPECS}/{movespec_id}/draft", MoveSpecDraft)

    async def put_draft(self, movespec_id: str, yaml_source: str) -> MoveSpecDraft:
        """Replace the whole draft YAML."""
        path = f"{_MOVESPECS}/{movespec_id}/draft"
        return await self._call("PUT", path, MoveSpecDraft, json={"yaml_source": yaml_source})

    async def validate(self, movespec_id: str) -> ValidationResult:
        """Validate the draft; issues carry line and column."""
        path = f"{_MOVESPECS}/{movespec_id}/draft/validate"
        return await self._call("POST", path, ValidationResult, idempotent=True)

    async def versions(self, movespec_id: str) -> builtins.list[MoveSpecVersion]:
        """All versions."""
        path = f"{_MOVESPECS}/{movespec_id}/versions"
        return await self._call("GET", path, builtins.list[MoveSpecVersion])

    async def create_version(self, movespec_id: str) -> MoveSpecVersion:
        """Snapshot the draft as an immutable version."""
        path = f"{_MOVESPECS}/{movespec_id}/versions"
        return await self._call("POST", path, MoveSpecVersion, idempotent=False)

    async def get_version(self, movespec_id: str, version_id: str) -> MoveSpecVersion:
        """One version."""
        path = f"{_MOVESPECS}/{movespec_id}/versions/{version_id}"
        return await self._call("GET", path, MoveSpecVersion)

    async def release(self, movespec_id: str, version_id: str) -> MoveSpec:
        """Point the MoveSpec's current release at a version."""
        path = f"{_MOVESPECS}/{movespec_id}/versions/{version_id}/release"
        return await self._call("POST", path, MoveSpec, idempotent=True)

    async def fork(
        self,
        movespec_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        project_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> MoveSpec:
        """Copy a MoveSpec into a project (idempotent with its ``Idempotency-Key``)."""
        body = {
            "project_id": await self._project(project_id),
            "name": name,
            "description": description,
        }
        path = f"{_MOVESPECS}/{movespec_id}/fork"
        return await self._keyed(path, MoveSpec, idempotency_key, json=body)
