"""aiohttp.web helpers shared by both emulated services."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from aiolens.emulator.faults import Faults

__all__ = [
    "INJECTED_FAULT",
    "ErrorBody",
    "ReplyFaults",
    "ServiceError",
    "abort_connection",
    "fault_middleware",
    "json_response",
    "new_id",
    "query_int",
    "read_json",
    "shard",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ErrorBody = Callable[["ServiceError"], dict[str, Any]]
"""Builds the service's own error envelope for an error."""

_encoder = msgspec.json.Encoder()

INJECTED_FAULT = web.RequestKey("aiolens_injected_fault", bool)
"""Set on a request whose answer is an injected fault (not the service's own answer)."""


def new_id(prefix: str, nbytes: int = 8) -> str:
    """A random id such as ``lsn-3f2a...``."""
    return f"{prefix}{secrets.token_hex(nbytes)}"


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response encoded with msgspec."""
    return web.Response(
        body=_encoder.encode(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


class ServiceError(Exception):
    """Raised by handlers; the service's middleware turns it into its error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retryable: bool | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # docs/protocol-notes.md, "Errors": rate_limited (429), internal_error (500) retry;
        # the other 5xx (bad gateway, unavailable, timeout) are transient as well.
        self.retryable = (
            retryable if retryable is not None else status in (408, 429) or status >= 500
        )
        self.details = details or {}
        self.headers = headers or {}


def query_int(request: web.Request, name: str, default: int) -> int:
    """The integer query parameter ``name`` (``default`` when absent).

    Raises:
        ServiceError: 400 ``invalid_parameter`` when it is not an integer.
    """
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ServiceError(400, "invalid_parameter", f"{name} must be an integer") from None


def shard(items: list[Any], request: web.Request) -> list[Any]:
    """The shard of ``items`` a Lens listing asks for (``shard_index``, ``max_items_per_shard``)."""
    index = query_int(request, "shard_index", -1)
    size = query_int(request, "max_items_per_shard", -1)
    if size <= 0:
        return items if index <= 0 else []
    if index < 0:
        return items
    return items[index * size : (index + 1) * size]


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body.

    Raises:
        ServiceError: 400 ``malformed_body`` for invalid JSON or a non-object.
    """
    raw = await request.read()
    try:
        body = msgspec.json.decode(raw) if raw else {}
    except msgspec.DecodeError as exc:
        raise ServiceError(400, "malformed_body", f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ServiceError(400, "malformed_body", "Request body must be a JSON object")
    return body


def fault_middleware(faults: Faults, error_body: ErrorBody) -> Any:
    """Middleware that applies queued HTTP faults and renders :class:`ServiceError`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = faults.take_http(request.method, request.path)
        if fault is not None:
            request[INJECTED_FAULT] = True
            if fault.status is None:  # a slow answer
                response = await answer(request, handler)
                await asyncio.sleep(fault.delay)
                return response
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.after_processing:
                with contextlib.suppress(ServiceError):
                    await handler(request)
            if fault.status == 0:
                if request.transport is not None:
                    request.transport.close()
                raise web.HTTPInternalServerError()  # never reaches the closed socket
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            err = ServiceError(
                fault.status,
                "rate_limited" if fault.status == 429 else "service_unavailable",
                f"Injected fault: HTTP {fault.status}",
                headers=headers,
            )
            return json_response(error_body(err), err.status, {**err.headers})
        return await answer(request, handler)

    async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ServiceError as err:
            return json_response(error_body(err), err.status, err.headers)

    return middleware


async def abort_connection(request: web.Request) -> None:
    """Flush what was written (bounded wait), then reset the connection."""
    transport = request.transport
    if transport is None:
        return
    # A transport has no "flushed" notification; poll its buffer briefly.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            while transport.get_write_buffer_size() and not transport.is_closing():  # noqa: ASYNC110
                await asyncio.sleep(0.001)
    transport.abort()


class ReplyFaults:
    """One WebSocket's reply faults (:class:`~aiolens.emulator.faults.Faults`): ``reply_delay``
    before each reply, one malformed frame once ``malformed_after`` replies went out, and
    the connection dropped after its ``ws_drop_after``-th reply.

    Each knob is read when it applies, so a test may change it while the socket is open.
    """

    __slots__ = ("_faults", "_malformed_sent", "sent")

    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._malformed_sent = False
        self.sent = 0
        """Replies sent so far."""

    async def before_reply(self) -> bool:
        """Wait out ``reply_delay``; ``True`` when a malformed frame goes out first (once)."""
        if self._faults.reply_delay:
            await asyncio.sleep(self._faults.reply_delay)
        bad = self._faults.malformed_after
        if bad is not None and not self._malformed_sent and self.sent >= bad:
            self._malformed_sent = True
            return True
        return False

    def replied(self) -> bool:
        """Count a reply sent; ``True`` when the connection is to be dropped now."""
        self.sent += 1
        drop = self._faults.ws_drop_after
        return drop is not None and self.sent >= drop
