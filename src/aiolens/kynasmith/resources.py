"""Kynasmith REST resources: detection sessions and MoveSpecs.

Every call asks the :class:`~aiolens.kynasmith.tokens.TokenManager` for a
token with the scope it needs. Creates send an ``Idempotency-Key`` (generated
once per logical call and reused on every retry), so they are retried safely.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from typing import Any, Literal, TypeVar

from aiolens._core.redact import get_logger
from aiolens._transport.http import HTTPTransport, Timeout
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


class _Resource:
    __slots__ = ("_http", "_tokens")

    def __init__(self, http: HTTPTransport, tokens: TokenManager) -> None:
        self._http = http
        self._tokens = tokens

    async def _project(self, project_id: str | None, scope: str) -> str:
        """``project_id``, else the credential's project (learnt from the token
        minted with ``scope``, the one the call needs anyway)."""
        if project_id:
            return project_id
        if self._tokens.project_id is None:
            await self._tokens.token([scope])
        assert self._tokens.project_id is not None
        return self._tokens.project_id

    async def _call(
        self, method: str, path: str, scope: str, response_type: type[T], **kw: Any
    ) -> T:
        """One request with a token for ``scope``; the answer decoded as ``response_type``."""
        result: T = await self._http.request(
            method, path, response_type=response_type, auth=self._tokens.headers(scope), **kw
        )
        return result


class DetectionSessions(_Resource):
    """``/api/detection/sessions``."""

    __slots__ = ()

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
            "project_id": await self._project(project_id, "sessions:write"),
            "contract_major": contract_major,
            "movespec_id": movespec_id,
            "movespec_version_id": movespec_version_id,
        }
        return await self._call(
            "POST",
            "/api/detection/sessions",
            "sessions:write",
            DetectionSessionCreated,
            json=body,
            idempotent=True,
            timeout=timeout,
            headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())},
        )

    async def get(
        self, session_id: str, *, timeout: Timeout | None = None
    ) -> DetectionSessionRecord:
        """The stored session record."""
        return await self._call(
            "GET",
            f"/api/detection/sessions/{session_id}",
            "sessions:read",
            DetectionSessionRecord,
            timeout=timeout,
        )

    async def cancel(
        self, session_id: str, *, timeout: Timeout | None = None
    ) -> DetectionSessionRecord:
        """Cancel a session (retried; cancelling twice is harmless)."""
        return await self._call(
            "POST",
            f"/api/detection/sessions/{session_id}/cancel",
            "sessions:write",
            DetectionSessionRecord,
            idempotent=True,
            timeout=timeout,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )

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
        return await self._call(
            "POST",
            f"/api/detection/sessions/{session_id}/finalize",
            "sessions:write",
            DetectionSessionRecord,
            idempotent=False,
            timeout=timeout,
        )


class MoveSpecs(_Resource):
    """``/api/movespecs``: MoveSpecs, drafts, validation, versions, release, fork."""

    __slots__ = ()

    async def list(
        self,
        *,
        project_id: str | None = None,
        visibility: Literal["private", "public"] | None = None,
    ) -> list[MoveSpec]:
        """MoveSpecs, optionally of one project or visibility."""
        return await self._call(
            "GET",
            "/api/movespecs",
            "movespecs:read",
            list[MoveSpec],
            params={"project_id": project_id, "visibility": visibility},
        )

    async def create(
        self, name: str, *, description: str | None = None, project_id: str | None = None
    ) -> MoveSpec:
        """A new MoveSpec with an empty draft."""
        body = {
            "project_id": await self._project(project_id, "movespecs:write"),
            "name": name,
            "description": description,
        }
        return await self._call(
            "POST", "/api/movespecs", "movespecs:write", MoveSpec, json=body, idempotent=False
        )

    async def get(self, movespec_id: str) -> MoveSpec:
        """One MoveSpec."""
        return await self._call("GET", f"/api/movespecs/{movespec_id}", "movespecs:read", MoveSpec)

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
        return await self._call(
            "PATCH",
            f"/api/movespecs/{movespec_id}",
            "movespecs:write",
            MoveSpec,
            json=body,
            idempotent=True,
        )

    async def get_draft(self, movespec_id: str) -> MoveSpecDraft:
        """The mutable draft."""
        return await self._call(
            "GET", f"/api/movespecs/{movespec_id}/draft", "movespecs:read", MoveSpecDraft
        )

    async def put_draft(self, movespec_id: str, yaml_source: str) -> MoveSpecDraft:
        """Replace the whole draft YAML."""
        return await self._call(
            "PUT",
            f"/api/movespecs/{movespec_id}/draft",
            "movespecs:write",
            MoveSpecDraft,
            json={"yaml_source": yaml_source},
        )

    async def validate(self, movespec_id: str) -> ValidationResult:
        """Validate the draft; issues carry line and column."""
        return await self._call(
            "POST",
            f"/api/movespecs/{movespec_id}/draft/validate",
            "movespecs:write",
            ValidationResult,
            idempotent=True,
        )

    async def versions(self, movespec_id: str) -> builtins.list[MoveSpecVersion]:
        """All versions."""
        return await self._call(
            "GET",
            f"/api/movespecs/{movespec_id}/versions",
            "movespecs:read",
            builtins.list[MoveSpecVersion],
        )

    async def create_version(self, movespec_id: str) -> MoveSpecVersion:
        """Snapshot the draft as an immutable version."""
        return await self._call(
            "POST",
            f"/api/movespecs/{movespec_id}/versions",
            "movespecs:write",
            MoveSpecVersion,
            idempotent=False,
        )

    async def get_version(self, movespec_id: str, version_id: str) -> MoveSpecVersion:
        """One version."""
        return await self._call(
            "GET",
            f"/api/movespecs/{movespec_id}/versions/{version_id}",
            "movespecs:read",
            MoveSpecVersion,
        )

    async def release(self, movespec_id: str, version_id: str) -> MoveSpec:
        """Point the MoveSpec's current release at a version."""
        return await self._call(
            "POST",
            f"/api/movespecs/{movespec_id}/versions/{version_id}/release",
            "movespecs:write",
            MoveSpec,
            idempotent=True,
        )

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
            "project_id": await self._project(project_id, "movespecs:write"),
            "name": name,
            "description": description,
        }
        return await self._call(
            "POST",
            f"/api/movespecs/{movespec_id}/fork",
            "movespecs:write",
            MoveSpec,
            json=body,
            idempotent=True,
            headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())},
        )
