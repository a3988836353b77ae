"""The request side of a lens session: requests written in order, replies matched to them.

The Lens WebSocket protocol is strict request/response without request ids:
each request gets exactly one reply, in order. Many tasks may use one socket
at once: requests are written in call order, and the pure
:class:`~aiolens._core.correlator.Correlator` gives each reply to the oldest
waiting request of its type (``<type>.response``), the bare session record to
the oldest ``session.status``, and ``{"type": "error"}`` to the oldest request
overall. A reply that matches nothing is logged and dropped, never handed to
another caller.

:class:`LensRequests` is a base of :class:`~aiolens.archetype.session.LensSession`
(which builds the state it reads); it is not made on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Final, TypeVar, cast

import msgspec

from aiolens._core.correlator import NO_TYPE, Correlator
from aiolens._core.options import check_seconds
from aiolens._core.redact import get_logger
from aiolens._transport.deadlines import Deadlines
from aiolens._transport.sse import EventStream
from aiolens._transport.ws import WebSocketChannel
from aiolens._transport.ws_requests import fail_waiting, send_request
from aiolens.archetype.events import LensEvent, UnknownEvent, event_from_object
from aiolens.archetype.models import SessionInfo, dec_hook, mask_api_keys
from aiolens.archetype.session_replies import (
    DestroyResult,
    QueryResult,
    StreamSetResult,
    UpdateResult,
    Validation,
)
from aiolens.errors import (
    APITimeoutError,
    ConnectionLostError,
    EventError,
    ProtocolError,
    QueryTimeoutError,
)
from aiolens.observe import Observer, RequestSample, notify_request

__all__ = ["LensRequests"]

log: logging.Logger = get_logger("session")

_encoder: Final = msgspec.json.Encoder()
_reply_decoder: Final = msgspec.json.Decoder(dict[str, Any])
_QUERY_TIMED_OUT: Final = "timed out"
_PRODUCING_EVENTS: Final = frozenset({"input_stream.set", "session.update"})
"""Events after which the lens produces output: open consumers connect first."""

_Reply = TypeVar("_Reply")


class _ReplyKind(msgspec.Struct, gc=False):
    """What the reader needs of a reply to route it: its ``type`` (the rest is skipped)."""

    type: Any = NO_TYPE


_kind_decoder: Final = msgspec.json.Decoder(_ReplyKind)


class _UsualReply(msgspec.Struct, gc=False):
    """A ``<type>.response``: the caller wants its ``event_data`` (the rest is skipped)."""

    type: Any = NO_TYPE
    event_data: Any = None


_usual_decoder: Final = msgspec.json.Decoder(_UsualReply)


class LensRequests:
    """A lens session's requests over its WebSocket, and the reader that answers them.

    The state is :class:`~aiolens.archetype.session.LensSession`'s: it makes
    the channel (with :meth:`_on_message` and :meth:`_on_lost` as its
    callbacks), the correlator, the in-flight slots and the deadlines.
    """

    session_id: str
    request_timeout: float
    unmatched_replies: int
    malformed_replies: int
    _correlator: Correlator[asyncio.Future[str | bytes]]
    _slots: asyncio.Semaphore
    _deadlines: Deadlines
    _observer: Observer | None
    _channel: WebSocketChannel
    _streams: set[EventStream[Any]]
    _closing: asyncio.Task[None] | None
    _last_activity: float

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
        fail_waiting(self._correlator, error)

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
        observer = self._observer  # one coroutine for both: a frame less per request
        started = time.perf_counter() if observer is not None else 0.0
        try:
            limit = self.request_timeout if timeout is None else check_seconds("timeout", timeout)
            if self._closing is not None:
                raise ConnectionLostError("The session is closed")
            # No local holds the message dict: it would live in this frame until the reply
            # comes, long enough to be promoted and walked by full collections.
            frame = _encoder.encode(
                {"type": type} if event_data is None else {"type": type, "event_data": event_data}
            )
            channel = self._channel
            if len(frame) > channel.max_message_size:
                channel.refuse(frame, f"{type} request")
            # The same bound as ``asyncio.timeout(limit)``, on one timer for all requests;
            # entered and left by hand, not by ``with``: no scope object or bound __exit__
            # per request (each would live until the reply comes: see _on_message).
            deadlines = self._deadlines
            bound = deadlines.enter(limit)
            try:
                if type in _PRODUCING_EVENTS and self._streams:
                    await self._connect_consumers()
                slots = self._slots
                if slots._value > 0 and not slots._waiters:  # acquire()'s fast path, inline
                    slots._value -= 1
                else:
                    await slots.acquire()
                try:
                    if not channel.connected:
                        await channel.wait_connected(None)
                    self._last_activity = time.monotonic()  # no suspension before the send
                    reply = await send_request(channel, self._correlator, type, frame)
                finally:
                    if slots._waiters:  # release(), inline when nobody waits for a slot
                        slots.release()
                    else:
                        slots._value += 1
            except BaseException as exc:
                try:
                    deadlines.leave(bound, exc)  # TimeoutError if the deadline passed
                    raise
                except TimeoutError:
                    raise APITimeoutError(f"No reply to {type} within {limit}s") from None
            deadlines.leave(bound, None)
            try:  # a JSON object (the reader checked), decoded here: see _on_message
                usual = _usual_reply(type, reply)
                if usual is None:
                    decoded = _reply_decoder.decode(reply)
            except (msgspec.DecodeError, RecursionError) as exc:  # nested too deeply inside
                self.malformed_replies += 1
                log.warning("session %s: malformed %s reply: %s", self.session_id, type, exc)
                raise ProtocolError(f"{type} reply could not be decoded: {exc}") from exc
            if usual is not None:
                result = usual.event_data
            else:
                if _has_api_key(reply):
                    mask_api_keys(decoded)  # the session record echoes the caller's key
                result = _interpret(type, decoded)
        except BaseException as exc:
            if observer is not None:
                elapsed = time.perf_counter() - started
                notify_request(observer, RequestSample("websocket", type, elapsed, exc))
            raise
        if observer is not None:
            elapsed = time.perf_counter() - started
            notify_request(observer, RequestSample("websocket", type, elapsed))
        return result

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


def _usual_reply(request_type: str, reply: str | bytes) -> _UsualReply | None:
    """``reply`` decoded as a ``<type>.response``; ``None`` if it needs the whole dict.

    That is an error reply, the bare session record, a ``model.query`` reply (its
    ``message`` may say it timed out) and a reply with an ``api_key`` to mask. The
    result is the same as :func:`_interpret`'s, without the dict around ``event_data``.
    """
    if request_type == "model.query" or _has_api_key(reply):
        return None
    usual = _usual_decoder.decode(reply)
    kind = usual.type
    return None if kind is NO_TYPE or kind == "error" else usual


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
