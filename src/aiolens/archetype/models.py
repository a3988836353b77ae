"""msgspec models of the Lens API's REST bodies.

Unknown fields are ignored, so new server fields never break an old client.
Field names follow the wire. The caller's API key, which ``sessions.create``
echoes back, is not kept: the record holds the mask ``"**********"`` in its
place, so it shows in no repr, log line or JSON. Every model is an
:class:`~aiolens._core.model.Model`: it encodes with ``msgspec.json``, with
the standard ``json`` module through ``to_dict()``, and with FastAPI's
``jsonable_encoder``.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from aiolens._core.model import Model, enc_hook
from aiolens._core.redact import MASK, register_secret
from aiolens.archetype.pages import CursorPage

__all__ = [
    "DestroyedSession",
    "EventResponse",
    "FileDeleted",
    "FileMetadata",
    "FilePage",
    "FilesInfo",
    "Lens",
    "LensDeleted",
    "LensesInfo",
    "SessionInfo",
    "SessionStatus",
    "SessionSummary",
    "SessionsInfo",
    "UploadedFile",
    "dec_hook",
    "enc_hook",
    "mask_api_keys",
    "mask_secret",
    "normalize_status",
]


class SessionStatus(enum.StrEnum):
    """A lens session's status, without the ``LensSessionStatus.`` prefix."""

    CREATED = "SESSION_STATUS_CREATED"
    REGISTERED = "SESSION_STATUS_REGISTERED"
    STARTING = "SESSION_STATUS_STARTING"
    RUNNING = "SESSION_STATUS_RUNNING"
    DESTROYED = "SESSION_STATUS_DESTROYED"
    FAILED = "SESSION_STATUS_FAILED"
    UNKNOWN = "SESSION_STATUS_UNKNOWN"

    @classmethod
    def parse(cls, raw: str | None) -> SessionStatus:
        """Normalise any spelling the API uses; unknown values give ``UNKNOWN``."""
        try:
            return cls(normalize_status(raw or ""))
        except ValueError:
            return cls.UNKNOWN


def normalize_status(raw: str) -> str:
    """Strip an enum-class prefix: ``LensSessionStatus.SESSION_STATUS_X`` → ``SESSION_STATUS_X``."""
    return raw.rpartition(".")[2]


def dec_hook(tp: type, obj: Any) -> Any:
    """msgspec decode hook for the custom types in these models (none left: kept for callers)."""
    raise NotImplementedError(f"cannot decode {tp!r}")


def mask_secret(value: str | None) -> str | None:
    """Register an echoed secret for log redaction; return the mask in its place."""
    if not value:
        return value
    register_secret(value)
    return MASK


class Lens(Model, kw_only=True):
    """A lens template (``/lens/metadata``, ``register``, ``clone``, ``modify``)."""

    lens_id: str
    lens_name: str | None = None
    lens_status: str | None = None
    lens_modifiable: bool | None = None
    lens_config: dict[str, Any] = msgspec.field(default_factory=dict)


class LensDeleted(Model, kw_only=True):
    """The answer of ``/lens/delete``."""

    lens_id: str | None = None
    is_valid: bool = True


class LensesInfo(Model, kw_only=True):
    """``/lens/info``: the org's lens summary (its shape is undocumented)."""

    num_lenses: int | None = None
    last_updated: float | None = None


class _StatusMixin:
    session_status: str

    @property
    def status(self) -> SessionStatus:
        """The normalised :class:`SessionStatus`."""
        return SessionStatus.parse(self.session_status)


class SessionInfo(Model, _StatusMixin, kw_only=True):
    """A session record: the answer of ``sessions.create`` and of ``session.status``.

    ``session_status`` is normalised (the ``LensSessionStatus.`` prefix that
    create sends is stripped); :attr:`status` gives it as a :class:`SessionStatus`.
    ``api_key`` is ``"**********"`` when the server echoed the caller's key
    (the key itself is never kept in a record; it is registered for log redaction).
    """

    session_id: str
    lens_id: str | None = None
    lens_name: str | None = None
    org_id: str | None = None
    api_key: str | None = None
    session_endpoint: str | None = None
    session_status: str = "SESSION_STATUS_UNKNOWN"
    session_ttl_sec: int | None = None
    session_runner: str | None = None
    node_tag: str | None = None
    lens_config: dict[str, Any] | None = None
    registration_timestamp: float | None = None
    last_event_timestamp: float | None = None
    last_update_timestamp: float | None = None
    session_start_timestamp: float | None = None
    session_destroyed_timestamp: float | None = None
    input_data_stream_id: str | None = None
    output_data_stream_id: str | None = None
    num_active_connections: int = 0
    num_events: int = 0
    num_updates: int = 0
    num_inputs: int = 0
    num_outputs: int = 0

    def __post_init__(self) -> None:
        self.session_status = normalize_status(self.session_status)
        self.api_key = mask_secret(self.api_key)


class DestroyedSession(Model, _StatusMixin, kw_only=True):
    """The answer of ``sessions.destroy``."""

    session_id: str
    lens_id: str | None = None
    session_status: str = "SESSION_STATUS_DESTROYED"
    session_runner: str | None = None
    session_endpoint: str | None = None
    last_update_timestamp: float | None = None
    session_duration_sec: float | None = None

    def __post_init__(self) -> None:
        self.session_status = normalize_status(self.session_status)


class SessionSummary(Model, _StatusMixin, kw_only=True):
    """One item of ``/lens/sessions/metadata``."""

    session_id: str
    lens_id: str | None = None
    session_status: str = "SESSION_STATUS_UNKNOWN"
    session_endpoint: str | None = None
    last_update_timestamp: float | None = None
    session_duration_sec: float | None = None

    def __post_init__(self) -> None:
        self.session_status = normalize_status(self.session_status)


class SessionsInfo(Model, kw_only=True):
    """``/lens/sessions/info``: active and total counts (shape undocumented)."""

    num_active_sessions: int | None = None
    num_sessions: int | None = None
    last_updated: float | None = None


class EventResponse(Model, kw_only=True):
    """The answer of ``/lens/sessions/events/process`` (and a WebSocket reply).

    An ``api_key`` anywhere in ``event_data`` (``session.status`` answers with
    the session record, which echoes the caller's key) is replaced by the mask
    ``"**********"``, so it never shows in a repr or in JSON.
    """

    type: str
    event_data: Any = None
    message: str | None = None

    def __post_init__(self) -> None:
        mask_api_keys(self.event_data)


def mask_api_keys(value: Any) -> None:
    """Replace, in place, every string under an ``api_key`` key by the mask."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "api_key" and isinstance(item, str):
                value[key] = mask_secret(item)
            elif isinstance(item, dict | list):
                mask_api_keys(item)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                mask_api_keys(item)


class UploadedFile(Model, kw_only=True):
    """The answer of ``POST /files`` and ``/files/base64``."""

    file_id: str
    file_uid: str | None = None
    is_valid: bool = True


class FileDeleted(Model, kw_only=True):
    """The answer of ``DELETE /files/delete/{file_id}``."""

    file_id: str
    file_uid: str | None = None
    is_valid: bool = True


class FilesInfo(Model, kw_only=True):
    """``/files/info``."""

    num_files: int = 0
    num_bytes: int = 0
    num_ingested: int = 0
    last_updated: float | None = None


class FileMetadata(Model, kw_only=True):
    """``/files/metadata/{file_id}`` and the items of the list."""

    file_id: str
    file_uid: str | None = None
    is_valid: bool = True
    file_type: str | None = None
    num_bytes: int | None = None
    file_status: str | None = None
    ingested: bool | None = None
    file_index: int | None = None
    file_tags: dict[str, Any] = msgspec.field(default_factory=dict)
    file_attributes: dict[str, Any] = msgspec.field(default_factory=dict)


FilePage = CursorPage[FileMetadata]
"""A page of file metadata (:class:`~aiolens.archetype.pages.CursorPage`).

The documented API returns a plain array (then ``has_more`` is ``False``);
the newest SDK's API returns ``{data, has_more, next_cursor, prev_cursor}``.
Both decode into this.
"""
