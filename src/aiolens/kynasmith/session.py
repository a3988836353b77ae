"""``DetectionSession``: streaming pose frames to a Kynasmith session over its WebSocket.

Unlike the vendor SDK's stop-and-wait, several ``frame_batch`` messages may be
in flight at once (``window`` batches): acks are matched by ``batch_seq``.
When the socket drops, batches not yet acknowledged stay pending; after the
reconnect (same ``stream_url`` and runtime token) they are sent again in
order. The server answers a batch it already processed with the stored ack,
so nothing is lost and nothing is counted twice. A ``finalize`` whose
``session_done`` had not arrived is sent again after the batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Final, Unpack
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from aiolens._core.options import check_seconds
from aiolens._core.redact import get_logger
from aiolens._core.seen import SeenWindow
from aiolens._transport.buffer import ItemBuffer
from aiolens._transport.closing import AsyncClosing
from aiolens._transport.shielded import wait_to_completion
from aiolens._transport.ws import WRITE_AT_ONCE, WebSocketChannel
from aiolens.errors import (
    AiolensError,
    APITimeoutError,
    ConnectionLostError,
    DetectionError,
    PoseFrameError,
)
from aiolens.kynasmith.models import (
    TERMINAL_STATUSES,
    DetectionEvent,
    DetectionSessionCreated,
    ErrorMessage,
    EventBatch,
    FrameAck,
    FrameBatch,
    Ping,
    PoseFrame,
    SessionDone,
    SessionUpdate,
    UnknownEvent,
    decode_detection_event,
    encoder,
    server_message_decoder,
    validate_frame,
)
from aiolens.kynasmith.session_options import (
    DetectionSessionKwargs,
    DetectionSessionOptions,
)

if TYPE_CHECKING:
    from aiolens.kynasmith.session_host import DetectionSessionHost

__all__ = ["DetectionSession", "DetectionSessionKwargs", "DetectionSessionOptions"]

log: logging.Logger = get_logger("kynasmith.session")

_PING: Final = encoder.encode(Ping())
_PONG: Final = b'{"type":"pong"}'
_FINALIZE: Final = b'{"type":"finalize"}'
_END: Final = object()
_SEEN_EVENTS: Final = 65536
"""Event ids remembered to drop events replayed after a reconnect."""


class _Failure:
    """The events stream ended with an error (the stream was lost for good)."""

    __slots__ = ("error",)

    def __init__(self, error: AiolensError) -> None:
        self.error = error


StreamItem = DetectionEvent | UnknownEvent | SessionUpdate | SessionDone


class DetectionSession(AsyncClosing):
    """A live or replay detection session.

    Get one with ``await client.open_detection_session(...)`` (its
    :meth:`aclose` cancels it unless it reached a terminal state) or
    ``client.detection_session(...)`` (the same for one ``async with``
    block). The client owns it: it is in ``client.open_sessions`` until it
    closes, and ``client.aclose()`` closes it if it is still open.

    Args:
        client: the owning client.
        created: the create-session answer (stream URL, runtime token).
        window: batches that may await their ack at once (default 16); further
            :meth:`send` calls wait (backpressure). Over a 20 ms round trip, 16
            keeps within 0.9x of bare pipelining (benchmarks, case 6); longer
            links gain from more.
        ack_timeout: seconds :meth:`send` waits for its ack.
        event_queue_size: bound of the events queue; when the consumer lags
            past it the oldest item is dropped and counted in
            :attr:`dropped_events` (acks are never dropped).
        validate: check frames locally before sending.
        reconnect: reconnect the stream after a recoverable close (with the
            client's ``backoff`` between attempts).
        ping_interval: seconds between WebSocket keepalive pings (``None``
            disables them).
        cancel_timeout: bound on the cancel call made while closing.
        max_message_size: the largest ``frame_batch`` in bytes once encoded;
            :meth:`send` refuses a larger one without sending it.

    Raises:
        ConfigurationError: a bad option value (it names the option).
        APIConnectionError: the client is closed.
    """

    def __init__(
        self,
        client: DetectionSessionHost,
        created: DetectionSessionCreated,
        **options: Unpack[DetectionSessionKwargs],
    ) -> None:
        checked = DetectionSessionOptions(**options)
        self.client = client
        self.created = created
        self.session_id: str = created.session_id
        self.ack_timeout = checked.ack_timeout
        self.validate = checked.validate
        self.cancel_timeout = checked.cancel_timeout
        self.status: str = created.status
        self.accepted_frames_total: int = 0
        self.malformed_messages: int = 0
        """Messages and events that could not be decoded (logged and skipped)."""
        self.done: SessionDone | None = None
        self._window = asyncio.Semaphore(checked.window)
        self._batch_seq = 0
        self._frame_seq = 0
        self._pending: dict[int, tuple[asyncio.Future[FrameAck], bytes]] = {}
        self._events: ItemBuffer[Any] = ItemBuffer(checked.event_queue_size)
        self._done_future: asyncio.Future[SessionDone] = asyncio.get_running_loop().create_future()
        self._closing: asyncio.Task[None] | None = None
        self._ended = False
        self._finalize_requested = False
        self._finalize_sent = False  # on the current connection
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seen: SeenWindow[str] = SeenWindow(_SEEN_EVENTS)
        self._channel = WebSocketChannel(
            self._target,
            on_message=self._on_message,
            on_lost=self._on_lost,
            on_reconnect=self._resend,
            on_final=self._on_final,
            reconnect=checked.reconnect,
            backoff=client.transport.backoff,
            max_message_size=checked.max_message_size,
            ping_interval=checked.ping_interval,
            ping_timeout=checked.ping_interval,
            name=f"detection session {created.session_id}",
            observer=client.transport.observer,
            rules=client.transport.rules,
        )
        client.registry.add(self)  # last: a session that failed to build is not owned

    def __repr__(self) -> str:
        return f"DetectionSession({self.session_id!r}, status={self.status!r})"

    async def _target(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.created.stream_url)
        query = [*parse_qsl(parts.query), ("runtime_token", self.created.runtime_token)]
        return urlunsplit(parts._replace(query=urlencode(query))), {}

    @property
    def reconnects(self) -> int:
        """How many times the stream reconnected."""
        return self._channel.reconnects

    async def connect(self) -> None:
        """Attach to the session's stream."""
        await self._channel.connect()

    # ---- incoming -----------------------------------------------------------------------

    def _on_message(self, data: str | bytes) -> None:
        try:
            message = server_message_decoder.decode(data)
        except (msgspec.DecodeError, RecursionError) as exc:  # the latter: nested too deeply
            self.malformed_messages += 1
            log.warning("session %s: message skipped: %s", self.session_id, exc)
            return
        if isinstance(message, FrameAck):
            entry = self._pending.pop(message.batch_seq, None)
            self.accepted_frames_total = max(
                self.accepted_frames_total, message.accepted_frames_total
            )
            if entry is None:
                log.debug("session %s: ack %d matches no batch", self.session_id, message.batch_seq)
            elif not entry[0].done():
                entry[0].set_result(message)
        elif isinstance(message, EventBatch):
            for raw in message.events:
                try:
                    event = decode_detection_event(raw)
                except (msgspec.DecodeError, ValueError, RecursionError) as exc:
                    self.malformed_messages += 1
                    log.warning("session %s: malformed event skipped: %s", self.session_id, exc)
                    continue
                if isinstance(event, UnknownEvent):
                    event_id = str(event.raw.get("event_id") or "")
                else:
                    event_id = event.event_id
                if event_id and self._seen.seen(event_id):
                    continue  # replayed after a reconnect
                self._push(event)
        elif isinstance(message, SessionUpdate):
            self.status = message.status
            self._push(message)
        elif isinstance(message, SessionDone):
            if self.done is not None:  # answer to a finalize re-sent after a reconnect
                log.debug("session %s: repeated session_done ignored", self.session_id)
                return
            self.status = message.status
            self.done = message
            self.accepted_frames_total = message.accepted_frames_total
            self._push(message)
            self._end()
            if not self._done_future.done():
                self._done_future.set_result(message)
            self._fail_pending(self._terminal_error())
        elif isinstance(message, ErrorMessage):
            err = DetectionError(
                message.error.message,
                code=message.error.code,
                retryable=message.error.retryable,
                details=message.error.details,
            )
            log.warning("session %s: server error %s", self.session_id, err)
            self._fail_pending(err)
            if not self._done_future.done() and message.error.code.startswith("session_"):
                self._done_future.set_exception(err)
        elif isinstance(message, Ping):
            self._spawn(self._channel.send(_PONG, text=True))

    def _end(self) -> None:
        """Close the events stream (once): :meth:`events` ends after what is queued."""
        if not self._ended:
            self._ended = True
            self._push(_END)

    def _push(self, item: Any) -> None:
        """Queue an item; when the queue is full the oldest one is dropped and counted."""
        self._events.push(item)

    @property
    def dropped_events(self) -> int:
        """Items dropped because the consumer of :meth:`events` lagged past ``event_queue_size``."""
        return self._events.dropped

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """A helper task ended: forget it; a failure (a pong on a lost socket) is logged."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("session %s: %s", self.session_id, task.exception())

    def _on_lost(self, error: ConnectionLostError) -> None:
        self._finalize_sent = False
        log.info(
            "session %s: stream lost with %d batch(es) unacknowledged; will resend",
            self.session_id,
            len(self._pending),
        )

    async def _resend(self) -> None:
        for seq in sorted(self._pending):
            await self._channel.send(self._pending[seq][1], text=True)
        if self._finalize_requested and not self._finalize_sent and self.done is None:
            await self._channel.send(_FINALIZE, text=True)
            self._finalize_sent = True

    def _terminal_error(self) -> DetectionError:
        """The error for batches a session that has ended (``self.done``) will never ack."""
        done = self.done
        assert done is not None
        reason = f" ({done.error.code}: {done.error.message})" if done.error else ""
        return DetectionError(
            f"session {self.session_id} is {done.status}{reason}; it takes no more frames",
            code="session_terminal",
            details={"status": done.status},
        )

    def _on_final(self, error: ConnectionLostError) -> None:
        # After session_done the server closes the socket: the outcome is known.
        self._fail_pending(self._terminal_error() if self.done is not None else error)
        if not self._done_future.done():
            lost = ConnectionLostError(str(error), close_code=error.close_code)
            lost.__cause__ = error.__cause__
            self._done_future.set_exception(lost)
        if self.done is None and not self._ended:
            self._ended = True
            self._push(_Failure(error))  # the consumer of events() hears why they stopped
        self._end()

    def _fail_pending(self, error: AiolensError) -> None:
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(error)

    # ---- outgoing -----------------------------------------------------------------------

    async def send(self, frames: Sequence[PoseFrame]) -> FrameAck:
        """Send frames as one ``frame_batch`` and return its ``frame_ack``.

        Frames without ``frame_seq`` are numbered on from the last one sent
        (``frame_seq`` increases across the whole session). Up to ``window``
        batches may await acks at once; a caller beyond that waits.

        Raises:
            PoseFrameError: a frame is invalid or not a :class:`PoseFrame`
                (nothing is sent).
            MessageTooLargeError: the encoded batch is over the stream's
                ``max_message_size`` (nothing is sent; send fewer frames).
            APITimeoutError: no ack within ``ack_timeout``; the batch may still
                be processed.
            DetectionError: the server rejected the batch or the session ended.
            ConnectionLostError: the stream could not be restored.

        Cancelling abandons the wait; the batch stays queued for resending
        until acknowledged, so the session's frame count stays consistent.
        """
        if self._closing is not None:
            raise ConnectionLostError("The detection session is closed")
        if self.done is not None:
            raise self._terminal_error()
        numbered = []
        first_seq = last_seq = self._frame_seq  # committed only once every frame passed
        for index, frame in enumerate(frames):
            if not isinstance(frame, PoseFrame):
                raise PoseFrameError(index, [f"expected a PoseFrame, not {type(frame).__name__}"])
            if self.validate:
                problems = validate_frame(frame)
                if problems:
                    raise PoseFrameError(index, problems)
            if frame.frame_seq is None:
                frame = msgspec.structs.replace(frame, frame_seq=last_seq + 1)
            elif frame.frame_seq <= last_seq:
                raise PoseFrameError(index, [f"frame_seq {frame.frame_seq} does not increase"])
            last_seq = frame.frame_seq or last_seq
            numbered.append(frame)
        self._frame_seq = last_seq
        try:
            async with asyncio.timeout(self.ack_timeout):
                async with self._window:
                    self._batch_seq += 1
                    seq = self._batch_seq
                    payload = encoder.encode(FrameBatch(batch_seq=seq, frames=numbered))
                    if len(payload) > self._channel.max_message_size:
                        self._batch_seq -= 1  # nothing ran since it was taken
                        if self._frame_seq == last_seq:  # nor was a later batch numbered
                            self._frame_seq = first_seq
                        self._channel.refuse(payload, "frame_batch")
                    future: asyncio.Future[FrameAck] = asyncio.get_running_loop().create_future()
                    # Written at once when nothing else is in flight or when it is large
                    # (WRITE_AT_ONCE, about 4 frames): coalescing saves little on it, and
                    # waiting lets every other ready task (a hundred ``send`` calls
                    # validating, a burst of woken ones encoding) run before it leaves.
                    flush = not self._pending or len(payload) >= WRITE_AT_ONCE
                    self._pending[seq] = (future, payload)
                    await self._channel.wait_connected(None)
                    with contextlib.suppress(ConnectionLostError):  # resent on reconnect
                        await self._channel.send(payload, text=True, flush=flush)
                    return await asyncio.shield(future)
        except TimeoutError:
            raise APITimeoutError(f"No frame_ack within {self.ack_timeout}s") from None
        except ConnectionLostError:
            if self.done is not None:  # it ended while this batch waited for the socket
                raise self._terminal_error() from None
            raise

    async def ping(self) -> None:
        """Send a keepalive ``ping`` (the server answers ``pong``)."""
        await self._channel.send(_PING, text=True)

    async def events(self) -> AsyncIterator[StreamItem]:
        """Detection events and session updates, in order; ends after ``session_done``.

        Also ends when the session is closed. When the stream is lost for good
        before ``session_done`` (reconnects ran out, an unrecoverable close),
        the iteration raises :class:`~aiolens.errors.ConnectionLostError`
        after the items received before, with the reason as ``__cause__``.
        Items wait in a bounded queue (``event_queue_size``): when the
        consumer lags past it, the oldest are dropped (see
        :attr:`dropped_events`), never the end of the stream. Cancelling the
        iteration loses no item.
        """
        buffer = self._events
        items = buffer.items
        while True:
            while not items:
                await buffer.wait_for_item()
            item = items.popleft()
            if item is _END:
                buffer.append(_END)  # later iterators end too
                return
            if type(item) is _Failure:
                buffer.append(item)  # later iterators fail too
                raise item.error
            yield item

    async def finalize(self, *, timeout: float = 30.0) -> SessionDone:
        """Send ``finalize`` after waiting for every ack; return the ``session_done`` summary.

        If the stream drops before ``session_done`` arrives, ``finalize`` is
        sent again once it is back (after any unacknowledged batches). Calling
        it again returns the same summary. Cancelling or timing out abandons
        the wait only; the server may still complete the session.

        Returns:
            The ``session_done`` summary, whatever the terminal status: check
            ``status`` (``completed``, ``failed`` with ``error`` set, or
            ``cancelled``).

        Raises:
            ConfigurationError: ``timeout`` is not a finite number > 0.
            DetectionError: the server answered with a ``session_*`` error.
            ConnectionLostError: the stream could not be restored.
            APITimeoutError: no ``session_done`` within ``timeout``.
        """
        check_seconds("timeout", timeout)
        try:
            async with asyncio.timeout(timeout):
                while self._pending:
                    await asyncio.wait([f for f, _ in self._pending.values()])
                if not self._done_future.done():
                    self._finalize_requested = True
                    await self._channel.wait_connected(None)
                    if not self._finalize_sent:
                        with contextlib.suppress(ConnectionLostError):  # resent on reconnect
                            await self._channel.send(_FINALIZE, text=True)
                            self._finalize_sent = True
                return await asyncio.shield(self._done_future)
        except TimeoutError:
            raise APITimeoutError(f"No session_done within {timeout}s") from None

    async def aclose(self) -> None:
        """Close the stream; cancel the session unless it reached a terminal state.

        Idempotent (a second call waits for the same work), shielded from
        cancellation and bounded by ``cancel_timeout``. The session leaves
        ``client.open_sessions`` at once.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shutdown())
            self.client.registry.closing(self, self._closing)
        await wait_to_completion(self._closing)

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called (its work may still be under way)."""
        return self._closing is not None

    async def _shutdown(self) -> None:
        await self._channel.aclose()
        for task in list(self._tasks):
            task.cancel()
        self._fail_pending(ConnectionLostError("The detection session was closed"))
        if self._done_future.done():
            self._done_future.exception()  # mark retrieved
        if self.status not in TERMINAL_STATUSES:
            record = await self.client.sessions.cancel_quietly(
                self.session_id, timeout=self.cancel_timeout
            )
            if record is not None:
                self.status = record.status
        self._end()
