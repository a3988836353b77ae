"""REST resources of the Lens API: ``client.lenses``, ``client.sessions`` (and
``client.files``, from :mod:`aiolens.archetype.files`).

Each method is one HTTP call through the client's transport, with its retry
policy and timeout; ``timeout=`` overrides the timeout for that call.
Non-idempotent creates (``lenses.register``, ``sessions.create``,
``files.upload``) are retried only when the server certainly did not act on
them (see :mod:`aiolens._transport.http`).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from collections.abc import Mapping
from typing import Any

from aiolens._core.redact import get_logger
from aiolens._transport.http import Timeout
from aiolens._transport.resource import Resource
from aiolens._transport.shielded import best_effort
from aiolens.archetype.files import Files, mime_type_for
from aiolens.archetype.models import (
    DestroyedSession,
    EventResponse,
    Lens,
    LensDeleted,
    LensesInfo,
    SessionInfo,
    SessionsInfo,
    SessionSummary,
    dec_hook,
)
from aiolens.errors import (
    APIConnectionError,
    ConfigurationError,
    NotFoundError,
    PossibleSession,
    RejectedRequestError,
)

__all__ = ["Files", "Lenses", "Sessions", "mime_type_for"]

log: logging.Logger = get_logger("archetype")


def _note_possible_session(error: APIConnectionError, possible: PossibleSession) -> None:
    """Say in ``error`` that the create it reports may have made a session."""
    began = datetime.datetime.fromtimestamp(possible.started_at, datetime.UTC)
    error.possible_session = possible
    error.message = (
        f"{error.message} The session may have been created anyway (lens "
        f"{possible.lens_id}, call began {began:%Y-%m-%dT%H:%M:%S}Z): "
        "find it with client.unowned_sessions()."
    )
    error.args = (error.message,)


def _config_dict(name: str, value: object) -> dict[str, Any]:
    """A copy of a mapping argument, or :class:`ConfigurationError` naming it."""
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{name} must be a mapping, not {type(value).__name__}")
    return dict(value)


class Lenses(Resource):
    """Lens templates: ``/lens/*``."""

    __slots__ = ()

    async def info(self, *, timeout: Timeout | None = None) -> LensesInfo:
        """Summary of the org's lenses (``GET /lens/info``)."""
        return await self._http.request(
            "GET", "/lens/info", response_type=LensesInfo, timeout=timeout
        )

    async def metadata(
        self,
        lens_id: str | None = None,
        *,
        shard_index: int = -1,
        max_items_per_shard: int = -1,
        timeout: Timeout | None = None,
    ) -> list[Lens]:
        """Lens records (``GET /lens/metadata``), optionally one lens or one shard."""
        return await self._http.request(
            "GET",
            "/lens/metadata",
            params={
                "lens_id": lens_id,
                "shard_index": shard_index,
                "max_items_per_shard": max_items_per_shard,
            },
            response_type=list[Lens],
            timeout=timeout,
        )

    async def get(self, lens_id: str, *, timeout: Timeout | None = None) -> Lens:
        """One lens record.

        Raises:
            NotFoundError: no such lens.
        """
        found = await self.metadata(lens_id, timeout=timeout)
        if not found:
            raise NotFoundError(f"Lens {lens_id} not found", status=404)
        return found[0]

    async def register(
        self,
        lens_config: Mapping[str, Any],
        *,
        lens_name: str | None = None,
        timeout: Timeout | None = None,
    ) -> Lens:
        """Register a new lens (``POST /lens/register``).

        Args:
            lens_config: the lens configuration (``model_pipeline``,
                ``model_parameters``, ``input_streams``, ``output_streams`` ...).
            lens_name: sets ``lens_config["lens_name"]``.

        Raises:
            ConfigurationError: ``lens_config`` is not a mapping (nothing sent).
            RejectedRequestError: the server answered ``is_valid: false``; its
                ``error_messages`` are in ``errors``.
        """
        config = _config_dict("lens_config", lens_config)
        if lens_name is not None:
            config["lens_name"] = lens_name
        return await self._http.request(
            "POST",
            "/lens/register",
            json={"lens_config": config},
            response_type=Lens,
            idempotent=False,
            timeout=timeout,
        )

    async def clone(self, lens_id: str, *, timeout: Timeout | None = None) -> Lens:
        """Copy a lens into a new, modifiable one (``POST /lens/clone``)."""
        return await self._http.request(
            "POST",
            "/lens/clone",
            json={"lens_id": lens_id},
            response_type=Lens,
            idempotent=False,
            timeout=timeout,
        )

    async def modify(
        self,
        lens_id: str,
        *,
        lens_name: str | None = None,
        lens_config: Mapping[str, Any] | None = None,
        timeout: Timeout | None = None,
    ) -> Lens:
        """Overwrite a modifiable lens's name and/or config (``POST /lens/modify``)."""
        body: dict[str, Any] = {"lens_id": lens_id}
        if lens_name is not None:
            body["lens_name"] = lens_name
        if lens_config is not None:
            body["lens_config"] = _config_dict("lens_config", lens_config)
        return await self._http.request(
            "POST",
            "/lens/modify",
            json=body,
            response_type=Lens,
            idempotent=True,
            timeout=timeout,
        )

    async def delete(self, lens_id: str, *, timeout: Timeout | None = None) -> LensDeleted:
        """Delete a lens template; sessions already made from it go on running."""
        return await self._http.request(
            "POST",
            "/lens/delete",
            json={"lens_id": lens_id},
            response_type=LensDeleted,
            idempotent=True,
            timeout=timeout,
        )


class Sessions(Resource):
    """Lens sessions over REST: ``/lens/sessions/*``.

    For the realtime side (WebSocket and SSE) use ``client.session(lens_id)``.
    """

    __slots__ = ()

    async def create(self, lens_id: str, *, timeout: Timeout | None = None) -> SessionInfo:
        """Create a session of ``lens_id`` (``POST /lens/sessions/create``).

        Destroy it when done: live sessions count against a concurrency quota.
        Retried only on 429/503 or when the request never left (creating
        twice would leak a session).

        Raises:
            APIConnectionError: no answer. When the request was sent
                (``sent``), the server may have made the session anyway: the
                error's ``possible_session`` names the lens and when the call
                began, and ``client.unowned_sessions(...)`` finds candidates.
        """
        started = PossibleSession(lens_id, time.time(), time.monotonic())
        try:
            return await self._http.request(
                "POST",
                "/lens/sessions/create",
                json={"lens_id": lens_id},
                response_type=SessionInfo,
                idempotent=False,
                timeout=timeout,
                dec_hook=dec_hook,
            )
        except APIConnectionError as exc:
            if exc.sent:
                _note_possible_session(exc, started)
            raise

    async def destroy(self, session_id: str, *, timeout: Timeout | None = None) -> DestroyedSession:
        """Destroy a session, closing its connections (``POST /lens/sessions/destroy``)."""
        return await self._http.request(
            "POST",
            "/lens/sessions/destroy",
            json={"session_id": session_id},
            response_type=DestroyedSession,
            idempotent=True,
            timeout=timeout,
        )

    async def destroy_quietly(self, session_id: str, *, timeout: float = 10.0) -> bool:
        """Best-effort cleanup destroy: shielded from cancellation, bounded by ``timeout``.

        A session that is already gone counts as destroyed; other failures are
        logged, not raised. Cancel: the destroy still runs to its end (or
        ``timeout``), then :class:`asyncio.CancelledError` is raised.

        Returns:
            ``True`` when the session is destroyed (or was already gone).
        """

        async def destroy() -> bool:
            with contextlib.suppress(NotFoundError):  # already gone counts as destroyed
                await self.destroy(session_id, timeout=timeout)
            return True

        done = await best_effort(destroy, timeout=timeout, what=f"destroy session {session_id}")
        return done is True

    async def info(self, *, timeout: Timeout | None = None) -> SessionsInfo:
        """Active and total session counts (``GET /lens/sessions/info``)."""
        return await self._http.request(
            "GET", "/lens/sessions/info", response_type=SessionsInfo, timeout=timeout
        )

    async def metadata(
        self,
        session_id: str | None = None,
        *,
        shard_index: int = -1,
        max_items_per_shard: int = -1,
        timeout: Timeout | None = None,
    ) -> list[SessionSummary]:
        """The org's active sessions (``GET /lens/sessions/metadata``)."""
        return await self._http.request(
            "GET",
            "/lens/sessions/metadata",
            params={
                "session_id": session_id,
                "shard_index": shard_index,
                "max_items_per_shard": max_items_per_shard,
            },
            response_type=list[SessionSummary],
            timeout=timeout,
        )

    async def process_event(
        self,
        session_id: str,
        event_type: str,
        event_data: Mapping[str, Any] | None = None,
        *,
        timeout: Timeout | None = None,
    ) -> EventResponse:
        """Send one session event over REST (``POST /lens/sessions/events/process``).

        Not retried after it may have been sent: events such as
        ``session.update`` are not idempotent.

        Raises:
            RejectedRequestError: the answer's ``type`` is ``"error"``.
        """
        body = {
            "session_id": session_id,
            "event": {"type": event_type, "event_data": dict(event_data or {})},
        }
        r: EventResponse = await self._http.request(
            "POST",
            "/lens/sessions/events/process",
            json=body,
            response_type=EventResponse,
            idempotent=False,
            timeout=timeout,
        )
        if r.type == "error":
            data = r.event_data if isinstance(r.event_data, dict) else {}
            raise RejectedRequestError(
                r.message or str(data.get("message") or data or "event rejected"), status=200
            )
        return r
