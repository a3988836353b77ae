"""``LensSession``: a lens session's WebSocket, its SSE consumer, and its mailbox.

The Lens WebSocket protocol is strict request/response without request ids:
each request gets exactly one reply, in order. A :class:`LensSession` lets
many tasks use one socket at once: requests are written in call order, and
the pure :class:`~aiolens._core.correlator.Correlator` gives each reply to
the oldest waiting request of its type (``<type>.response``), the bare
session record to the oldest ``session.status``, and ``{"type": "error"}`` to
the oldest request overall. A reply that matches nothing is logged and
dropped, never handed to another caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypedDict, TypeVar, cast

import msgspec

from aiolens._core.correlator import NO_TYPE, Correlator
from aiolens._core.model import Model
from aiolens._core.options import (
    check_bool,
    check_callable,
    check_count,
    check_optional_seconds,
    check_seconds,
)
from aiolens._core.redact import get_logger
from aiolens._core.sse import DEFAULT_MAX_EVENT_BYTES, SSEEvent
from aiolens._transport.deadlines import Deadlines
from aiolens._transport.shielded import wait_to_completion
from aiolens._transport.sse import EventStream, Overflow
from aiolens._transport.ws import DEFAULT_MAX_MESSAGE_SIZE, WebSocketChannel
from aiolens.archetype.events import (
    LensEvent,
    RawEvent,
    SSEStreamEnd,
    SSEStreamHeartbeat,
    SSEStreamStart,
    StreamEnd,
    UnknownEvent,
    decode_event,
    event_from_object,
)
from aiolens.archetype.models import SessionInfo, dec_hook, mask_api_keys
from aiolens.errors import (
    APITimeoutError,
    ConnectionLostError,
    EventError,
    ProtocolError,
    QueryTimeoutError,
)
from aiolens.observe import RequestSample, notify_request

if TYPE_CHECKING:
    from aiolens.archetype._session_host import LensSessionHost

__all__ = [
    "DestroyResult",
    "LensSession",
    "LensSessionKwargs",
    "LensSessionOptions",
    "QueryResult",
    "StreamSetResult",
    "UpdateResult",
    "Validation",
]

log: logging.Logger = get_logger("session")

DEFAULT_DESTROY_TIMEOUT: Final = 10.0
"""Seconds a session's destroy call may take while closing."""

_encoder: Final = msgspec.json.Encoder()
_reply_decoder: Final = msgspec.json.Decoder(dict[str, Any])
_QUERY_TIMED_OUT: Final = "timed out"
_PRODUCING_EVENTS: Final = frozenset({"input_stream.set", "session.update"})
"""Events after which the lens produces output: open consumers connect first."""
_OUTSIDE_SEQUENCE: Final = frozenset({SSEStreamStart, SSEStreamHeartbeat})
_CONNECTION_EVENTS: Final = frozenset(
    cls.__struct_config__.tag for cls in (SSEStreamStart, SSEStreamHeartbeat, SSEStreamEnd)
)


_Reply = TypeVar("_Reply")


class _Tag(msgspec.Struct, gc=False):
    type: str


_tag_decoder: Final = msgspec.json.Decoder(_Tag)


class _ReplyKind(msgspec.Struct, gc=False):
    """What the reader needs of a reply to route it: its ``type`` (the rest is skipped)."""

    type: Any = NO_TYPE


_kind_decoder: Final = msgspec.json.Decoder(_ReplyKind)


class Validation(Model):
    """The answer of ``session.validate``."""

    is_valid: bool
    error_messages: list[str] = msgspec.field(default_factory=list)


class QueryResult(TypedDict, total=False):
    """What ``model.query`` answers (``session.query``); keys the server omits are absent."""

    response: list[str]
    """The model's answer (usually one string)."""
    query_id: str
    query_time_sec: float
    focus: str
    num_inputs: int


class StreamSetResult(TypedDict, total=False):
    """What ``input_stream.set`` / ``output_stream.set`` answer."""

    is_valid: bool


class UpdateResult(TypedDict, total=False):
    """What ``session.update`` answers."""

    is_valid: bool
    num_inputs: int


class DestroyResult(TypedDict, total=False):
    """What ``session.destroy`` answers over the socket."""

    session_status: str


class LensSessionKwargs(TypedDict, total=False):
    """The options of ``client.open_session`` / ``session`` / ``attach`` (keyword arguments).

    A misspelt option fails type checking (``**options: Unpack[LensSessionKwargs]``);
    at run time it is a ``TypeError`` before anything is created. The values
    are checked by :class:`LensSessionOptions`.
    """

    max_in_flight: int
    request_timeout: float
    heartbeat_interval: float | None
    reconnect: bool
    on_reconnect: Callable[[LensSession], Awaitable[None]] | None
    destroy_timeout: float
    open_timeout: float
    ping_interval: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LensSessionOptions:
    """A :class:`LensSession`'s options, checked when made (see :class:`LensSession`).

    ``client.open_session(lens_id, **options)`` builds one before the create
    call, so a bad or unknown option fails before anything exists server-side.

    Raises:
        ConfigurationError: a bad value; the message names the option.
        TypeError: an unknown option.
    """

    max_in_flight: int = 256
    request_timeout: float = 60.0
    heartbeat_interval: float | None = 30.0
    reconnect: bool = True
    on_reconnect: Callable[[LensSession], Awaitable[None]] | None = None
    destroy_timeout: float = DEFAULT_DESTROY_TIMEOUT
    open_timeout: float = 10.0
    ping_interval: float | None = 20.0
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE

    def __post_init__(self) -> None:
        check_count("max_in_flight", self.max_in_flight)
        check_seconds("request_timeout", self.request_timeout)
        check_optional_seconds("heartbeat_interval", self.heartbeat_interval)
        check_bool("reconnect", self.reconnect)
        check_callable("on_reconnect", self.on_reconnect)
        check_seconds("destroy_timeout", self.destroy_timeout)
        check_seconds("open_timeout", self.open_timeout)
        check_optional_seconds("ping_interval", self.ping_interval)
        check_count("max_message_size", self.max_message_size)


class LensSession:
    """One lens session: WebSocket requests, SSE events, mailbox reads.

    Get one with ``await client.open_session(lens_id)`` (creates it; its
    :meth:`aclose` destroys it), ``client.session(lens_id)`` (the same for one
    ``async with`` block), or ``client.attach_session(session_id)`` /
    ``client.attach(session_id)`` (an existing one, left running on close).
    The client owns it: it is in ``client.open_sessions`` until it closes,
    and ``client.aclose()`` closes it if it is still open.

    Args:
        client: the owning client (auth, REST calls).
        session_id: the session's id.
        endpoint: its WebSocket URL (``session_endpoint``).
        info: the record ``sessions.create`` returned, if any.
        destroy_on_close: destroy the session server-side in :meth:`aclose`.
        max_in_flight: requests that may await replies at once; more callers
            wait for a slot (backpressure).
        request_timeout: default seconds for :meth:`request`.
        heartbeat_interval: send ``session.heartbeat`` after this many idle
            seconds (``None`` disables); websocket pings run regardless.
        reconnect: reconnect the WebSocket after a recoverable close (with the
            client's ``backoff`` between attempts).
        on_reconnect: called with the session after each reconnect (e.g. to
            re-bind streams); it runs in a task of its own, so it may make
            requests. An exception it raises is logged; it is cancelled when
            the session closes.
        destroy_timeout: bound on the destroy call made while closing.
        open_timeout: seconds for the WebSocket's opening handshake.
        ping_interval: seconds between WebSocket keepalive pings (``None``
            disables them); a pong missing for as long drops the connection.
        max_message_size: the largest request frame, in bytes once encoded;
            :meth:`request` refuses a larger one with
            :class:`~aiolens.errors.MessageTooLargeError`, without sending it
            (the server would close the socket, failing every pending request).

    Raises:
        ConfigurationError: a bad option value (it names the option): seconds
            must be finite numbers > 0, counts whole numbers >= 1.
        APIConnectionError: the client is closed.
    """

    def __init__(
        self,
        client: LensSessionHost,
        session_id: str,
        endpoint: str,
        *,
        info: SessionInfo | None = None,
        destroy_on_close: bool = False,
        max_in_flight: int = 256,
        request_timeout: float = 60.0,
        heartbeat_interval: float | None = 30.0,
        reconnect: bool = True,
        on_reconnect: Callable[[LensSession], Awaitable[None]] | None = None,
        destroy_timeout: float = DEFAULT_DESTROY_TIMEOUT,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        options = LensSessionOptions(
            max_in_flight=max_in_flight,
            request_timeout=request_timeout,
            heartbeat_interval=heartbeat_interval,
            reconnect=reconnect,
            on_reconnect=on_reconnect,
            destroy_timeout=destroy_timeout,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            max_message_size=max_message_size,
        )
        self.client = client
        self.session_id = session_id
        self.endpoint = endpoint
        self.info = info
        self.destroy_on_close = destroy_on_close
        self.request_timeout: float = options.request_timeout
        self.heartbeat_interval: float | None = options.heartbeat_interval
        self.destroy_timeout: float = options.destroy_timeout
        self._on_reconnect_hook = on_reconnect
        # Waiters get the reply still encoded: the reader reads only its type, and the
        # caller decodes it (see _on_message).
        self._correlator: Correlator[asyncio.Future[str | bytes]] = Correlator()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._deadlines = Deadlines()
        self._observer = client.transport.observer
        self._channel = WebSocketChannel(
            self._target,
            on_message=self._on_message,
            on_lost=self._on_lost,
            on_reconnect=self._reconnected,
            reconnect=reconnect,
            backoff=client.transport.backoff,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_interval,
            max_message_size=max_message_size,
            name=f"lens session {session_id}",
            observer=self._observer,
            rules=client.transport.rules,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._streams: set[EventStream[Any]] = set()
        self._last_activity = time.monotonic()
        self._closing: asyncio.Task[None] | None = None
        self._heartbeat_timer: asyncio.TimerHandle | None = None
        self.unmatched_replies: int = 0
        """Replies that matched no pending request (logged and dropped)."""
        self.malformed_replies: int = 0
        """Frames that were not JSON objects, or replies of the wrong shape (logged, dropped)."""
        client.registry.add(self)  # last: a session that failed to build is not owned

    def __repr__(self) -> str:
        return f"LensSession({self.session_id!r}, connected={self._channel.connected})"

    # ---- lifecycle ----------------------------------------------------------------------

    async def _target(self) -> tuple[str, Mapping[str, str]]:
        return self.endpoint, self.client.auth_headers

    async def connect(self) -> None:
        """Open the WebSocket and start the reader and heartbeat tasks.

        Raises:
            APIStatusError: the server refused the handshake (401, 404 ...).
            APIConnectionError: it could not be reached.
        """
        await self._channel.connect()
        if self.heartbeat_interval:
            self._arm_heartbeat(self.heartbeat_interval)

    def _spawn(self, coro: Awaitable[Any], what: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"aiolens {self.session_id} {what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called (its work may still be under way)."""
        return self._closing is not None

    @property
    def attached(self) -> bool:
        """Whether the session is only attached to: closing it leaves it running."""
        return not self.destroy_on_close

    @property
    def reconnects(self) -> int:
        """How many times the WebSocket reconnected."""
        return self._channel.reconnects

    async def aclose(self) -> None:
        """Close the session's connections and, if it owns it, destroy it server-side.

        Idempotent: a second call (the client's ``aclose()`` and the
        ``async with`` block both closing it) waits for the same work. Requests
        still waiting fail with :class:`ConnectionLostError`; background tasks
        (heartbeat, ``on_reconnect`` hooks) are cancelled and awaited; event
        streams are closed. The session leaves ``client.open_sessions`` at once.

        Cancel: the work runs to its end even when the caller is cancelled,
        once or repeatedly (it is shielded); ``aclose`` then raises
        :class:`asyncio.CancelledError`. So leaving ``async with
        client.session(...)`` because of an exception or a cancel still
        destroys the session. Timeout: the WebSocket close waits at most 5 s
        for the closing handshake, the destroy call at most
        ``destroy_timeout``; a failed or timed-out destroy is logged, not
        raised.
        """
        caller = asyncio.current_task()
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shutdown(caller))
            self.client.registry.closing(self, self._closing)
        elif caller in self._tasks:
            return  # one of ours (a hook) closing again: the shutdown waits for it
        await wait_to_completion(self._closing)

    async def _shutdown(self, caller: asyncio.Task[Any] | None) -> None:
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
            self._heartbeat_timer = None
        # The caller may be one of our tasks (an on_reconnect hook closing the session).
        tasks = [task for task in self._tasks if task is not caller]
        for task in tasks:
            task.cancel()
        for stream in list(self._streams):
            await stream.aclose()
        await self._channel.aclose()
        self._fail_pending(ConnectionLostError("The session was closed"))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._deadlines.close()
        if self.destroy_on_close:
            await self._destroy_quietly()

    async def _destroy_quietly(self) -> None:
        await self.client.sessions.destroy_quietly(self.session_id, timeout=self.destroy_timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- the socket ---------------------------------------------------------------------

    def _on_message(self, data: str | bytes) -> None:
        # Only the reply's type is decoded here; its waiter gets the frame itself and
        # decodes it when it runs. Nothing the garbage collector tracks is made per reply
        # in the reader: with thousands of sessions a reply waits a whole loop cycle for
        # its caller, long enough for decoded dicts to be promoted to the old generation
        # and walked by every full collection.
        self._last_activity = time.monotonic()
        try:
            kind = _kind_decoder.decode(data).type
        except (msgspec.DecodeError, RecursionError) as exc:  # not a JSON object; too deep
            self.malformed_replies += 1
            log.warning("session %s: malformed frame skipped: %s", self.session_id, exc)
            return
        routed = self._correlator.route_kind(kind)
        if routed is None:
            self.unmatched_replies += 1
            log.warning(
                "session %s: reply of type %r matches no pending request; dropped",
                self.session_id,
                None if kind is NO_TYPE else kind,
            )
            return
        waiter, request_type = routed
        if waiter.done():  # its caller was cancelled or timed out
            log.debug("session %s: late %s reply dropped", self.session_id, request_type)
            return
        waiter.set_result(data)

    def _on_lost(self, error: ConnectionLostError) -> None:
        self._fail_pending(error)

    def _fail_pending(self, error: ConnectionLostError) -> None:
        for waiter in self._correlator.drain():
            if not waiter.done():
                waiter.set_exception(ConnectionLostError(str(error), close_code=error.close_code))

    async def _reconnected(self) -> None:
        # Called from the reader task: the hook runs in a task of its own, so that it
        # can make requests (their replies need the reader).
        hook = self._on_reconnect_hook
        if hook is not None:
            self._spawn(self._run_reconnect_hook(hook), "on_reconnect")

    async def _run_reconnect_hook(self, hook: Callable[[LensSession], Awaitable[None]]) -> None:
        try:
            await hook(self)
        except Exception:
            log.exception("session %s: on_reconnect hook failed", self.session_id)

    # The heartbeat is a loop timer, not a task: a task per session would sleep for
    # the session's whole life (a task, a coroutine, a future and a timer each, kept by
    # the garbage collector's full collections). A task exists only while a heartbeat
    # request is in flight.

    def _arm_heartbeat(self, interval: float) -> None:
        """Set the timer for when the session will have been idle for ``interval``."""
        loop = asyncio.get_running_loop()
        due = loop.time() + max(0.0, self._last_activity + interval - time.monotonic())
        self._heartbeat_timer = loop.call_at(due, self._heartbeat_due, interval)

    def _heartbeat_due(self, interval: float) -> None:
        self._heartbeat_timer = None
        if self._closing is not None:
            return
        if time.monotonic() - self._last_activity < interval:  # there was traffic since
            self._arm_heartbeat(interval)
        else:
            self._spawn(self._heartbeat(interval), "heartbeat")

    async def _heartbeat(self, interval: float) -> None:
        """Send one ``session.heartbeat``; then set the timer for the next one."""
        try:
            await self.request("session.heartbeat", timeout=interval)
        except (ConnectionLostError, APITimeoutError, EventError) as exc:
            log.info("session %s: heartbeat failed: %s", self.session_id, exc)
            self._last_activity = time.monotonic()
        except Exception:  # never silently: log it, keep the heartbeat going
            log.exception("session %s: heartbeat failed unexpectedly", self.session_id)
            self._last_activity = time.monotonic()
        if self._closing is None:
            self._arm_heartbeat(interval)

    # ---- requests -----------------------------------------------------------------------

    async def request(
        self,
        type: str,
        event_data: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Send one event and return its reply.

        Many requests may be in flight at once; at most ``max_in_flight``
        await replies, further callers wait for a slot.

        Args:
            type: the event type (``session.validate``, ``model.query`` ...).
            event_data: the payload; omitted when ``None``.
            timeout: seconds to wait in all (slot, connection, reply), a
                finite number > 0; defaults to ``request_timeout``.

        Returns:
            The reply's ``event_data`` (``None`` when empty) — or, for
            ``session.status``, the session record as a dict. An ``api_key``
            anywhere in a reply (the record echoes the caller's key) is a
            :class:`~aiolens._core.redact.SecretStr`.

        Raises:
            ConfigurationError: a bad ``timeout`` (nothing sent).
            MessageTooLargeError: the encoded request is over
                ``max_message_size``; nothing was sent.
            EventError: the server answered ``{"type": "error", ...}``.
            ProtocolError: the reply could not be decoded (nested too deeply);
                it counts in ``malformed_replies``.
            QueryTimeoutError: a ``model.query`` the server gave up on.
            APITimeoutError: no reply within ``timeout``. The request may have
                been sent; its late reply is dropped.
            ConnectionLostError: the connection dropped while waiting; the
                outcome is unknown.

        Cancelling the call abandons only this request: its reply, if it
        comes, is dropped, and the socket stays usable.
        """
        observer = self._observer
        if observer is None:
            return await self._request(type, event_data, timeout)
        started = time.perf_counter()
        try:
            reply = await self._request(type, event_data, timeout)
        except BaseException as exc:
            notify_request(
                observer, RequestSample("websocket", type, time.perf_counter() - started, exc)
            )
            raise
        notify_request(observer, RequestSample("websocket", type, time.perf_counter() - started))
        return reply

    async def _request(
        self,
        type: str,
        event_data: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> Any:
        """:meth:`request` itself (the observer, when there is one, wraps it)."""
        limit = self.request_timeout if timeout is None else check_seconds("timeout", timeout)
        if self._closing is not None:
            raise ConnectionLostError("The session is closed")
        message: dict[str, Any] = {"type": type}
        if event_data is not None:
            message["event_data"] = event_data
        frame = _encoder.encode(message)
        channel = self._channel
        if len(frame) > channel.max_message_size:
            channel.refuse(frame, f"{type} request")
        try:
            # The same bound as ``asyncio.timeout(limit)``, on one timer for all requests.
            with self._deadlines.scope(limit):
                if type in _PRODUCING_EVENTS and self._streams:
                    await self._connect_consumers()
                slots = self._slots
                await slots.acquire()
                try:
                    if not channel.connected:
                        await channel.wait_connected(None)
                    waiter: asyncio.Future[str | bytes] = asyncio.get_running_loop().create_future()
                    # add() and the frame's queuing happen with no suspension in
                    # between, so registration order is wire order. A request with
                    # none other in flight is written at once, others together.
                    alone = not self._correlator
                    self._correlator.add(type, waiter)
                    self._last_activity = time.monotonic()
                    try:
                        await channel.send(frame, text=True, flush=alone)
                    except ConnectionLostError:
                        # Its connection is gone: no reply can come for it.
                        self._correlator.discard(waiter)
                        if not waiter.cancel():  # the loss already failed it
                            waiter.exception()  # retrieved: no "never retrieved" log
                        raise
                    reply = await waiter
                finally:
                    slots.release()
        except TimeoutError:
            raise APITimeoutError(f"No reply to {type} within {limit}s") from None
        try:  # a JSON object (the reader checked), decoded here: see _on_message
            decoded = _reply_decoder.decode(reply)
        except (msgspec.DecodeError, RecursionError) as exc:  # nested too deeply inside
            self.malformed_replies += 1
            log.warning("session %s: malformed %s reply: %s", self.session_id, type, exc)
            raise ProtocolError(f"{type} reply could not be decoded: {exc}") from exc
        if _has_api_key(reply):
            mask_api_keys(decoded)  # the session record echoes the caller's key
        return _interpret(type, decoded)

    async def _connect_consumers(self) -> None:
        """Start this session's open SSE consumers and wait until each is connected.

        The consumer is live (it gets what is produced after it connects), so
        an input started before it connected would lose its first events. A
        consumer that fails to connect does not hold the request back: its
        error is raised where it is iterated.
        """
        streams = [s for s in self._streams if not s.finished]
        if streams:
            await asyncio.gather(*(s.wait_connected() for s in streams))

    async def status(self) -> SessionInfo:
        """The session record (``session.status``).

        Raises:
            ProtocolError: the reply is not a session record (wrong field types);
                it carries the reply as ``raw`` and counts in ``malformed_replies``.
        """
        record = await self.request("session.status")
        return self._convert("session.status", record, SessionInfo)

    async def validate(self) -> Validation:
        """Check the session's health and model connectivity (``session.validate``).

        Raises:
            ProtocolError: the reply does not have the documented shape; it carries
                the reply as ``raw`` and counts in ``malformed_replies``.
        """
        data = await self.request("session.validate", {})
        return self._convert("session.validate", data or {"is_valid": False}, Validation)

    def _convert(self, request_type: str, reply: Any, into: type[_Reply]) -> _Reply:
        """``reply`` as ``into``; a reply of the wrong shape is a counted :class:`ProtocolError`."""
        try:
            return msgspec.convert(reply, into, dec_hook=dec_hook)
        except (msgspec.ValidationError, RecursionError) as exc:
            self.malformed_replies += 1
            log.warning("session %s: malformed %s reply: %s", self.session_id, request_type, exc)
            raise ProtocolError(
                f"{request_type} reply does not have the expected shape: {exc}", raw=reply
            ) from exc

    async def read(self, client_id: str) -> list[LensEvent | UnknownEvent]:
        """Read new mailbox messages for ``client_id`` (``session.read``); ``[]`` when none.

        A new ``client_id`` starts from the beginning of the session's output.
        """
        data = await self.request("session.read", {"client_id": client_id})
        if not isinstance(data, dict):
            return []
        return [event_from_object(m) for m in data.get("messages") or []]

    async def destroy(self) -> DestroyResult:
        """End the session over the socket (``session.destroy``)."""
        return cast(DestroyResult, _object(await self.request("session.destroy", {})))

    async def set_input_stream(self, stream_type: str, **stream_config: Any) -> StreamSetResult:
        """Bind the input (``input_stream.set``), e.g. ``csv_file_reader, file_id=...``."""
        reply = await self.request(
            "input_stream.set", {"stream_type": stream_type, "stream_config": stream_config}
        )
        return cast(StreamSetResult, _object(reply))

    async def set_output_stream(self, stream_type: str, **stream_config: Any) -> StreamSetResult:
        """Bind the output (``output_stream.set``), e.g. ``server_sent_events_writer``."""
        reply = await self.request(
            "output_stream.set", {"stream_type": stream_type, "stream_config": stream_config}
        )
        return cast(StreamSetResult, _object(reply))

    async def query(
        self,
        *,
        focus: str,
        data: list[Mapping[str, Any]] | None = None,
        model_version: str | None = None,
        template_name: str | None = None,
        instruction: str | None = None,
        max_new_tokens: int | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> QueryResult:
        """One-shot inference over the socket (``model.query``); returns ``event_data``.

        Raises:
            QueryTimeoutError: the lens has no model-query processor or the
                model did not answer in time ("Response timed out for query").
        """
        payload: dict[str, Any] = {"focus": focus, "data": list(data or []), **extra}
        for key, value in (
            ("model_version", model_version),
            ("template_name", template_name),
            ("instruction", instruction),
            ("max_new_tokens", max_new_tokens),
        ):
            if value is not None:
                payload[key] = value
        payload.setdefault("sensor_metadata", {})
        reply = await self.request("model.query", payload, timeout=timeout)
        return cast(QueryResult, _object(reply))

    async def modify(self, **changes: Any) -> dict[str, Any]:
        """Change the session's settings (``session.modify``): focus, input_n_shot ...

        Returns:
            ``is_valid`` and the session's model parameters after the change.
        """
        return _object(await self.request("session.modify", changes))

    async def update(self, event_type: str, event_data: Mapping[str, Any]) -> UpdateResult:
        """Push inline data (``session.update``), e.g. ``update("data.json", {...})``."""
        reply = await self.request(
            "session.update", {"type": event_type, "event_data": dict(event_data)}
        )
        return cast(UpdateResult, _object(reply))

    async def get(self) -> dict[str, Any]:
        """The session's current settings (``session.get``): its model parameters."""
        return _object(await self.request("session.get", {}))

    # ---- events -------------------------------------------------------------------------

    def events(
        self,
        *,
        include_heartbeats: bool = False,
        queue_size: int = 1024,
        overflow: Overflow = "block",
        liveness_timeout: float = 30.0,
        max_reconnects: int = 5,
        last_event_id: str = "",
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> EventStream[LensEvent | UnknownEvent]:
        """Consume the session's SSE stream: ``async for event in session.events():``.

        Yields typed events (:mod:`aiolens.archetype.events`), starting with
        ``SSEStreamStart``; iteration ends after ``SSEStreamEnd``. Heartbeats
        keep the connection alive and are skipped unless
        ``include_heartbeats``. A dropped connection is resumed with
        ``Last-Event-ID`` without repeats; see
        :class:`~aiolens._transport.sse.EventStream` for the queue policy
        (``overflow``), liveness and errors. ``last_event_id`` resumes after
        an event delivered earlier (a checkpoint kept elsewhere). An event
        larger than ``max_event_bytes`` (16 MiB by default) is skipped and
        counted in the stream's ``malformed``, like an event that does not decode.

        The consumer is live: it gets what the lens produces after it
        connects. Open it before starting the input: ``input_stream.set`` and
        ``session.update`` sent through this session first start every
        consumer opened on it and wait until each is connected, so none misses
        the first results (docs/protocol-notes.md, "SSE replay").

        The stream closes when the session closes; ``async with
        session.events() as events:`` closes it earlier.

        Raises:
            ConfigurationError: a bad option (it names it): ``queue_size`` must
                be a whole number >= 1, ``overflow`` ``"block"`` or
                ``"drop_oldest"``, ``liveness_timeout`` a finite number > 0,
                ``max_reconnects`` a whole number >= 0.
        """
        check_bool("include_heartbeats", include_heartbeats)

        started = False

        def skip(event: LensEvent | UnknownEvent) -> bool:
            nonlocal started
            kind = type(event)  # decoded events are of these exact classes
            if kind is SSEStreamStart:  # one per connection: yield the first that comes
                seen, started = started, True
                return seen
            return kind is SSEStreamHeartbeat and not include_heartbeats

        stream: EventStream[LensEvent | UnknownEvent] = EventStream(
            self.client.transport,
            f"/lens/sessions/consumer/{self.session_id}",
            decode=_decode_sse,
            is_end=_is_sse_end,
            skip=skip,
            outside_sequence=_outside_sequence,
            ordinary=_ordinary_sse,
            queue_size=queue_size,
            overflow=overflow,
            liveness_timeout=liveness_timeout,
            max_reconnects=max_reconnects,
            last_event_id=last_event_id,
            backoff=self.client.transport.backoff,
            max_event_bytes=max_event_bytes,
        )
        return self._keep(stream)

    def raw_events(
        self,
        *,
        last_event_id: str = "",
        queue_size: int = 1024,
        liveness_timeout: float = 30.0,
        max_reconnects: int = 5,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> EventStream[RawEvent]:
        """The SSE stream with events left encoded (:class:`RawEvent`), to store or relay.

        The same stream as :meth:`events` (first ``sse.stream.start``, last
        ``sse.stream.end``, resumed without repeats, heartbeats skipped), but
        each event is only read for its ``type`` and keeps its id and JSON
        text. The queue blocks when full (backpressure). ``last_event_id``
        resumes after a checkpoint.
        """

        started = False

        def skip(event: RawEvent) -> bool:
            nonlocal started
            if event.type == _START:  # one per connection: yield the first that comes
                seen, started = started, True
                return seen
            return event.type == _HEARTBEAT

        stream: EventStream[RawEvent] = EventStream(
            self.client.transport,
            f"/lens/sessions/consumer/{self.session_id}",
            decode=_raw_sse,
            is_end=_is_raw_end,
            skip=skip,
            outside_sequence=_raw_outside_sequence,
            queue_size=queue_size,
            liveness_timeout=liveness_timeout,
            max_reconnects=max_reconnects,
            last_event_id=last_event_id,
            backoff=self.client.transport.backoff,
            max_event_bytes=max_event_bytes,
        )
        return self._keep(stream)

    def _keep(self, stream: EventStream[Any]) -> EventStream[Any]:
        # Streams that are over are let go here, so a long-lived session that opens
        # many streams does not keep them all until it closes.
        self._streams = {s for s in self._streams if not s.finished}
        self._streams.add(stream)
        return stream

    async def mailbox(
        self,
        client_id: str,
        *,
        poll_interval: float = 0.05,
        stop_on_stream_end: bool = True,
    ) -> AsyncIterator[LensEvent | UnknownEvent]:
        """Iterate the session's mailbox (``session.read``) for lenses without an SSE writer.

        Polls every ``poll_interval`` seconds (a finite number > 0) while the
        mailbox is empty; a bad one raises :class:`ConfigurationError` on the
        first iteration.
        Ends after a ``stream.end`` message when ``stop_on_stream_end``;
        otherwise runs until cancelled or the session closes.
        """
        check_seconds("poll_interval", poll_interval)
        while True:
            messages = await self.read(client_id)
            for message in messages:
                yield message
                if stop_on_stream_end and isinstance(message, StreamEnd | SSEStreamEnd):
                    return
            if not messages:
                await asyncio.sleep(poll_interval)


def _has_api_key(data: str | bytes) -> bool:
    return b"api_key" in data if isinstance(data, bytes) else "api_key" in data


def _object(data: Any) -> dict[str, Any]:
    """A reply's ``event_data`` as a dict (``{}`` when the server sent none or a non-object)."""
    return data if isinstance(data, dict) else {}


def _interpret(request_type: str, reply: dict[str, Any]) -> Any:
    reply_type = reply.get("type")
    if reply_type == "error":
        raise EventError(
            f"{request_type} failed: {reply.get('message') or reply.get('event_data')}",
            event_type=request_type,
            reply=reply,
        )
    if reply_type is None:  # session.status: the bare record
        return reply
    data = reply.get("event_data")
    if (
        request_type == "model.query"
        and data is None
        and _QUERY_TIMED_OUT in str(reply.get("message", "")).lower()
    ):
        raise QueryTimeoutError(f"model.query: {reply['message']}")
    return data


def _decode_sse(raw: SSEEvent) -> LensEvent | UnknownEvent:
    return decode_event(raw.data)


def _ordinary_sse(raw: SSEEvent) -> bool:
    """Whether a frame is a lens event (not a connection event); see ``EventStream``.

    It reads only the ``type``: a JSON object with a string ``type`` always
    decodes (into its class, or :class:`UnknownEvent`), and only the three
    ``sse.stream.*`` classes are skipped, outside the sequence or the end.
    """
    try:
        kind = _tag_decoder.decode(raw.data).type
    except msgspec.DecodeError:
        decode_event(raw.data)  # raises the ProtocolError a full decode raises
        return False  # it decoded after all: let the reader decode it
    return kind not in _CONNECTION_EVENTS


_START: Final = "sse.stream.start"
_HEARTBEAT: Final = "sse.stream.heartbeat"
_END_TYPE: Final = "sse.stream.end"


def _raw_sse(raw: SSEEvent) -> RawEvent:
    try:
        kind = _tag_decoder.decode(raw.data).type
    except msgspec.DecodeError as exc:  # ValidationError included
        raise ProtocolError(f"Event without a string 'type': {raw.data[:200]}") from exc
    return RawEvent(raw.id, kind, raw.data)


def _is_raw_end(event: RawEvent) -> bool:
    return event.type == _END_TYPE


def _raw_outside_sequence(event: RawEvent) -> bool:
    return event.type in (_START, _HEARTBEAT)


def _outside_sequence(event: LensEvent | UnknownEvent) -> bool:
    return type(event) in _OUTSIDE_SEQUENCE


def _is_sse_end(event: LensEvent | UnknownEvent) -> bool:
    return type(event) is SSEStreamEnd
