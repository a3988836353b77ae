"""``AsyncKynasmithClient``: the entry point to the Kynasmith Detection API."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import Final, Literal, Unpack

import aiohttp

from aiolens._core.backoff import Backoff
from aiolens._core.options import check_choice, check_count, check_seconds, check_text
from aiolens._core.redact import SecretStr, install_log_redaction, register_secret
from aiolens._transport.client_base import ClientBase
from aiolens._transport.http import HTTPTransport, Timeout
from aiolens._transport.session_registry import SessionRegistry, connect_or_close
from aiolens._transport.shielded import finish_or_undo
from aiolens.errors import APIStatusError, ConfigurationError
from aiolens.kynasmith.error_rules import KYNASMITH_RULES
from aiolens.kynasmith.models import CONTRACT_MAJOR_VERSION
from aiolens.kynasmith.resources import DetectionSessions, MoveSpecs
from aiolens.kynasmith.session import (
    DetectionSession,
    DetectionSessionKwargs,
    DetectionSessionOptions,
)
from aiolens.kynasmith.tokens import TokenManager
from aiolens.observe import Observer

__all__ = ["DEFAULT_BASE_URL", "AsyncKynasmithClient"]

DEFAULT_BASE_URL: Final = "https://api.kynasmith.dev"


async def _no_auth() -> Mapping[str, str]:
    return {}


class AsyncKynasmithClient(ClientBase):
    """An asyncio client for the Kynasmith Detection API.

    ::

        async with AsyncKynasmithClient() as client:
            async with client.detection_session(movespec_id=spec_id) as det:
                ack = await det.send(frames)
                summary = await det.finalize()

    Args:
        api_key: ``<key_id>:<key_secret>``; defaults to ``$KYNASMITH_API_KEY``.
        project_id: the project; taken from the credential when omitted.
        base_url: defaults to ``$KYNASMITH_BASE_URL``, then ``https://api.kynasmith.dev``.
        session: an aiohttp session to use (never closed by us).
        timeout: seconds per HTTP attempt, or a :class:`~aiolens.Timeouts`.
        max_retries: retries for what is safe to retry (creates carry an
            ``Idempotency-Key``, so they are).
        token_refresh_margin: re-mint tokens this many seconds before expiry.
        observer: hears every REST call and every change of a detection socket's
            connection state (:mod:`aiolens.observe`; :mod:`aiolens.otel`).

    Raises:
        ConfigurationError: no API key, or one not shaped ``<key_id>:<key_secret>``,
            or an option has a bad value (the message names it); see
            :class:`~aiolens.archetype.client.AsyncArchetypeClient`.

    Access tokens are minted per scope set, cached, refreshed early and after
    ``access_token_expired``; concurrent callers share one mint.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        project_id: str | None = None,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: Timeout = 30.0,
        max_retries: int = 2,
        backoff: Backoff | None = None,
        observer: Observer | None = None,
        token_refresh_margin: float = 5.0,
    ) -> None:
        install_log_redaction()
        key = api_key if api_key is not None else os.environ.get("KYNASMITH_API_KEY")
        check_text("api_key", key)
        check_text("project_id", project_id)
        check_text("base_url", base_url)
        check_seconds("token_refresh_margin", token_refresh_margin, allow_zero=True)
        if not key:
            raise ConfigurationError(
                "No Kynasmith API key: pass api_key=... or set KYNASMITH_API_KEY."
            )
        if ":" not in key:
            raise ConfigurationError("A Kynasmith API key looks like <key_id>:<key_secret>.")
        self._api_key = SecretStr(key)
        register_secret(key.partition(":")[2])  # a server may echo the secret part alone
        self.base_url: str = (
            base_url or os.environ.get("KYNASMITH_BASE_URL") or DEFAULT_BASE_URL
        ).rstrip("/")
        self._http = HTTPTransport.create(
            self.base_url,
            _no_auth,
            session=session,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff or Backoff(),
            observer=observer,
            user_agent="aiolens (kynasmith)",
            on_auth_error=self._auth_failed,
            rules=KYNASMITH_RULES,
        )
        self.tokens: TokenManager = TokenManager(
            self._http, self._api_key, project_id=project_id, refresh_margin=token_refresh_margin
        )
        self._registry: SessionRegistry[DetectionSession] = SessionRegistry("detection session")
        self._bind_resources()

    def _bind_resources(self) -> None:
        self.sessions: DetectionSessions = DetectionSessions(self._http, self.tokens)
        self.movespecs: MoveSpecs = MoveSpecs(self._http, self.tokens)

    async def _auth_failed(self, error: APIStatusError) -> bool:
        if error.code == "access_token_expired":
            self.tokens.failed()
            return True
        return False

    @property
    def open_sessions(self) -> Mapping[str, DetectionSession]:
        """The detection sessions open through this client, by id (a read-only live view).

        Every :class:`DetectionSession` made with :meth:`open_detection_session`
        or :meth:`detection_session` is here from the moment it exists until
        its ``aclose()`` begins; :meth:`aclose` closes every one of them.
        """
        return self._registry.open

    async def open_detection_session(
        self,
        *,
        movespec_id: str | None = None,
        movespec_version_id: str | None = None,
        mode: Literal["live", "replay"] = "replay",
        contract_major: int = CONTRACT_MAJOR_VERSION,
        idempotency_key: str | None = None,
        **options: Unpack[DetectionSessionKwargs],
    ) -> DetectionSession:
        """Create a detection session and attach to its stream; it lives until closed.

        ::

            det = await client.open_detection_session(movespec_id=spec_id)
            ...  # elsewhere: client.open_sessions[det.session_id]
            await det.aclose()  # cancels it unless it was finalized

        The client owns the session: ``client.aclose()`` cancels it if it is
        still open and not finished. Options are checked before anything is
        created. Cancel during the create call: its answer is still awaited
        (at most ``cancel_timeout``) and the session it made cancelled; a
        failure after the create cancels the new session before raising.

        Args:
            movespec_id: the MoveSpec to run (its current version).
            movespec_version_id: or one version of it (give exactly one).
            mode: ``"replay"`` or ``"live"``.
            contract_major: the contract major version to ask for.
            idempotency_key: reused on every retry of the create (a new UUID
                when omitted).
            **options: :class:`DetectionSession` options (``window``,
                ``ack_timeout``, ``event_queue_size``, ``cancel_timeout`` ...).

        Raises:
            ValueError: neither or both MoveSpec references.
            ConfigurationError: a bad option value (nothing was created).
            TypeError: an unknown option (nothing was created).
            APIConnectionError: the client is closed (nothing was sent).
        """
        cancel_timeout = DetectionSessionOptions(**options).cancel_timeout
        check_choice("mode", mode, ("live", "replay"))
        check_count("contract_major", contract_major)
        with self._registry.opening(cancel_timeout):
            created = await finish_or_undo(
                self.sessions.create(
                    movespec_id=movespec_id,
                    movespec_version_id=movespec_version_id,
                    mode=mode,
                    contract_major=contract_major,
                    idempotency_key=idempotency_key,
                ),
                lambda made: self.sessions.cancel_quietly(made.session_id, timeout=cancel_timeout),
                timeout=cancel_timeout,
            )
            try:
                session = DetectionSession(self, created, **options)
            except BaseException:
                await self.sessions.cancel_quietly(created.session_id, timeout=cancel_timeout)
                raise
            await connect_or_close(session)
        return session

    @contextlib.asynccontextmanager
    async def detection_session(
        self,
        *,
        movespec_id: str | None = None,
        movespec_version_id: str | None = None,
        mode: Literal["live", "replay"] = "replay",
        contract_major: int = CONTRACT_MAJOR_VERSION,
        idempotency_key: str | None = None,
        **options: Unpack[DetectionSessionKwargs],
    ) -> AsyncIterator[DetectionSession]:
        """:meth:`open_detection_session` for one block.

        Leaving the block without :meth:`DetectionSession.finalize` cancels
        the session (also on error or cancellation; shielded and bounded by
        ``cancel_timeout``), or ``client.aclose()`` does if it comes first.
        Arguments, cancel and errors: as for :meth:`open_detection_session`.
        """
        session = await self.open_detection_session(
            movespec_id=movespec_id,
            movespec_version_id=movespec_version_id,
            mode=mode,
            contract_major=contract_major,
            idempotency_key=idempotency_key,
            **options,
        )
        try:
            yield session
        finally:
            await session.aclose()
