"""aiohttp REST transport: auth headers, timeouts, retries, error mapping.

One :class:`HTTPTransport` serves one client. It owns its
:class:`aiohttp.ClientSession` unless the caller passed one in, which it then
never closes. Copies made by :meth:`HTTPTransport.with_options` share the
session of the transport they were made from.

Its parts, by concern: the retry policy (see the README's "Errors and
retries") in :mod:`~aiolens._transport.http_retry`, timeouts in
:mod:`~aiolens._transport.http_timeouts`, the shared pool and rate-limit window
in :mod:`~aiolens._transport.http_pool`, bodies in
:mod:`~aiolens._transport.http_bodies`, observer reports in
:mod:`~aiolens._transport.http_observed`, and what a vendor decides (error
envelopes, 2xx refusals, retry flags) in :mod:`~aiolens._transport.vendor_rules`.
Waits follow :class:`~aiolens._core.backoff.Backoff` and honour ``Retry-After``.

Size: what is left is the one request loop and its typed overloads (one per
response shape), which read best beside the loop they describe.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, overload

import aiohttp
import msgspec
import yarl

from aiolens._core.backoff import Backoff, parse_retry_after
from aiolens._core.options import check_count
from aiolens._core.redact import get_logger
from aiolens._core.timeouts import Timeout
from aiolens._transport.http_bodies import FormFile, decoder_for, multipart
from aiolens._transport.http_observed import Exchange
from aiolens._transport.http_pool import PoolHolder, RateLimit
from aiolens._transport.http_retry import connection_error, describe, should_retry
from aiolens._transport.http_timeouts import AnyTimeout, as_timeout, idle_timeout
from aiolens._transport.vendor_rules import NEUTRAL_RULES, VendorRules
from aiolens.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    ConfigurationError,
    RejectedRequestError,
)
from aiolens.observe import Observer

__all__ = [
    "AnyTimeout",
    "AuthHeaders",
    "FormFile",
    "HTTPTransport",
    "RateLimit",
    "Timeout",
    "as_timeout",
    "decoder_for",
    "multipart",
]

T = TypeVar("T")

log = get_logger("http")

AuthHeaders = Callable[[], Awaitable[Mapping[str, str]]]
"""Returns the auth headers for one attempt (called again on every retry)."""


def _checked_base_url(base_url: str) -> str:
    """``base_url`` without trailing slashes, or :class:`ConfigurationError`."""
    expected = "expected http(s)://host[:port][/path]"
    try:
        url = yarl.URL(base_url)
        url.port  # noqa: B018  (validates it)
    except ValueError as exc:
        raise ConfigurationError(f"Invalid base URL: {exc}; {expected}") from None
    if url.scheme not in ("http", "https") or not url.host:
        shown = url.with_user(None) if url.absolute else url  # never echo credentials
        raise ConfigurationError(f"Invalid base URL {str(shown)!r}: {expected}")
    return base_url.rstrip("/")


@dataclass(slots=True)
class HTTPTransport:
    """REST calls against one base URL.

    Args:
        base_url: prefix for every path (no trailing slash needed).
        auth: coroutine returning the auth headers for each attempt.
        session: an aiohttp session to use; it is never closed by us.
        timeout: per-attempt timeout.
        max_retries: retries after the first attempt.
        backoff: delay schedule between attempts.
        user_agent: ``User-Agent`` header value.
        on_auth_error: called with a 401 error before it is raised; returning
            ``True`` means "credentials refreshed, try again" (once per call).
        rules: the vendor's reading of error bodies, 2xx refusals and retry
            flags (:class:`~aiolens._transport.vendor_rules.VendorRules`); the
            neutral default reads errors by status alone.
    """

    base_url: str
    auth: AuthHeaders
    timeout: AnyTimeout = 60.0
    max_retries: int = 2
    backoff: Backoff = field(default_factory=Backoff)
    user_agent: str = "aiolens"
    on_auth_error: Callable[[APIStatusError], Awaitable[bool]] | None = None
    rules: VendorRules = NEUTRAL_RULES
    observer: Observer | None = None
    _holder: PoolHolder = field(default_factory=lambda: PoolHolder(None, True))
    _timeout_seen: bool = field(default=False, repr=False)  # checked (and warned) before

    def __post_init__(self) -> None:
        as_timeout(self.timeout, user_given=not self._timeout_seen)
        check_count("max_retries", self.max_retries, minimum=0)
        if not isinstance(self.backoff, Backoff):
            raise ConfigurationError(f"backoff must be a Backoff, not {self.backoff!r}")

    @classmethod
    def create(
        cls,
        base_url: str,
        auth: AuthHeaders,
        *,
        session: aiohttp.ClientSession | None = None,
        **kwargs: Any,
    ) -> HTTPTransport:
        """Build a transport; ``session`` is borrowed, never closed.

        Raises:
            ConfigurationError: ``base_url`` is not an ``http(s)://host[:port][/path]``
                URL (a typo fails here, once, instead of as retried connection errors).
        """
        holder = PoolHolder(session, owned=session is None)
        return cls(_checked_base_url(base_url), auth, _holder=holder, **kwargs)

    def with_options(self, **changes: Any) -> HTTPTransport:
        """A copy with other settings that shares this transport's aiohttp session.

        Closing the copy leaves the shared session open.
        """
        seen = "timeout" not in changes
        return replace(self, _holder=self._holder.borrow(), _timeout_seen=seen, **changes)

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._holder.closed

    @property
    def rate_limit(self) -> RateLimit | None:
        """The ``RateLimit-*`` headers of the latest answer to this transport or a copy."""
        return self._holder.root().rate_limit

    async def aclose(self) -> None:
        """Close the owned aiohttp session. Idempotent; a borrowed session stays open."""
        await self._holder.aclose()

    async def client_session(self) -> aiohttp.ClientSession:
        """The aiohttp session this transport sends with (made on first use).

        For requests that must not carry the API key, such as PUTs to presigned
        storage URLs. Do not close it: :meth:`aclose` does, when it is owned.
        """
        return await self._holder.get()

    def url(self, path: str) -> str:
        """The absolute URL for ``path`` (absolute URLs pass through)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        response_type: type[T],
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Callable[[], Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: AnyTimeout | None = None,
        max_retries: int | None = None,
        check_body: bool = True,
        dec_hook: Callable[[type, Any], Any] | None = None,
        auth: AuthHeaders | None = None,
    ) -> T: ...

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        response_type: Any = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Callable[[], Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: AnyTimeout | None = None,
        max_retries: int | None = None,
        check_body: bool = True,
        dec_hook: Callable[[type, Any], Any] | None = None,
        auth: AuthHeaders | None = None,
    ) -> Any: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        response_type: Any = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Callable[[], Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: AnyTimeout | None = None,
        max_retries: int | None = None,
        check_body: bool = True,
        dec_hook: Callable[[type, Any], Any] | None = None,
        auth: AuthHeaders | None = None,
    ) -> Any:
        """Send a request with retries and decode the JSON answer.

        Args:
            method: HTTP method.
            path: path under the base URL.
            response_type: a msgspec-decodable type for the body; ``None``
                returns the decoded JSON as plain Python objects.
            json: a body encoded with msgspec.
            params: query parameters (``None`` values dropped).
            data: a factory building the body anew for every attempt (multipart).
            headers: extra headers.
            idempotent: whether repeating the request is harmless; defaults to
                ``True`` for GET/HEAD/PUT/DELETE/OPTIONS and ``False`` otherwise.
            timeout: per-attempt timeout for this call (a finite number > 0 of
                seconds, or a :class:`~aiolens.Timeouts`). A ``Retry-After``
                longer than its total is not waited for: the error is raised at
                once (its ``retry_after`` says how long the server asked).
            max_retries: retries for this call.
            check_body: raise :class:`RejectedRequestError` for a 2xx body that
                the vendor's rules read as a refusal (the Lens API's
                ``is_valid: false`` or non-empty ``errors``); ``False`` skips it.
            dec_hook: msgspec decode hook for custom types.
            auth: auth headers for this call instead of the transport's.

        Raises:
            ConfigurationError: a bad ``timeout`` or ``max_retries`` (nothing sent).
            APIStatusError: a subclass per status, after retries ran out.
            APIConnectionError: the server could not be reached or the
                connection broke; ``APITimeoutError`` when a timeout fired.
            APIResponseValidationError: a 2xx body of an unexpected shape.

        Cancelling the call cancels the attempt in flight; nothing is retried.
        Reading the answer's body is part of the attempt: a reset or a timeout
        while it arrives is retried like one before the headers.
        """
        exchange = Exchange(method, path)
        try:
            resp, body = await self._send(
                method,
                path,
                json=json,
                params=params,
                data=data,
                headers=headers,
                idempotent=idempotent,
                timeout=timeout,
                max_retries=max_retries,
                auth=auth,
                read_body=True,
                exchange=exchange,
            )
            result = self._decode(
                resp, body, response_type, check_body=check_body, dec_hook=dec_hook
            )
        except BaseException as exc:
            exchange.finished(self.observer, exc)
            raise
        exchange.finished(self.observer, None)
        return result

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: AnyTimeout | None = None,
        max_retries: int | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Open a request and yield the live response (status already checked).

        Retries happen only until the response headers arrive; the body is the
        caller's to read. A reset, a truncated body or a timeout while the
        block reads the body is raised as :class:`APIConnectionError` /
        :class:`APITimeoutError`. Leaving the block (also by cancellation)
        releases the connection.
        """
        exchange = Exchange(method, path)
        try:
            resp, _ = await self._send(
                method,
                path,
                params=params,
                headers=headers,
                timeout=timeout,
                max_retries=max_retries,
                idempotent=True,
                read_body=False,
                user_timeout=False,
                exchange=exchange,
            )
        except BaseException as exc:
            exchange.finished(self.observer, exc)
            raise
        exchange.finished(self.observer, None)  # the headers are in; the body is the caller's
        try:
            yield resp
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise connection_error(exc, method, str(resp.url), sent=True) from exc
        finally:
            resp.release()

    def idle_timeout(self, timeout: AnyTimeout | None = None) -> aiohttp.ClientTimeout:
        """:func:`~aiolens._transport.http_timeouts.idle_timeout` of ``timeout``, by
        default of the transport's own (no limit on the whole of a long transfer)."""
        if timeout is None:
            return idle_timeout(self.timeout, user_given=False)  # warned when given
        return idle_timeout(timeout)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Callable[[], Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None,
        timeout: AnyTimeout | None,
        max_retries: int | None,
        auth: AuthHeaders | None = None,
        read_body: bool,
        user_timeout: bool = True,
        exchange: Exchange | None = None,
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        """Run the attempts; return a 2xx/3xx response and, with ``read_body``, its body.

        Without ``read_body`` the response is returned unread and open: the
        caller must release it. ``user_timeout``: ``timeout`` came from a user
        (an :class:`aiohttp.ClientTimeout` warns), not from aiolens itself.
        """
        session = await self._holder.get()
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        if max_retries is not None:
            check_count("max_retries", max_retries, minimum=0)
        retries = self.max_retries if max_retries is None else max_retries
        if timeout is None:
            client_timeout = as_timeout(self.timeout, user_given=False)  # warned when given
        else:
            client_timeout = as_timeout(timeout, user_given=user_timeout)
        url = self.url(path)
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        payload = msgspec.json.encode(json) if json is not None else None
        refreshed = False
        attempt = 0
        while True:
            hdrs = {"User-Agent": self.user_agent, "Accept": "application/json"}
            hdrs.update(await (auth or self.auth)())
            if payload is not None:
                hdrs["Content-Type"] = "application/json"
            if headers:
                hdrs.update(headers)
            started = time.perf_counter()
            error: APIStatusError | APIConnectionError
            try:
                resp = await session.request(
                    method,
                    url,
                    params=query,
                    data=payload if data is None else data(),
                    headers=hdrs,
                    timeout=client_timeout,
                )
                if exchange is not None:
                    exchange.response, exchange.attempts = resp, attempt + 1
                if "RateLimit-Remaining" in resp.headers:
                    self._holder.root().rate_limit = RateLimit.from_headers(resp.headers)
                if resp.status < 400:
                    if not read_body:
                        return resp, b""
                    try:
                        body = await resp.read()
                    finally:
                        resp.release()
                    log.debug(
                        "%s %s -> %d (%d bytes, %.1f ms)",
                        method,
                        resp.url.path,
                        resp.status,
                        len(body),
                        (time.perf_counter() - started) * 1000,
                    )
                    return resp, body
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = connection_error(exc, method, url)
            else:
                try:
                    body = await resp.read()
                except (aiohttp.ClientError, TimeoutError):
                    body = b""
                finally:
                    resp.release()
                error = self.rules.status_error(
                    resp.status,
                    body,
                    request_id=resp.headers.get("X-Request-ID"),
                    retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                )
                log.debug(
                    "%s %s -> %d %s",
                    method,
                    resp.url.path,
                    resp.status,
                    error.code or "",
                )
                if (
                    resp.status == 401
                    and not refreshed
                    and self.on_auth_error is not None
                    and await self.on_auth_error(error)
                ):
                    refreshed = True
                    continue
            if attempt >= retries or not should_retry(error, idempotent, self.rules):
                raise error
            retry_after = error.retry_after if isinstance(error, APIStatusError) else None
            if retry_after is not None and retry_after > (client_timeout.total or math.inf):
                # Waiting longer than the caller allows the call: the error says how long.
                log.info(
                    "%s %s failed (%s); not retried: Retry-After %.1fs exceeds the timeout",
                    method,
                    url,
                    describe(error),
                    retry_after,
                )
                raise error
            delay = self.backoff.delay(attempt, retry_after)
            log.info(
                "%s %s failed (%s); retry %d/%d in %.2fs",
                method,
                url,
                describe(error),
                attempt + 1,
                retries,
                delay,
            )
            attempt += 1
            await asyncio.sleep(delay)

    def _decode(
        self,
        resp: aiohttp.ClientResponse,
        body: bytes,
        response_type: Any,
        *,
        check_body: bool,
        dec_hook: Callable[[type, Any], Any] | None,
    ) -> Any:
        if check_body and self.rules.rejects(body):
            raise self.rules.status_error(
                resp.status,
                body,
                request_id=resp.headers.get("X-Request-ID"),
                cls=RejectedRequestError,
            )
        if not body:
            body = b"null"
        try:
            if response_type is None:
                return msgspec.json.decode(body)
            return decoder_for(response_type, dec_hook).decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise APIResponseValidationError(
                f"Unexpected response body from {resp.method} {resp.url.path}: {exc}",
                status=resp.status,
                body=body[:2000].decode("utf-8", "replace"),
            ) from exc


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
