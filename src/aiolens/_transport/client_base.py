"""What every aiolens client shares: its transport's lifecycle and a masked repr."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from aiolens._core.redact import SecretStr
from aiolens._transport.http import HTTPTransport, RateLimit, Timeout

__all__ = ["ClientBase"]


class ClientBase:
    """``async with`` support, an idempotent :meth:`aclose` and a repr without secrets."""

    base_url: str
    _http: HTTPTransport
    _api_key: SecretStr

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
        """Close the connection pool if this client owns it (a borrowed aiohttp
        session stays open). Idempotent."""
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
