"""The REST answers of the Kynasmith Detection API: access tokens, detection
sessions, MoveSpecs and their validation.

Re-exported by :mod:`aiolens.kynasmith.models` (import them from there).
Datetimes are kept as the server's ISO-8601 strings; unknown fields are ignored.
"""

from __future__ import annotations

import msgspec

from aiolens._core.model import Model


class AccessToken(Model, kw_only=True):
    """The answer of ``POST /api/auth/access-tokens``; ``repr`` hides the token."""

    access_token: str
    token_type: str
    expires_in_seconds: float
    organization_id: str
    project_id: str
    scopes: list[str] | None = None

    def __repr__(self) -> str:
        return f"AccessToken(project_id={self.project_id!r}, expires_in={self.expires_in_seconds})"


class DetectionSessionCreated(Model, kw_only=True):
    """The answer of ``POST /api/detection/sessions``; ``repr`` hides the token."""

    session_id: str
    project_id: str
    status: str
    mode: str
    resolved_movespec_version_id: str
    stream_url: str
    runtime_token: str
    input_schema_version: str
    output_schema_version: str

    def __repr__(self) -> str:
        return (
            f"DetectionSessionCreated(session_id={self.session_id!r}, mode={self.mode!r}, "
            f"status={self.status!r})"
        )


class DetectionSessionRecord(Model, kw_only=True):
    """The stored session of ``GET /api/detection/sessions/{id}``.

    Datetimes are kept as the server's ISO-8601 strings.
    """

    session_id: str
    project_id: str
    mode: str
    status: str
    resolved_movespec_version_id: str
    accepted_frames_total: int
    organization_id: str
    started_at: str | None = None
    ended_at: str | None = None
    terminal_outcome: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class MoveSpec(Model, kw_only=True):
    """A MoveSpec; both documented variants decode (most fields optional)."""

    movespec_id: str
    name: str
    project_id: str
    visibility: str
    created_at: str
    updated_at: str
    organization_id: str | None = None
    description: str | None = None
    current_released_version_id: str | None = None
    archived_at: str | None = None
    created_by: str | None = None
    updated_by: str | None = None
    star_count: int = 0


class MoveSpecDraft(Model, kw_only=True):
    """A MoveSpec's mutable draft."""

    draft_id: str
    movespec_id: str
    yaml_source: str
    updated_at: str
    updated_by: str | None = None


class MoveSpecVersion(Model, kw_only=True):
    """An immutable MoveSpec version; ``content_hash`` is the YAML's SHA-256."""

    movespec_version_id: str
    movespec_id: str
    version_number: int
    yaml_source: str
    content_hash: str
    created_at: str
    created_by: str | None = None


class ValidationIssue(Model, kw_only=True):
    """One validation problem; ``line`` and ``column`` are 1-based."""

    code: str
    message: str
    severity: str
    path: str | None = None
    line: int | None = None
    column: int | None = None


class ValidationResult(Model, kw_only=True):
    """The answer of ``POST /api/movespecs/{id}/draft/validate``.

    Errors block a release; warnings do not.
    """

    ok: bool
    target_type: str
    target_id: str
    validated_at: str
    errors: list[ValidationIssue] = msgspec.field(default_factory=list)
    warnings: list[ValidationIssue] = msgspec.field(default_factory=list)
