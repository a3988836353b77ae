"""In-memory state of the emulated Lens API: lenses, sessions, files."""

from __future__ import annotations

import csv
import io
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from aiolens.emulator._web import ServiceError

__all__ = [
    "BUILTIN_LENSES",
    "STORE_KEY",
    "FileRecord",
    "LensRecord",
    "LensStore",
    "SessionRecord",
]

BUILTIN_LENSES: tuple[dict[str, Any], ...] = (
    {
        "lens_id": "lns-fd669361822b07e2-bc608aa3fdf8b4f9",
        "lens_name": "Activity Monitor",
        "lens_config": {
            "model_pipeline": [{"processor_name": "lens_camera_processor", "processor_config": {}}],
            "model_parameters": {
                "model_name": "Newton",
                "model_version": "Newton::c2_3_7b_2508014e10af56",
                "instruction": "Answer the following question about the video:",
                "focus": "Describe the video.",
                "max_new_tokens": 512,
                "camera_buffer_size": 5,
                "camera_buffer_step_size": 5,
                "min_replicas": 1,
                "max_replicas": 1,
            },
        },
    },
    {
        "lens_id": "lns-1d519091822706e2-bc108andqxf8b4os",
        "lens_name": "Machine State",
        "lens_config": {
            "model_pipeline": [
                {"processor_name": "lens_timeseries_state_processor", "processor_config": {}}
            ],
            "model_parameters": {
                "model_version": "OmegaEncoder::omega_embeddings_01",
                "window_size": 1024,
                "step_size": 1024,
            },
        },
    },
    {
        # The seeds' example lens (seed 000): a bare noop pipeline, which answers model.query.
        "lens_id": "lns-fd669361822b07e2-237ab3ffd79199b0",
        "lens_name": "Example Lens",
        "lens_config": {
            "model_pipeline": [{"processor_name": "lens_noop_processor", "processor_config": {}}],
        },
    },
    {
        "lens_id": "lns-fd669361822b07e2-237ab3ffd79199b1",
        "lens_name": "Image Q&A",
        "lens_config": {
            "model_pipeline": [
                {"processor_name": "lens_model_query_processor", "processor_config": {}}
            ],
            "model_parameters": {
                "model_version": "Newton::c1_6_241117d4362cc9",
                "template_name": "image_qa_template_task",
                "instruction": "Answer the following question about the image:",
                "focus": "Describe the image.",
                "max_new_tokens": 512,
            },
        },
    },
)


@dataclass(slots=True)
class LensRecord:
    """A lens template."""

    lens_id: str
    lens_name: str
    lens_config: dict[str, Any]
    lens_modifiable: bool = True
    lens_status: str = "LENS_STATUS_MOUNTED"

    def to_wire(self) -> dict[str, Any]:
        return {
            "lens_id": self.lens_id,
            "lens_name": self.lens_name,
            "lens_status": self.lens_status,
            "lens_modifiable": self.lens_modifiable,
            "lens_config": self.lens_config,
        }


@dataclass(slots=True)
class SessionRecord:
    """A lens session and its counters."""

    session_id: str
    lens_id: str
    lens_name: str
    lens_config: dict[str, Any]
    org_id: str
    status: str = "SESSION_STATUS_REGISTERED"
    registration_timestamp: float = field(default_factory=time.time)
    last_event_timestamp: float = field(default_factory=time.time)
    last_update_timestamp: float = field(default_factory=time.time)
    session_start_timestamp: float | None = None
    session_destroyed_timestamp: float | None = None
    input_data_stream_id: str | None = None
    output_data_stream_id: str | None = None
    num_active_connections: int = 0
    num_events: int = 0
    num_updates: int = 0
    num_inputs: int = 0
    num_outputs: int = 0
    session_runner: str = "lens_service:runner:emulator-node-1"
    node_tag: str = "default"
    session_ttl_sec: int = 86400
    extra: dict[str, Any] = field(default_factory=dict)
    """Realtime state the WebSocket/SSE side keeps per session."""

    @property
    def active(self) -> bool:
        return self.status != "SESSION_STATUS_DESTROYED"

    def endpoint(self, ws_base: str) -> str:
        return f"{ws_base}/lens/sessions/{self.session_id}"

    def start(self) -> None:
        """Mark the runner started (first connection or event)."""
        if self.status in ("SESSION_STATUS_REGISTERED", "SESSION_STATUS_STARTING"):
            self.status = "SESSION_STATUS_RUNNING"
            self.session_start_timestamp = time.time()
            self.touch()

    def touch(self) -> None:
        self.last_update_timestamp = self.last_event_timestamp = time.time()

    def duration(self) -> float:
        end = self.session_destroyed_timestamp or time.time()
        return end - self.registration_timestamp

    def record(self, ws_base: str, api_key: str, *, enum_prefix: bool = False) -> dict[str, Any]:
        """The full session record (create, ``session.status``)."""
        status = f"LensSessionStatus.{self.status}" if enum_prefix else self.status
        return {
            "session_id": self.session_id,
            "lens_id": self.lens_id,
            "lens_name": self.lens_name,
            "org_id": self.org_id,
            "api_key": api_key,
            "session_endpoint": self.endpoint(ws_base),
            "session_status": status,
            "session_ttl_sec": self.session_ttl_sec,
            "session_runner": self.session_runner,
            "node_tag": self.node_tag,
            "lens_config": self.lens_config,
            "registration_timestamp": self.registration_timestamp,
            "last_event_timestamp": self.last_event_timestamp,
            "last_update_timestamp": self.last_update_timestamp,
            "session_start_timestamp": self.session_start_timestamp,
            "session_destroyed_timestamp": self.session_destroyed_timestamp,
            "input_data_stream_id": self.input_data_stream_id,
            "output_data_stream_id": self.output_data_stream_id,
            "num_active_connections": self.num_active_connections,
            "num_events": self.num_events,
            "num_updates": self.num_updates,
            "num_inputs": self.num_inputs,
            "num_outputs": self.num_outputs,
        }

    def summary(self, ws_base: str) -> dict[str, Any]:
        """The short record of metadata and destroy."""
        return {
            "session_id": self.session_id,
            "lens_id": self.lens_id,
            "session_status": self.status,
            "session_runner": self.session_runner,
            "session_endpoint": self.endpoint(ws_base),
            "last_update_timestamp": self.last_update_timestamp,
            "session_duration_sec": self.duration(),
        }


@dataclass(slots=True)
class FileRecord:
    """An uploaded file, kept in memory."""

    file_id: str
    file_uid: str
    data: bytes
    file_type: str
    file_index: int
    uploaded_at: float = field(default_factory=time.time)
    file_status: str = "FILE_STATUS_INGESTED"
    """``FILE_STATUS_CORRUPT`` after a direct upload failed its integrity check."""

    def metadata(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_uid": self.file_uid,
            "is_valid": True,
            "file_type": self.file_type,
            "num_bytes": len(self.data),
            "file_status": self.file_status,
            "ingested": self.file_status == "FILE_STATUS_INGESTED",
            "file_index": self.file_index,
            "file_tags": {},
            "file_attributes": self._attributes(),
        }

    def _attributes(self) -> dict[str, Any]:
        if self.file_type == "text/csv" or self.file_id.endswith(".csv"):
            try:
                rows = list(csv.reader(io.StringIO(self.data.decode("utf-8", "replace"))))
            except csv.Error:  # not really CSV: no attributes rather than a 500
                return {}
            headers = rows[0] if rows else []
            return {
                "num_rows": max(0, len(rows) - 1),
                "num_columns": len(headers),
                "column_headers": headers,
            }
        return {}


@dataclass
class LensStore:
    """Everything the emulated Lens API remembers.

    Args:
        api_key: the one accepted API key.
        org_id: the org every record belongs to.
        max_active_sessions: above this, create answers 429.
        max_upload_bytes: above this, uploads answer 413 (512 MB like the service).
    """

    api_key: str
    org_id: str = "emulator-org"
    max_active_sessions: int = 10_000
    max_upload_bytes: int = 512 * 1024 * 1024
    event_interval: float = 0.001
    """Seconds between the events an input stream produces (0: as fast as possible)."""
    sse_heartbeat_interval: float = 5.0
    """Seconds between SSE heartbeats."""
    max_session_events: int = 1_000_000
    """Per session: events kept in the SSE log (resumable) and in the mailbox."""
    session_ttl_sec: float = 86400
    """Seconds of inactivity after which a session is destroyed (seed 000: 24 h)."""
    sse_replay: bool = False
    """A consumer without ``Last-Event-ID`` also gets the current stream's past events."""
    upload_part_size: int = 8 * 1024 * 1024
    """Direct uploads: bytes per part (the docs' example: 8 MiB)."""
    upload_url_ttl: float = 3600.0
    """Direct uploads: seconds a presigned part URL stays valid."""
    max_direct_upload_bytes: int = 4 * 1024**3
    """Direct uploads: the largest file (the service takes 250 GB; this emulator keeps
    uploads in memory)."""
    upload_integrity_algorithm: str = "sha256"
    """Direct uploads: the whole-file checksum ``complete`` checks (``"none"``: none)."""
    upload_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    """Signs the presigned part URLs."""
    uploads: dict[str, Any] = field(default_factory=dict)
    """Direct uploads by ``upload_id`` (:class:`~aiolens.emulator.lens_uploads.Upload`)."""
    lenses: dict[str, LensRecord] = field(default_factory=dict)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    files: dict[str, FileRecord] = field(default_factory=dict)
    _file_counter: int = 0

    def __post_init__(self) -> None:
        for lens in BUILTIN_LENSES:
            self.lenses[lens["lens_id"]] = LensRecord(
                lens["lens_id"], lens["lens_name"], lens["lens_config"], lens_modifiable=False
            )

    def lens(self, lens_id: str) -> LensRecord:
        try:
            return self.lenses[lens_id]
        except KeyError:
            raise ServiceError(404, "not_found", f"Lens not found: {lens_id}") from None

    def session(self, session_id: str) -> SessionRecord:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise ServiceError(404, "not_found", f"Unknown session id: {session_id}") from None

    def file(self, file_id: str) -> FileRecord:
        try:
            return self.files[file_id]
        except KeyError:
            raise ServiceError(404, "upload_not_found", f"File not found: {file_id}") from None

    def new_lens_id(self, name: str) -> str:
        slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:24] or "lens"
        return f"lns-{slug}-{secrets.token_hex(4)}"

    def new_session_id(self) -> str:
        return "lsn-" + time.strftime("%y%m%d", time.gmtime()) + secrets.token_hex(12)

    def add_file(
        self,
        file_id: str,
        data: bytes,
        file_type: str,
        *,
        file_uid: str | None = None,
        file_status: str = "FILE_STATUS_INGESTED",
    ) -> FileRecord:
        self._file_counter += 1
        record = FileRecord(
            file_id,
            file_uid or secrets.token_hex(11),
            data,
            file_type,
            file_index=self._file_counter,
            file_status=file_status,
        )
        self.files[file_id] = record
        return record

    def expired_sessions(
        self, now: float, producing: Callable[[SessionRecord], bool]
    ) -> list[SessionRecord]:
        """Active sessions idle for longer than :attr:`session_ttl_sec`.

        Idle: no event received since ``last_event_timestamp`` and no input
        stream running (``producing``).
        """
        return [
            s
            for s in self.sessions.values()
            if s.active and now - s.last_event_timestamp > self.session_ttl_sec and not producing(s)
        ]

    def active_sessions(self) -> list[SessionRecord]:
        return [s for s in self.sessions.values() if s.active]


STORE_KEY: Final = web.AppKey("lens_store", LensStore)
"""Where the Lens application keeps its :class:`LensStore`."""
