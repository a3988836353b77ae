"""aiohttp REST transport: auth headers, timeouts, retries, error mapping.

One :class:`HTTPTransport` serves one client. It owns its
:class:`aiohttp.ClientSession` unless the caller passed one in, which it then
never closes. Copies made by :meth:`HTTPTransport.with_options` share the
session of the transport they were made from.

Retry policy (see the README's "Errors and retries"):

* A request that certainly never reached the server (connect failure, connect
  timeout) is retried whatever its method.
* An *idempotent* request is also retried after a reset, a read timeout, 408,
  429 and 5xx.
* A request that is not safe to repeat (``idempotent=False``) is retried only
  on 429 and 503, which say the server did not process it.

Waits follow :class:`~aiolens._core.backoff.Backoff` and honour
``Retry-After``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeVar, overload

import aiohttp
import msgspec
import yarl

from aiolens._core.backoff import Backoff, parse_retry_after
from aiolens._core.options import check_count, check_seconds
from aiolens._core.redact import get_logger
from aiolens._transport.event_loop import running_loop
from aiolens._transport.vendor_rules import NEUTRAL_RULES, VendorRules
from aiolens.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    RejectedRequestError,
)
from aiolens.observe import Observer, RawResponse, RequestSample, notify_request

__all__ = ["AuthHeaders", "HTTPTransport", "RateLimit", "Timeout", "as_timeout"]

T = TypeVar("T")

log = get_logger("http")

AuthHeaders = Callable[[], Awaitable[Mapping[str, str]]]


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


"""Returns the auth headers for one attempt (called again on every retry)."""

Timeout = float | aiohttp.ClientTimeout
"""Seconds for a whole attempt, or an :class:`aiohttp.ClientTimeout`."""

_NOT_PROCESSED: Final = frozenset({429, 503})
_RETRY_STATUSES: Final = frozenset({408, 429})
_DEFAULT_CONNECT: Final = 10.0


_TIMEOUT_FIELDS: Final = ("total", "connect", "sock_read", "sock_connect")


def as_timeout(value: Timeout, name: str = "timeout") -> aiohttp.ClientTimeout:
    """Normalise a :data:`Timeout` into an :class:`aiohttp.ClientTimeout`.

    Seconds must be a finite number > 0: aiohttp reads 0 or less as "no limit"
    and a NaN limit never fires, so neither may reach it. In an
    :class:`aiohttp.ClientTimeout` each number is checked the same way; its
    ``None`` fields keep aiohttp's meaning (no limit on that phase).

    Raises:
        ConfigurationError: a bad value, named ``name`` (``timeout.total`` ...).
    """
    if isinstance(value, aiohttp.ClientTimeout):
        for field_name in _TIMEOUT_FIELDS:
            seconds = getattr(value, field_name)
            if seconds is not None:
                check_seconds(f"{name}.{field_name}", seconds)
        return value
    seconds = check_seconds(name, value)
    return aiohttp.ClientTimeout(total=seconds, connect=min(seconds, _DEFAULT_CONNECT))


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decoder_for(tp: Any, dec_hook: Callable[[type, Any], Any] | None = None) -> Any:
    """A cached msgspec JSON decoder for ``tp`` (one reused decoder per type)."""
    key = (tp, dec_hook)
    dec = _decoders.get(key)
    if dec is None:
        dec = _decoders[key] = msgspec.json.Decoder(tp, dec_hook=dec_hook)
    return dec


@dataclass(slots=True)
class _SessionHolder:
    """The aiohttp session of a transport, created lazily inside the event loop.

    A holder made by :meth:`borrow` (for ``with_options`` copies) uses its
    parent's session and never closes it.
    """

    session: aiohttp.ClientSession | None
    owned: bool
    parent: _SessionHolder | None = None
    closed: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    rate_limit: RateLimit | None = None  # kept on the root holder, shared by copies

    def root(self) -> _SessionHolder:
        holder = self
        while holder.parent is not None:
            holder = holder.parent
        return holder

    async def get(self) -> aiohttp.ClientSession:
        if self.closed:
            raise APIConnectionError("The client is closed.", sent=False)
        if self.parent is not None:
            return await self.parent.get()
        if self.session is None:
            running_loop()  # a clear error under trio, not aiohttp's RuntimeError
            async with self.lock:
                if self.session is None:
                    self.session = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
                    )
        return self.session

    def borrow(self) -> _SessionHolder:
        return _SessionHolder(None, owned=False, parent=self)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.owned and self.session is not None:
            await self.session.close()


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The ``RateLimit-*`` headers of the server's latest answer (docs/protocol-notes.md).

    Attributes:
        limit: requests allowed in the window (``RateLimit-Limit``).
        remaining: requests left in it (``RateLimit-Remaining``).
        reset: seconds until the window resets, as of ``observed_at``
            (``RateLimit-Reset``).
        observed_at: :func:`time.monotonic` when the answer arrived.
    """

    limit: int
    remaining: int
    reset: float
    observed_at: float

    @property
    def resets_in(self) -> float:
        """Seconds from now until the window resets (0 once it has)."""
        return max(0.0, self.reset - (time.monotonic() - self.observed_at))

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        """Read the three headers; ``None`` when one is missing or unreadable."""
        values: list[str] = []
        for name in ("Limit", "Remaining", "Reset"):
            value = headers.get(f"RateLimit-{name}")
            if value is None:
                return None
            values.append(value.split(",")[0].split(";")[0].strip())  # "100;w=60": 100
        try:
            return cls(int(values[0]), int(values[1]), float(values[2]), time.monotonic())
        except ValueError:
            return None


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
    timeout: Timeout = 60.0
    max_retries: int = 2
    backoff: Backoff = field(default_factory=Backoff)
    user_agent: str = "aiolens"
    on_auth_error: Callable[[APIStatusError], Awaitable[bool]] | None = None
    rules: VendorRules = NEUTRAL_RULES
    observer: Observer | None = None
    _holder: _SessionHolder = field(default_factory=lambda: _SessionHolder(None, True))

    def __post_init__(self) -> None:
        as_timeout(self.timeout)
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
        holder = _SessionHolder(session, owned=session is None)
        return cls(_checked_base_url(base_url), auth, _holder=holder, **kwargs)

    def with_options(self, **changes: Any) -> HTTPTransport:
        """A copy with other settings that shares this transport's aiohttp session.

        Closing the copy leaves the shared session open.
        """
        return replace(self, _holder=self._holder.borrow(), **changes)

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
        timeout: Timeout | None = None,
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
        timeout: Timeout | None = None,
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
        timeout: Timeout | None = None,
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
                seconds, or an :class:`aiohttp.ClientTimeout`). A ``Retry-After``
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
        exchange = _Exchange(method, path)
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
        timeout: Timeout | None = None,
        max_retries: int | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Open a request and yield the live response (status already checked).

        Retries happen only until the response headers arrive; the body is the
        caller's to read. A reset, a truncated body or a timeout while the
        block reads the body is raised as :class:`APIConnectionError` /
        :class:`APITimeoutError`. Leaving the block (also by cancellation)
        releases the connection.
        """
        exchange = _Exchange(method, path)
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
                exchange=exchange,
            )
        except BaseException as exc:
            exchange.finished(self.observer, exc)
            raise
        exchange.finished(self.observer, None)  # the headers are in; the body is the caller's
        try:
            yield resp
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _connection_error(exc, method, str(resp.url), sent=True) from exc
        finally:
            resp.release()

    def idle_timeout(self, timeout: Timeout | None = None) -> aiohttp.ClientTimeout:
        """A timeout for long transfers: ``timeout`` seconds without receiving data.

        Unlike :func:`as_timeout` it sets no limit on the whole transfer, so a
        large download that keeps making progress never times out. An
        :class:`aiohttp.ClientTimeout` passes through unchanged.
        """
        value = self.timeout if timeout is None else timeout
        if isinstance(value, aiohttp.ClientTimeout):
            return as_timeout(value)
        value = check_seconds("timeout", value)
        return aiohttp.ClientTimeout(
            total=None, connect=min(value, _DEFAULT_CONNECT), sock_read=value
        )

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
        timeout: Timeout | None,
        max_retries: int | None,
        auth: AuthHeaders | None = None,
        read_body: bool,
        exchange: _Exchange | None = None,
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        """Run the attempts; return a 2xx/3xx response and, with ``read_body``, its body.

        Without ``read_body`` the response is returned unread and open: the
        caller must release it.
        """
        session = await self._holder.get()
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        if max_retries is not None:
            check_count("max_retries", max_retries, minimum=0)
        retries = self.max_retries if max_retries is None else max_retries
        client_timeout = as_timeout(self.timeout if timeout is None else timeout)
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
                error = _connection_error(exc, method, url)
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
            if attempt >= retries or not self._should_retry(error, idempotent):
                raise error
            retry_after = error.retry_after if isinstance(error, APIStatusError) else None
            if retry_after is not None and retry_after > (client_timeout.total or math.inf):
                # Waiting longer than the caller allows the call: the error says how long.
                log.info(
                    "%s %s failed (%s); not retried: Retry-After %.1fs exceeds the timeout",
                    method,
                    url,
                    _describe(error),
                    retry_after,
                )
                raise error
            delay = self.backoff.delay(attempt, retry_after)
            log.info(
                "%s %s failed (%s); retry %d/%d in %.2fs",
                method,
                url,
                _describe(error),
                attempt + 1,
                retries,
                delay,
            )
            attempt += 1
            await asyncio.sleep(delay)

    def _should_retry(self, error: APIStatusError | APIConnectionError, idempotent: bool) -> bool:
        if isinstance(error, APIStatusError):
            if self.rules.forbids_retry(error):
                return False  # the server says repeating it will not help
            if error.status in _NOT_PROCESSED:
                return True
            return idempotent and (error.status in _RETRY_STATUSES or error.status >= 500)
        return idempotent or not error.sent

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


@dataclass(slots=True)
class _Exchange:
    """One REST call as observers see it: started when made, its latest answer."""

    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    response: aiohttp.ClientResponse | None = None
    attempts: int = 0

    def finished(self, observer: Observer | None, error: BaseException | None) -> None:
        """Report the call to ``observer`` and to :func:`~aiolens.observe.capture_responses`."""
        elapsed = time.perf_counter() - self.started
        raw = None
        if self.response is not None:
            resp = self.response
            raw = RawResponse(
                method=self.method,
                url=str(resp.url),
                status=resp.status,
                headers=resp.headers,
                request_id=resp.headers.get("X-Request-ID"),
                elapsed=elapsed,
                attempts=self.attempts,
            )
        name = f"{self.method} {self.response.url.path if self.response else self.path}"
        notify_request(observer, RequestSample("http", name, elapsed, error, raw))


def _connection_error(
    exc: aiohttp.ClientError | TimeoutError, method: str, url: str, *, sent: bool | None = None
) -> APIConnectionError:
    """The typed error for a transport failure; ``sent`` is guessed from its kind.

    Only a failure to connect proves the request never left; anything later
    may have reached the server.
    """
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(f"Timed out connecting to {url}: {exc}", sent=bool(sent))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(f"Cannot connect to {url}: {exc}", sent=bool(sent))
    if isinstance(exc, TimeoutError):
        detail = str(exc) or "no answer within the timeout"  # str(TimeoutError()) is ""
        return APITimeoutError(f"{method} {url} timed out: {detail}", sent=sent is not False)
    return APIConnectionError(f"{method} {url} failed: {exc!r}", sent=sent is not False)


def _describe(error: APIStatusError | APIConnectionError) -> str:
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status}{' ' + error.code if error.code else ''}"
    return type(error).__name__


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
