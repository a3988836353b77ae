"""Short-lived Kynasmith access tokens: minted, cached per scope set, refreshed early.

Tokens come from ``POST /api/auth/access-tokens`` with the scopes a call
needs. Each scope set has its own cached token, re-minted ``refresh_margin``
seconds before it expires, or at once after the server says
``access_token_expired``. Concurrent callers that need a token at the same
moment share one mint (a lock per scope set), so a burst of calls makes one
token request, not one each. The same holds after ``access_token_expired``:
only the token that failed is dropped, so calls whose answers arrive after
the re-mint keep the new token instead of minting again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiolens._core.redact import SecretStr, get_logger, register_secret
from aiolens._transport.http import AuthHeaders, HTTPTransport
from aiolens.kynasmith.models import AccessToken

__all__ = ["TokenManager"]

log: logging.Logger = get_logger("kynasmith.tokens")

_last_sent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "aiolens_kynasmith_last_token", default=None
)
"""The token the current task last put in a request (see :meth:`TokenManager.failed`)."""


@dataclass(slots=True)
class _Cached:
    token: str = field(repr=False)
    refresh_at: float
    """When to replace it: ``refresh_margin`` before expiry (half-way for short-lived ones)."""
    project_id: str | None


async def _no_auth() -> Mapping[str, str]:
    return {}


class TokenManager:
    """Mints and caches access tokens for one credential.

    Args:
        http: the transport to the Kynasmith API.
        api_key: the ``<key_id>:<key_secret>`` credential (kept as a
            :class:`SecretStr`, so it shows in no repr).
        project_id: sent with every mint when given (checked by the server).
        refresh_margin: seconds before expiry when a token is replaced; a
            token living no longer than that is replaced half-way instead (not
            re-minted on every call).
    """

    def __init__(
        self,
        http: HTTPTransport,
        api_key: str | SecretStr,
        *,
        project_id: str | None = None,
        refresh_margin: float = 5.0,
    ) -> None:
        self._http = http
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.project_id = project_id
        self.refresh_margin = refresh_margin
        self._cache: dict[frozenset[str], _Cached] = {}
        self._locks: dict[frozenset[str], asyncio.Lock] = {}
        self.minted: int = 0
        """How many tokens this manager minted."""

    def invalidate(self, token: str | None = None) -> None:
        """Forget ``token`` if it is still cached, or every cached token when ``None``."""
        if token is None:
            self._cache.clear()
            return
        for key, cached in list(self._cache.items()):
            if cached.token == token:
                del self._cache[key]

    def failed(self) -> None:
        """The server refused the token the current task last sent (``access_token_expired``).

        Only that token is forgotten: when several calls fail with the same
        expired token, the first one re-mints and the others reuse its token.
        """
        token = _last_sent.get()
        if token is not None:
            self.invalidate(token)

    async def token(self, scopes: Iterable[str]) -> str:
        """A valid token carrying ``scopes``; mints one if needed.

        If the caller holding the lock is cancelled mid-mint, the next caller
        mints again; nothing is cached half-way.
        """
        key = frozenset(scopes)
        cached = self._cache.get(key)
        if cached is not None and cached.refresh_at > time.monotonic():
            return cached.token
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None and cached.refresh_at > time.monotonic():
                return cached.token
            minted = await self._mint(key)
            self._cache[key] = minted
            return minted.token

    async def _mint(self, scopes: frozenset[str]) -> _Cached:
        body: dict[str, object] = {
            "api_key": self._api_key.get_secret_value(),
            "scopes": sorted(scopes),
        }
        if self.project_id:
            body["project_id"] = self.project_id
        started = time.monotonic()
        answer: AccessToken = await self._http.request(
            "POST",
            "/api/auth/access-tokens",
            json=body,
            response_type=AccessToken,
            idempotent=True,
            auth=_no_auth,
        )
        register_secret(answer.access_token)
        self.minted += 1
        if self.project_id is None:
            self.project_id = answer.project_id
        log.debug(
            "minted a token for %s (expires in %.0fs)", sorted(scopes), answer.expires_in_seconds
        )
        ttl = answer.expires_in_seconds
        # A token living no longer than the margin is still reused for half its life.
        refresh_at = started + (ttl - self.refresh_margin if ttl > self.refresh_margin else ttl / 2)
        return _Cached(answer.access_token, refresh_at, answer.project_id)

    def headers(self, *scopes: str) -> AuthHeaders:
        """An auth-headers callable for a call needing ``scopes`` (used per attempt)."""

        async def auth() -> Mapping[str, str]:
            token = await self.token(scopes)
            _last_sent.set(token)  # read by failed() in the same task
            return {"Authorization": f"Bearer {token}"}

        return auth
