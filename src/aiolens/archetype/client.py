"""``AsyncArchetypeClient``: the entry point to the Archetype AI Lens API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final, Self

import aiohttp

from aiolens._core.backoff import Backoff
from aiolens._core.redact import SecretStr, install_log_redaction
from aiolens._transport.http import HTTPTransport, Timeout
from aiolens.archetype.resources import Files, Lenses, Sessions
from aiolens.errors import ConfigurationError

__all__ = ["DEFAULT_BASE_URL", "AsyncArchetypeClient"]

DEFAULT_BASE_URL: Final = "https://api.u1.archetypeai.app/v0.5"
_USER_AGENT: Final = "aiolens (archetype)"


class AsyncArchetypeClient:
    """An asyncio client for the Archetype AI Lens API.

    Use it as an async context manager, or call :meth:`aclose` when done::

        async with AsyncArchetypeClient() as client:
            lenses = await client.lenses.metadata()

    Args:
        api_key: the API key; defaults to ``$ATAI_API_KEY``.
        base_url: the API root; defaults to ``$ATAI_API_ENDPOINT``, then
            ``https://api.u1.archetypeai.app/v0.5``.
        session: an :class:`aiohttp.ClientSession` to use. The client never
            closes a session it was given.
        timeout: seconds per HTTP attempt (or an :class:`aiohttp.ClientTimeout`).
        max_retries: retries after the first attempt, for what is safe to retry.
        backoff: the retry delay schedule.

    Raises:
        ConfigurationError: no API key was given and ``$ATAI_API_KEY`` is unset.

    Attributes:
        lenses: lens templates (:class:`~aiolens.archetype.resources.Lenses`).
        sessions: lens sessions over REST.
        files: the Files API.

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
        _transport: HTTPTransport | None = None,
    ) -> None:
        install_log_redaction()
        key = api_key if api_key is not None else os.environ.get("ATAI_API_KEY")
        if not key:
            raise ConfigurationError("No Archetype API key: pass api_key=... or set ATAI_API_KEY.")
        self._api_key = SecretStr(key)
        self.base_url = (
            base_url or os.environ.get("ATAI_API_ENDPOINT") or DEFAULT_BASE_URL
        ).rstrip("/")
        if _transport is None:
            _transport = HTTPTransport.create(
                self.base_url,
                self._auth_headers,
                session=session,
                timeout=timeout,
                max_retries=max_retries,
                backoff=backoff or Backoff(),
                user_agent=_USER_AGENT,
            )
        self._http = _transport
        self.lenses = Lenses(self._http)
        self.sessions = Sessions(self._http)
        self.files = Files(self._http)

    async def _auth_headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    @property
    def auth_headers(self) -> Mapping[str, str]:
        """Headers that authenticate a request (for the realtime channels). Secret."""
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    def with_options(
        self,
        *,
        timeout: Timeout | None = None,
        max_retries: int | None = None,
    ) -> AsyncArchetypeClient:
        """A client with other per-call settings that shares this one's connections.

        Closing the copy does not close the shared connection pool; closing the
        original does.
        """
        changes: dict[str, Any] = {}
        if timeout is not None:
            changes["timeout"] = timeout
        if max_retries is not None:
            changes["max_retries"] = max_retries
        return type(self)(
            self._api_key.get_secret_value(),
            self.base_url,
            _transport=self._http.with_options(**changes),
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._http.closed

    async def aclose(self) -> None:
        """Close the connection pool if this client owns it. Idempotent."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={self._api_key!r})"
