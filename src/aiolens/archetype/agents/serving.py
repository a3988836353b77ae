"""``AgentConnection``: the WebSocket of a serving agent instance.

Protocol: docs/protocol-notes.md, "Agents API".

``GET agents/instances/{id}/connect`` upgrades to a WebSocket whose first
frame is ``{"status": "connected"}``; after that every JSON message sent is
answered by exactly one frame, in order, without a request id. The
connection therefore works like a Lens session's socket: the same
:class:`~aiolens._transport.ws.WebSocketChannel` (one reader task, coalesced
writes, keepalive, reconnects) and the same
:class:`~aiolens._core.correlator.Correlator`, here with one request type, so
each reply goes to the oldest waiting query. Many tasks may query at once
(pipelined); a cancelled query's late reply is dropped, never handed to
another caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from aiolens._core.correlator import Correlator
from aiolens._core.options import check_bool, check_count, check_optional_seconds, check_seconds
from aiolens._core.redact import get_logger
from aiolens._transport.closing import AsyncClosing
from aiolens._transport.http import HTTPTransport
from aiolens._transport.ws import WebSocketChannel
from aiolens._transport.ws_requests import fail_waiting, send_request
from aiolens.archetype.agents._rest import _id
from aiolens.archetype.agents.models import QueryResult
from aiolens.archetype.agents.resources import checked_reply
from aiolens.errors import APITimeoutError, ConnectionLostError, ProtocolError

__all__ = ["AgentConnection"]

log: logging.Logger = get_logger("agents")

_QUERY: Final = "query"
_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(dict[str, Any])


def _one_type(message: Mapping[str, Any]) -> str:
    return _QUERY


class AgentConnection(AsyncClosing):
    """A serving instance's socket: send windows, get one answer each.

    Get one with ``async with client.agents.connect(instance_id) as conn:``.

    Args:
        http: the agents transport (its base URL and auth headers).
        instance_id: the serving instance.
        max_in_flight: queries that may await answers at once; more callers
            wait for a slot (backpressure).
        request_timeout: default seconds for :meth:`query`.
        open_timeout: seconds for the handshake and the ``connected`` frame.
        ping_interval: seconds between keepalive pings (``None`` disables).
        reconnect: reconnect after a recoverable close (queries waiting at
            that moment fail with :class:`ConnectionLostError`: the server
            may or may not have answered them).

    Raises:
        ValueError: ``instance_id`` is not a non-empty string.
        ConfigurationError: a bad option value (a ``ValueError`` that names
            it; checked as every session's options are, see
            :mod:`aiolens._core.options`).
    """

    def __init__(
        self,
        http: HTTPTransport,
        instance_id: str,
        *,
        max_in_flight: int = 256,
        request_timeout: float = 60.0,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        reconnect: bool = True,
    ) -> None:
        self.instance_id = _id(instance_id)
        self.request_timeout = check_seconds("request_timeout", request_timeout)
        self._open_timeout = check_seconds("open_timeout", open_timeout)
        check_count("max_in_flight", max_in_flight)
        check_optional_seconds("ping_interval", ping_interval)
        check_bool("reconnect", reconnect)
        self._http = http
        self._correlator: Correlator[asyncio.Future[dict[str, Any]]] = Correlator(_one_type)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._greeted = asyncio.Event()
        self._greeting_error: ProtocolError | None = None
        self._closed = False
        self._channel = WebSocketChannel(
            self._target,
            on_message=self._on_message,
            on_lost=self._on_lost,
            on_reconnect=self._reconnected,
            reconnect=reconnect,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_interval,
            name=f"agent instance {instance_id}",
            rules=http.rules,
        )
        self.unmatched_replies: int = 0
        """Frames that matched no waiting query (logged and dropped)."""
        self.malformed_replies: int = 0
        """Frames that were not JSON objects (logged and dropped)."""

    def __repr__(self) -> str:
        return f"AgentConnection({self.instance_id!r}, connected={self._channel.connected})"

    @property
    def url(self) -> str:
        """The socket's URL (``wss://…/agents/instances/{id}/connect``)."""
        base = self._http.url(f"/agents/instances/{self.instance_id}/connect")
        return "ws" + base[len("http") :]

    async def _target(self) -> tuple[str, Mapping[str, str]]:
        return self.url, await self._http.auth()

    async def connect(self) -> None:
        """Open the socket and wait for its ``{"status": "connected"}`` frame.

        Raises:
            ConflictError: the instance is not a running serving instance.
            NotFoundError: no such instance.
            APITimeoutError: no ``connected`` frame within ``open_timeout``.
            ProtocolError: the first frame was something else.
        """
        await self._channel.connect()
        try:
            async with asyncio.timeout(self._open_timeout):
                await self._greeted.wait()
        except BaseException as exc:
            await self._channel.aclose()
            if isinstance(exc, TimeoutError):
                raise APITimeoutError(
                    f"{self.instance_id}: no 'connected' frame within {self._open_timeout}s"
                ) from None
            raise
        if self._greeting_error is not None:
            await self._channel.aclose()
            raise self._greeting_error

    # ---- the reader ------------------------------------------------------------------------

    def _on_message(self, data: str | bytes) -> None:
        try:
            reply = _decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.malformed_replies += 1
            log.warning("%s: malformed frame skipped: %s", self.instance_id, exc)
            return
        if not self._greeted.is_set():
            if reply.get("status") != "connected":
                self._greeting_error = ProtocolError(
                    f"{self.instance_id}: expected a 'connected' frame first, got {reply!r:.200}"
                )
            self._greeted.set()
            return
        routed = self._correlator.route(reply)
        if routed is None:
            self.unmatched_replies += 1
            log.warning("%s: a reply with no query waiting; dropped", self.instance_id)
            return
        waiter, _ = routed
        if waiter.done():  # its caller was cancelled or timed out
            return
        waiter.set_result(reply)

    def _on_lost(self, error: ConnectionLostError) -> None:
        self._fail_pending(error)

    def _fail_pending(self, error: ConnectionLostError) -> None:
        fail_waiting(self._correlator, error)

    async def _reconnected(self) -> None:
        self._greeted.clear()  # the new connection greets again before any reply

    # ---- queries ---------------------------------------------------------------------------

    async def query(
        self, window: Mapping[str, Any], *, timeout: float | None = None
    ) -> QueryResult:
        """Send one window and return its answer.

        Args:
            window: the window, e.g. ``{"columns": [...], "rows": [[...], ...]}``.
            timeout: seconds in all (slot, connection, answer); defaults to
                ``request_timeout``.

        Returns:
            The answer (``status`` ``completed``, or another status the server
            sent, passed through).

        Raises:
            AgentQueryError: the answer's status is ``failed``.
            APITimeoutError: no answer within ``timeout`` (its late answer is dropped).
            ConnectionLostError: the connection closed while waiting.

        Cancelling the call abandons only this query; the socket stays usable.
        """
        if self._closed:
            raise ConnectionLostError("The connection is closed")
        if not isinstance(window, Mapping):
            raise ValueError("window must be a mapping (a JSON object)")
        frame = _encoder.encode(window)
        limit = self.request_timeout if timeout is None else timeout
        channel = self._channel
        try:
            async with asyncio.timeout(limit):
                async with self._slots:
                    if not channel.connected:
                        await channel.wait_connected(None)
                    reply = await send_request(channel, self._correlator, _QUERY, frame)
        except TimeoutError:
            raise APITimeoutError(f"No answer from {self.instance_id} within {limit}s") from None
        try:
            result = msgspec.convert(reply, QueryResult)
        except msgspec.ValidationError as exc:
            raise ProtocolError(
                f"{self.instance_id}: unexpected answer {reply!r:.200}: {exc}"
            ) from None
        return checked_reply(result)

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` ran or the socket closed for good."""
        return self._closed or self._channel.closed

    async def aclose(self) -> None:
        """Close the socket. Idempotent; queries still waiting fail with
        :class:`ConnectionLostError`. The instance keeps serving (cancel it
        with ``instances.cancel``). Cancel: the close still completes (shielded)."""
        if self._closed:
            return
        self._closed = True
        await self._channel.aclose()
        self._fail_pending(ConnectionLostError("The connection was closed"))
