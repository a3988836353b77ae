"""What every aiolens client shares: its transport's lifecycle, ``with_options`` and a
masked repr."""

from __future__ import annotations

import copy
from typing import Any, Protocol, Self

from aiolens._core.redact import SecretStr
from aiolens._transport.closing import AsyncClosing
from aiolens._transport.event_loop import running_loop
from aiolens._transport.http import HTTPTransport, RateLimit, Timeout
from aiolens._transport.session_registry import SessionRegistry
from aiolens._transport.shielded import run_to_completion

__all__ = ["ClientBase", "SessionHost"]


class SessionHost(Protocol):
    """What a session needs from the client that made it (every client is one).

    Sessions are typed against this, not against the client class, so a client
    module imports its session module and never the other way round.
    """

    @property
    def transport(self) -> HTTPTransport:
        """The client's REST transport."""
        ...

    @property
    def registry(self) -> SessionRegistry[Any]:
        """The registry the session joins when made and leaves when closed."""
        ...


class ClientBase(AsyncClosing):
    """``async with`` support, an idempotent :meth:`aclose`, :meth:`with_options` and a
    repr without secrets.

    A subclass builds its resources (``client.lenses``, ``client.sessions`` ...) in
    :meth:`_bind_resources`, which :meth:`with_options` calls again on the copy.
    """

    base_url: str
    _http: HTTPTransport
    _api_key: SecretStr
    _registry: SessionRegistry[Any]
    _owns_registry: bool = True  # False in a with_options() copy: the original closes them

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._http.closed

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate-limit window the server reported on its latest answer, if it did.

        Kynasmith sends ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` on every
        answer (use it to pace bulk work before a 429); ``None`` until then.
        """
        return self._http.rate_limit

    @property
    def transport(self) -> HTTPTransport:
        """The REST transport this client sends with: what its sessions call through
        (their event streams, backoff, observer, error rules). Internal to aiolens."""
        return self._http

    @property
    def registry(self) -> SessionRegistry[Any]:
        """The registry the client's sessions join when made and leave when closed.
        Internal to aiolens (users read ``open_sessions``)."""
        return self._registry

    def with_options(
        self,
        *,
        timeout: Timeout | None = None,
        max_retries: int | None = None,
    ) -> Self:
        """A client with other per-call settings that shares this one's connections.

        ::

            quick = client.with_options(timeout=5, max_retries=0)
            await quick.lenses.info()

        The copy shares the connection pool, the rate-limit window, the session
        registry (``open_sessions``) and everything else the client holds, such as
        Kynasmith's access tokens; its resources (``copy.lenses``,
        ``copy.sessions`` ...) send with the new settings. Closing the copy closes
        the sessions opened through it, not the pool; closing the original closes
        every session (the copies' too) and the pool.

        Args:
            timeout: per-attempt timeout for the copy (``None``: unchanged).
            max_retries: retries for the copy (``None``: unchanged).

        Raises:
            ConfigurationError: a bad ``timeout`` or ``max_retries``.
        """
        changes: dict[str, Any] = {}
        if timeout is not None:
            changes["timeout"] = timeout
        if max_retries is not None:
            changes["max_retries"] = max_retries
        clone = copy.copy(self)
        clone._owns_registry = False  # the original closes the registry's sessions
        clone._http = self._http.with_options(**changes)
        clone._bind_resources()
        return clone

    def _bind_resources(self) -> None:
        """(Re)build the resources that send through ``self._http``."""

    async def aclose(self) -> None:
        """Close the client's sessions, then its connection pool. Idempotent.

        First every session made through the client and not yet closed is closed
        with its own ``aclose()`` (a created one is destroyed or cancelled
        server-side, an attached one only disconnected), opens in progress are
        waited for and what they made closed too, and closes already under way
        (a cancelled ``async with client.session(...)``) are waited for: the pool
        stays open until they are done. Each close is bounded by its session's
        ``destroy_timeout`` / ``cancel_timeout``; a session that could not be
        destroyed is logged, one line each. Then the pool is closed if the
        client owns it (a borrowed aiohttp session stays open).

        A :meth:`with_options` copy shares the original's pool and registry:
        closing the copy closes the sessions opened through it, not the pool;
        closing the original closes every session (its copies' too) and the pool.

        Cancel: the work runs to its end (shielded), then
        :class:`asyncio.CancelledError` is raised.
        """
        await run_to_completion(self._close())

    async def _close(self) -> None:
        if self._owns_registry:
            await self._registry.aclose()
        else:
            await self._registry.close_sessions(self)
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        """Check that an asyncio loop runs (a clear :class:`ConfigurationError` under trio)."""
        running_loop()
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={self._api_key!r})"
