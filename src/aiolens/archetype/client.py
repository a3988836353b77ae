"""``AsyncArchetypeClient``: the entry point to the Archetype AI Lens API."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Final, Unpack

import aiohttp

from aiolens._core.backoff import Backoff
from aiolens._core.options import check_seconds, check_text
from aiolens._core.redact import SecretStr, install_log_redaction
from aiolens._transport.client_base import ClientBase
from aiolens._transport.http import HTTPTransport, Timeout, _checked_base_url
from aiolens._transport.session_registry import SessionRegistry, connect_or_close
from aiolens._transport.shielded import finish_or_undo
from aiolens.archetype.agents import Agents
from aiolens.archetype.agents import agents_base_url as _agents_base_url
from aiolens.archetype.error_rules import ARCHETYPE_RULES
from aiolens.archetype.models import SessionSummary
from aiolens.archetype.resources import Files, Lenses, Sessions
from aiolens.archetype.session import LensSession, LensSessionKwargs, LensSessionOptions
from aiolens.errors import ConfigurationError, NotFoundError, ProtocolError
from aiolens.observe import Observer

__all__ = ["DEFAULT_BASE_URL", "AsyncArchetypeClient"]

DEFAULT_BASE_URL: Final = "https://api.u1.archetypeai.app/v0.5"
_USER_AGENT: Final = "aiolens (archetype)"


class AsyncArchetypeClient(ClientBase):
    """An asyncio client for the Archetype AI Lens API.

    Use it as an async context manager, or call :meth:`aclose` when done::

        async with AsyncArchetypeClient() as client:
            lenses = await client.lenses.metadata()

    Args:
        api_key: the API key; defaults to ``$ATAI_API_KEY``.
        base_url: the API root; defaults to ``$ATAI_API_ENDPOINT``, then
            ``https://api.u1.archetypeai.app/v0.5``. The platform endpoint
            ``https://platform.u1.archetypeai.app/api`` works too (README
            "Base URL").
        agents_base_url: where the Agents API lives (paths ``/agents/...``
            under it); derived from ``base_url`` by default
            (:func:`~aiolens.archetype.agents.agents_base_url`).
        session: an :class:`aiohttp.ClientSession` to use. The client never
            closes a session it was given.
        timeout: seconds per HTTP attempt, or a :class:`~aiolens.Timeouts` with a
            limit per phase (an :class:`aiohttp.ClientTimeout` still works but is
            deprecated).
        max_retries: retries after the first attempt, for what is safe to retry.
        backoff: the retry delay schedule.
        observer: hears every REST call and realtime request and every change of a
            session's connection state (:mod:`aiolens.observe`; :mod:`aiolens.otel`).

    Raises:
        ConfigurationError: no API key was given and ``$ATAI_API_KEY`` is unset,
            or an option has a bad value (the message names it): ``timeout``
            must be a finite number of seconds > 0 (0, negative, NaN and
            infinity are refused: none may mean "wait forever"),
            ``max_retries`` a whole number >= 0.

    Attributes:
        lenses: lens templates (:class:`~aiolens.archetype.resources.Lenses`).
        sessions: lens sessions over REST.
        files: the Files API.
        agents: the Agents API (:class:`~aiolens.archetype.agents.Agents`).

    The key never appears in a repr, a log line or an exception message.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: Timeout = 60.0,
        max_retries: int = 2,
        backoff: Backoff | None = None,
        observer: Observer | None = None,
        agents_base_url: str | None = None,
    ) -> None:
        install_log_redaction()
        key = api_key if api_key is not None else os.environ.get("ATAI_API_KEY")
        check_text("api_key", key)
        check_text("base_url", base_url)
        if not key:
            raise ConfigurationError("No Archetype API key: pass api_key=... or set ATAI_API_KEY.")
        self._api_key = SecretStr(key)
        self.base_url: str = (
            base_url or os.environ.get("ATAI_API_ENDPOINT") or DEFAULT_BASE_URL
        ).rstrip("/")
        self._http = HTTPTransport.create(
            self.base_url,
            self._auth_headers,
            session=session,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff or Backoff(),
            observer=observer,
            user_agent=_USER_AGENT,
            rules=ARCHETYPE_RULES,
        )
        self._registry: SessionRegistry[LensSession] = SessionRegistry("session")
        self.agents_url: str = (
            _checked_base_url(agents_base_url)
            if agents_base_url
            else _agents_base_url(self._http.base_url)
        )
        self._bind_resources()

    def _bind_resources(self) -> None:
        self.lenses: Lenses = Lenses(self._http)
        self.sessions: Sessions = Sessions(self._http)
        self.files: Files = Files(self._http)
        self.agents: Agents = Agents(self._http.with_options(base_url=self.agents_url))

    async def _auth_headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    @property
    def auth_headers(self) -> Mapping[str, str]:
        """Headers that authenticate a request (for the realtime channels). Secret."""
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    @property
    def open_sessions(self) -> Mapping[str, LensSession]:
        """The sessions open through this client, by session id (a read-only live view).

        Every :class:`LensSession` made with :meth:`open_session`,
        :meth:`attach_session`, :meth:`session` or :meth:`attach` is here from
        the moment it exists until its ``aclose()`` begins. A service keeps the
        id and finds the session again with ``client.open_sessions[session_id]``
        (or ``.get(session_id)``). :meth:`aclose` closes every one of them.
        """
        return self._registry.open

    async def unowned_sessions(
        self, lens_id: str, *, created_within: float, timeout: Timeout | None = None
    ) -> list[SessionSummary]:
        """Active sessions of ``lens_id`` made in the last ``created_within`` seconds
        that this client does not hold: candidates for a create whose answer never came.

        ::

            try:
                session = await client.open_session(lens_id)
            except APIConnectionError as err:
                if err.possible_session is None:
                    raise
                possible = err.possible_session
                for orphan in await client.unowned_sessions(
                    possible.lens_id, created_within=possible.elapsed()
                ):
                    await client.sessions.destroy(orphan.session_id)

        Ages come from the server (``session_duration_sec``), so the clocks of
        client and server need not agree; the time the listing itself takes is
        added to ``created_within``. Careful: any process using the same API
        key — another worker, another host — may have made one of these
        sessions in the same window, and the server cannot say which call made
        which. Destroy them only when this process is the only one creating
        sessions of that lens with the key; otherwise match them another way
        (e.g. attach and check what they run).

        Args:
            lens_id: the lens of the create that went unanswered.
            created_within: seconds since that call began
                (``err.possible_session.elapsed()``).
            timeout: for the listing call.

        Raises:
            ConfigurationError: ``created_within`` is not a finite number > 0.
        """
        check_seconds("created_within", created_within)
        started = time.monotonic()
        summaries = await self.sessions.metadata(timeout=timeout)
        window = created_within + (time.monotonic() - started)
        return [
            s
            for s in summaries
            if s.lens_id == lens_id
            and s.session_duration_sec is not None
            and s.session_duration_sec <= window
            and not self._registry.holds(s.session_id)
        ]

    async def open_session(self, lens_id: str, **options: Unpack[LensSessionKwargs]) -> LensSession:
        """Create a session of ``lens_id`` and connect its WebSocket; it lives until closed.

        ::

            session = await client.open_session(lens_id)
            ...  # in other requests: client.open_sessions[session.session_id]
            await session.aclose()  # destroys it server-side

        The client owns the session: ``client.aclose()`` destroys it if it is
        still open. Options are checked before anything is created.

        Cancel during the create call: its answer is still awaited (at most
        ``destroy_timeout``) and the session it made destroyed, so no session
        is left running that nobody knows the id of. A failure after the
        create (bad answer, the WebSocket refused) destroys the new session
        before raising.

        Args:
            lens_id: the lens to run.
            **options: :class:`~aiolens.archetype.session.LensSession` options
                (``max_in_flight``, ``request_timeout``, ``heartbeat_interval``,
                ``reconnect``, ``on_reconnect``, ``destroy_timeout`` ...).

        Raises:
            ConfigurationError: a bad option value (nothing was created).
            TypeError: an unknown option (nothing was created).
            APIConnectionError: the client is closed (nothing was sent).
        """
        destroy_timeout = LensSessionOptions(**options).destroy_timeout
        with self._registry.opening(destroy_timeout):
            info = await finish_or_undo(
                self.sessions.create(lens_id),
                lambda made: self.sessions.destroy_quietly(
                    made.session_id, timeout=destroy_timeout
                ),
                timeout=destroy_timeout,
            )
            try:
                if not info.session_endpoint:
                    raise ProtocolError(f"Session {info.session_id} came back without an endpoint")
                session = LensSession(
                    self,
                    info.session_id,
                    info.session_endpoint,
                    info=info,
                    destroy_on_close=True,
                    **options,
                )
            except BaseException:
                await self.sessions.destroy_quietly(info.session_id, timeout=destroy_timeout)
                raise
            await connect_or_close(session)
        return session

    async def attach_session(
        self, session_id: str, endpoint: str | None = None, **options: Unpack[LensSessionKwargs]
    ) -> LensSession:
        """Connect to an existing session; :meth:`LensSession.aclose` leaves it running.

        The client owns the connection (``client.aclose()`` disconnects it)
        but never destroys an attached session.

        Args:
            session_id: the session.
            endpoint: its ``session_endpoint``; looked up over REST when omitted.
            **options: as for :meth:`open_session`.

        Raises:
            NotFoundError: no such session.
        """
        LensSessionOptions(**options)
        with self._registry.opening(0.0):
            if endpoint is None:
                found = await self.sessions.metadata(session_id)
                if not found or not found[0].session_endpoint:
                    raise NotFoundError(f"Session {session_id} not found", status=404)
                endpoint = found[0].session_endpoint
            session = LensSession(self, session_id, endpoint, destroy_on_close=False, **options)
            await connect_or_close(session)
        return session

    @contextlib.asynccontextmanager
    async def session(
        self, lens_id: str, **options: Unpack[LensSessionKwargs]
    ) -> AsyncIterator[LensSession]:
        """:meth:`open_session` for one block: the session is destroyed when it ends.

        ::

            async with client.session(lens_id) as session:
                print(await session.validate())

        The session is destroyed server-side when the block ends, also when
        it raises or is cancelled (shielded, bounded by ``destroy_timeout``),
        or by ``client.aclose()`` if that comes first. Cancel during the
        create call: as for :meth:`open_session`.

        Args:
            lens_id: the lens to run.
            **options: as for :meth:`open_session`.
        """
        session = await self.open_session(lens_id, **options)
        try:
            yield session
        finally:
            await session.aclose()

    @contextlib.asynccontextmanager
    async def attach(
        self, session_id: str, endpoint: str | None = None, **options: Unpack[LensSessionKwargs]
    ) -> AsyncIterator[LensSession]:
        """:meth:`attach_session` for one block; the session is left running on exit.

        Args:
            session_id: the session.
            endpoint: its ``session_endpoint``; looked up over REST when omitted.
            **options: as for :meth:`open_session`.
        """
        session = await self.attach_session(session_id, endpoint, **options)
        try:
            yield session
        finally:
            await session.aclose()
