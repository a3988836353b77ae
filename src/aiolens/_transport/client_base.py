"""What every aiolens client shares: its transport's lifecycle and a masked repr."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from aiolens._core.redact import SecretStr
from aiolens._transport.http import HTTPTransport

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
