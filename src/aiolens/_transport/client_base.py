"""What every aiolens client shares: its transport's lifecycle and a masked repr."""

from __future__ import annotations

from typing import Any, Self

from aiolens._core.redact import SecretStr
from aiolens._transport.closing import AsyncClosing
from aiolens._transport.event_loop import running_loop
from aiolens._transport.http import HTTPTransport, RateLimit, Timeout
from aiolens._transport.session_registry import SessionRegistry
from aiolens._transport.shielded import run_to_completion

__all__ = ["ClientBase"]


class ClientBase(AsyncClosing):
    """``async with`` support, an idempotent :meth:`aclose` and a repr without secrets."""

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

    def _transport_with(self, *, timeout: Timeout | None, max_retries: int | None) -> HTTPTransport:
        """A copy of the transport with these settings (``None``: unchanged), same pool."""
        changes: dict[str, Any] = {}
        if timeout is not None:
            changes["timeout"] = timeout
        if max_retries is not None:
            changes["max_retries"] = max_retries
        return self._http.with_options(**changes)

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
