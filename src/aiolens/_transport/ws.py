"""One WebSocket: no task while it is up, one send path, keepalive and reconnects.

:class:`WebSocketChannel` is protocol-agnostic: the Lens and Kynasmith
sessions build on it. Every received message goes to ``on_message``, in
order, straight from the connection as its last frame is parsed (see
:mod:`aiolens._transport.ws_dispatch`: no queue, no task wake-up per message).
An open connection costs no task of the channel's own: the connection's
``connection_lost`` callback starts the recovery task, which runs the
reconnects and ends once a new connection is up (thousands of idle sessions
then hold no reader task, coroutine or future each for the garbage collector
to walk). When the connection is lost, ``on_lost`` is called first (so the
owner can fail its pending requests at once), then, if the close was
recoverable and reconnecting is enabled, the channel reconnects with backoff
and awaits ``on_reconnect``.

Recoverable: a dropped TCP connection (no close frame, 1006), 1001 going
away, 1011 internal error, 1012 service restart, 1013 try again later,
1014 bad gateway. A normal close (1000), a policy violation (1008, e.g. bad
auth) and other codes end the channel. A reconnect attempt that the server
answers 429 or 5xx is retried (after its ``Retry-After``, when given); one
answered with another status (401, 404 ...) ends the channel. When to
reconnect is :class:`~aiolens._core.reconnect.ReconnectPolicy`'s decision: a
connection that closes before it was useful (no message received, no pong to a
keepalive ping, open less than 60 s) counts as a failed attempt, so a server
that accepts every
handshake and closes at once meets a growing backoff, and ``max_reconnects``
such failures in a row end the channel.

The channel always ends audibly: if its recovery task stops for any reason
other than :meth:`WebSocketChannel.aclose` (an unexpected error, a cancel from
outside), ``on_lost`` and ``on_final`` are called with a
:class:`~aiolens.errors.ConnectionLostError` whose ``__cause__`` is the reason.

Outgoing messages are checked against ``max_message_size`` before anything
is written: a message the server would refuse (closing the socket with 1009
for every pending request) raises :class:`~aiolens.errors.MessageTooLargeError`
locally instead.

Writes are coalesced: the frames :meth:`WebSocketChannel.send` queues during
one pass of the event loop go to the socket together, in order, in one
``write`` at the start of the next pass. Many tasks sending at once then cost
one system call instead of one each (the benchmarks' pipelined case). A
caller that knows its frame is alone (``flush=True``: nothing else in flight)
has it written at once instead, with whatever was queued before it, unless the
last read brought several messages (their receivers are likely to send in this
pass too, so it waits for them) and the frame is small (``WRITE_AT_ONCE``).
While the socket is backed up (the transport holds unsent bytes), ``send``
falls back to ``websockets``' own path, which waits for the buffer to drain.

Size: one class with one state (the connection, its recovery task, the write queue and
the reconnect loop share it); the parts that split cleanly are already out (the
reconnect decisions in :mod:`aiolens._core.reconnect`, the framing, reading and writing
of messages in :mod:`aiolens._transport.ws_dispatch`), and a tenth of it is this docstring.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, Final, cast

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.protocol import State
from websockets.typing import Subprotocol

from aiolens._core.backoff import Backoff, parse_retry_after
from aiolens._core.reconnect import ReconnectPolicy
from aiolens._core.redact import get_logger, install_log_redaction
from aiolens._transport.shielded import cancel_and_wait
from aiolens._transport.vendor_rules import NEUTRAL_RULES, VendorRules
from aiolens._transport.ws_dispatch import DispatchingConnection
from aiolens.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConnectionLostError,
    MessageTooLargeError,
)
from aiolens.observe import ConnectionEvent, ConnectionState, Observer, notify_connection

__all__ = ["RECOVERABLE_CLOSE_CODES", "WebSocketChannel"]

log = get_logger("ws")

RECOVERABLE_CLOSE_CODES: Final = frozenset({1001, 1006, 1011, 1012, 1013, 1014})
DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
"""The largest message sent or received by default: 16 MiB, ``websockets``' ``max_size``."""
_USEFUL_AFTER: Final = 60.0
"""Seconds after which an open connection counts as useful even without messages or pongs.

Longer than a keepalive failure takes to surface with the defaults (ping 20 s, pong 20 s,
closing handshake 10 s), so a server that accepts and then freezes is a failed attempt."""
WRITE_AT_ONCE: Final = 16 * 1024
"""A frame at least this large sent with ``flush=True`` is written at once even after a read of
several messages: joining it with the frames their receivers send saves little, and it would
wait for all of them (e.g. a burst of acks waking a dozen Kynasmith senders that each encode
a 68 KB batch: the first would wait for the last)."""

Target = Callable[[], Awaitable[tuple[str, Mapping[str, str]]]]
"""Returns the URL and headers for each (re)connect attempt."""


class WebSocketChannel:
    """A WebSocket with automatic reconnects (a task only while it reconnects).

    Args:
        target: coroutine giving the URL and handshake headers (called on every
            connect, so a refreshed token is used).
        on_message: called with every message, in order, from the event
            loop's protocol callback (not a task). It must not block;
            exceptions it raises are logged and the message is skipped.
        on_lost: called with a :class:`ConnectionLostError` when the connection
            goes down, before any reconnect.
        on_reconnect: awaited after a successful reconnect, in the recovery
            task: messages that arrive meanwhile are held and handed to
            ``on_message`` once it returns, so it must not wait for replies
            (spawn a task for that).
        on_final: called once when the channel ends for good without
            :meth:`aclose` (an unrecoverable close, reconnects ran out, or the
            recovery task stopped unexpectedly).
        reconnect: whether to reconnect after a recoverable close.
        max_reconnects: failed attempts in a row before giving up; a
            connection that closes before it was useful counts as one.
        backoff: delays between reconnect attempts.
        open_timeout: seconds for the opening handshake.
        ping_interval: seconds between keepalive pings (``None`` disables).
        ping_timeout: seconds to wait for a pong before the connection is
            considered dead.
        subprotocols: subprotocols to offer.
        compression: ``"deflate"`` or ``None`` (the default: small frames
            gain nothing from compression and pay its latency).
        max_size: largest incoming message in bytes.
        max_message_size: largest outgoing message in bytes (its encoded
            size); :meth:`send` refuses a larger one without sending it.
        name: how the channel appears in logs.
        observer: hears each change of the connection's state
            (:class:`~aiolens.observe.ConnectionEvent`).
        rules: the vendor's reading of a refused handshake's error body.
    """

    def __init__(
        self,
        target: Target,
        *,
        on_message: Callable[[str | bytes], None],
        on_lost: Callable[[ConnectionLostError], None],
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        on_final: Callable[[ConnectionLostError], None] | None = None,
        reconnect: bool = True,
        max_reconnects: int = 5,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        subprotocols: Sequence[str] | None = None,
        compression: str | None = None,
        max_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        name: str = "websocket",
        observer: Observer | None = None,
        rules: VendorRules = NEUTRAL_RULES,
    ) -> None:
        install_log_redaction()
        self._target = target
        self._on_message = on_message
        self._on_lost = on_lost
        self._on_reconnect = on_reconnect
        self._on_final = on_final
        self._rules = rules
        self.reconnect = reconnect
        self.max_reconnects = max_reconnects
        self._backoff = backoff or Backoff(initial=0.25, maximum=5.0)
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._subprotocols = [Subprotocol(p) for p in subprotocols or ()]
        self._compression = compression
        self._max_size = max_size
        self.max_message_size = max_message_size
        self._policy = ReconnectPolicy(
            self._backoff, max_attempts=max_reconnects, useful_after=_USEFUL_AFTER
        )
        self.name = name
        self._observer = observer
        self._ws: DispatchingConnection | None = None
        self._held: list[str | bytes] | None = None  # messages held back during on_reconnect
        # Runs from a lost connection until the next one is up (or the channel ends).
        self._recovery: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._final_error: ConnectionLostError | None = None
        self._flush_pending = False
        self.reconnects = 0
        """How many times the channel reconnected so far."""

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now."""
        return self._connected.is_set()

    @property
    def closed(self) -> bool:
        """Whether the channel is finished (closed by us or failed for good)."""
        return self._closing or self._final_error is not None

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server selected."""
        return self._ws.subprotocol if self._ws is not None else None

    async def connect(self) -> None:
        """Open the connection (messages flow to ``on_message`` from now on).

        Raises:
            APIStatusError: the server refused the handshake with an HTTP
                status (401 for a bad key ...).
            APIConnectionError: the server could not be reached.
            APITimeoutError: the handshake took longer than ``open_timeout``.
        """
        self._emit(ConnectionState.CONNECTING)
        try:
            self._ws = await self._open()
        except BaseException as exc:
            self._emit(ConnectionState.CLOSED, cause=exc)
            raise
        self._policy.opened(time.monotonic())
        self._emit(ConnectionState.OPEN)
        self._connected.set()
        if self._ws.connection_lost_waiter.done():  # lost before it was ours: recover now
            self._connection_lost(self._ws)

    async def _open(self) -> DispatchingConnection:
        url, headers = await self._target()
        try:
            ws = await connect(
                url,
                additional_headers=dict(headers),
                subprotocols=self._subprotocols or None,
                compression=self._compression,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                max_size=self._max_size,
                max_queue=None,
                user_agent_header="aiolens",
                proxy=None,
                logger=log,
                # "a wrapper or a subclass" (websockets' docs); its annotation says type
                create_connection=cast(
                    type[DispatchingConnection],
                    partial(
                        DispatchingConnection, deliver=self._deliver, closed=self._connection_lost
                    ),
                ),
            )
        except InvalidStatus as exc:
            resp = exc.response
            raise self._rules.status_error(
                resp.status_code,
                bytes(resp.body or b""),
                request_id=resp.headers.get("X-Request-ID"),
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            ) from None
        except TimeoutError:
            raise APITimeoutError(f"Timed out opening {self.name}", sent=False) from None
        except (OSError, WebSocketException) as exc:
            raise APIConnectionError(f"Cannot open {self.name}: {exc}", sent=False) from None
        assert isinstance(ws, DispatchingConnection)
        # Only the handshake needs its request: not keeping it drops ~25 objects per
        # connection for the garbage collector to walk, and the API key's header with them.
        ws.request = None
        return ws

    def _connection_lost(self, ws: DispatchingConnection) -> None:
        """The current connection is gone: not connected from now on; start the recovery.

        Cleared here, at once: a caller that retries a failed send without
        suspending must wait for the reconnect, not meet the same closed
        connection again and again. A recovery task already running (the
        connection it opened was lost during ``on_reconnect``) handles this
        loss itself when that hook returns.
        """
        if ws is not self._ws:
            return
        self._connected.clear()
        if self._closing or self._final_error is not None:
            return
        if self._recovery is None or self._recovery.done():
            task = asyncio.get_running_loop().create_task(
                self._recover(ws), name=f"aiolens-{self.name}-recovery"
            )
            task.add_done_callback(self._recovery_done)
            self._recovery = task

    def _deliver(self, message: str | bytes) -> None:
        """Each message, from the connection as it is parsed (see ``ws_dispatch``)."""
        if self._final_error is not None:  # the owner was told the channel ended
            return
        held = self._held
        if held is not None:  # on_reconnect is running: it sees no message before it ends
            held.append(message)
            return
        try:
            self._on_message(message)
        except Exception:
            log.exception("%s: error handling a message; skipped", self.name)

    async def wait_connected(self, timeout: float | None) -> None:
        """Wait until a connection is open (during a reconnect).

        Raises:
            ConnectionLostError: the channel closed for good.
            APITimeoutError: no connection within ``timeout``.
        """
        self._raise_if_final()
        if self._connected.is_set():
            return
        if self._ws is None:
            raise ConnectionLostError(f"{self.name} was never connected")
        waiter = asyncio.ensure_future(self._connected.wait())
        waits: set[asyncio.Future[Any]] = {waiter}
        if self._recovery is not None and not self._recovery.done():
            waits.add(self._recovery)  # it ends early if the channel gives up
        try:
            async with asyncio.timeout(timeout):
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise APITimeoutError(f"{self.name} is reconnecting; gave up waiting") from None
        finally:
            waiter.cancel()
        self._raise_if_final()

    def _raise_if_final(self) -> None:
        if self._final_error is not None:
            raise self._final_error
        if self._closing:
            raise ConnectionLostError(f"{self.name} is closed")

    async def send(
        self, message: str | bytes, *, text: bool | None = None, flush: bool = False
    ) -> None:
        """Send one message (``text=True`` sends bytes as a text frame, unencoded).

        The frame is queued for writing before the first suspension point, so
        messages from concurrent callers go out in the order ``send`` was
        called. It reaches the socket with the other frames queued in the same
        loop pass (see the module docs), or at once with ``flush=True`` (for a
        frame no other is likely to join: it saves the wait for the next pass).
        ``send`` returns once the frame is queued, or, while the socket is
        backed up, once the write buffer has drained. Cancelling while the
        write buffer drains does not unsend it.

        Raises:
            MessageTooLargeError: the encoded message is larger than
                ``max_message_size``; nothing was sent.
            ConnectionLostError: the connection is down.
        """
        if isinstance(message, str):
            data, as_text = message.encode(), text is not False
        else:
            data, as_text = message, text is True
        if len(data) > self.max_message_size:
            self.refuse(data)
        if self.queue(data, as_text, flush):
            return
        ws = self._ws
        if ws is None or not self._connected.is_set():
            self._raise_if_final()
            raise ConnectionLostError(f"{self.name} is not connected", unsent=[message])
        try:
            await ws.send(data, text=as_text)  # also writes the frames queued before it
        except ConnectionClosed as exc:
            raise ConnectionLostError(
                f"{self.name} closed while sending", close_code=_code(exc), unsent=[message]
            ) from None

    def queue(self, data: bytes, text: bool, flush: bool = False) -> bool:
        """:meth:`send`'s fast path, without a coroutine: queue the frame now, or ``False``.

        ``False`` (nothing queued; :meth:`send` it) while the connection is down, the
        socket is backed up or ``data`` is over ``max_message_size``.
        """
        ws = self._ws
        if ws is None or not self._connected.is_set() or len(data) > self.max_message_size:
            return False
        if ws.protocol.state is not State.OPEN or ws.transport.get_write_buffer_size():
            return False
        ws.queue(data, text)  # frame it now, write it with the rest of this loop pass
        if flush and (ws.batch < 2 or len(data) >= WRITE_AT_ONCE):  # else others will join
            ws.write_queued()
        elif not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush, ws)
        return True

    def refuse(self, data: bytes, what: str = "message") -> None:
        """Raise :class:`MessageTooLargeError` if ``data`` is over ``max_message_size``.

        Owners call it before they register a message as pending, so that a refused
        one leaves no trace; :meth:`send` calls it too.
        """
        if len(data) > self.max_message_size:
            raise MessageTooLargeError(
                f"{self.name}: a {what} of {len(data)} bytes is over max_message_size "
                f"({self.max_message_size}); it was not sent",
                size=len(data),
                limit=self.max_message_size,
            )

    def _flush(self, ws: DispatchingConnection) -> None:
        """The end-of-pass write scheduled by :meth:`send`."""
        self._flush_pending = False
        ws.write_queued()

    async def _recover(self, ws: DispatchingConnection) -> None:
        """The recovery task: report the loss of ``ws``, then reconnect or end the channel.

        It ends once a new connection is up (that connection's loss starts the next
        one), or with the channel: closed, or failed for good (``on_final``).
        """
        policy = self._policy
        while True:
            code = ws.close_code
            if self._closing:
                return
            code = 1006 if code is None else code
            lost = ConnectionLostError(
                f"{self.name} connection lost (close code {code}); "
                "the outcome of pending requests is unknown",
                close_code=code,
            )
            self._on_lost(lost)
            if not (self.reconnect and code in RECOVERABLE_CLOSE_CODES):
                policy.fail()
                self._final_error = lost
                log.info("%s closed (code %s), not reconnecting", self.name, code)
                self._emit(ConnectionState.CLOSED, cause=lost)
            # Useful: it carried a message, or at least answered a keepalive ping.
            elif await self._reconnect(lost, ws.received > 0 or ws.latency > 0):
                current = self._ws
                assert current is not None
                ws = current
                if self._closing or not ws.connection_lost_waiter.done():
                    return  # up: its loss starts the next recovery
                # Lost already (before it was ours, or while on_reconnect ran): go on here.
                self._connected.clear()
                continue
            if self._on_final is not None and self._final_error is not None:
                self._on_final(self._final_error)
            return

    async def _reconnect(self, lost: ConnectionLostError, useful: bool) -> bool:
        """Reconnect as the policy says; ``False`` (with the final error set) to give up."""
        policy = self._policy
        delay = policy.ended(time.monotonic(), useful=useful)
        cause: BaseException | None = None
        while delay is not None:
            log.info("%s: reconnecting in %.2fs (attempt %d)", self.name, delay, policy.failures)
            self._emit(
                ConnectionState.RECONNECTING,
                attempt=policy.failures,
                delay=delay,
                cause=lost if cause is None else cause,
            )
            await asyncio.sleep(delay)
            if self._closing:
                return False
            # Messages that come before on_reconnect has run wait for it (see __init__).
            self._held = [] if self._on_reconnect is not None else None
            try:
                self._ws = await self._open()
            except APIConnectionError as exc:
                log.info("%s: reconnect failed: %s", self.name, exc)
                cause, delay = exc, policy.ended(time.monotonic())
                continue
            except APIStatusError as exc:
                cause = exc
                if exc.retryable:  # 429, 5xx: try again, after Retry-After when given
                    log.info("%s: reconnect refused for now: %s", self.name, exc)
                    delay = policy.ended(time.monotonic(), retry_after=exc.retry_after)
                    continue
                log.warning("%s: reconnect refused: %s", self.name, exc)
                policy.fail()  # 401, 404 ...: do not hammer the server
                break
            except Exception as exc:
                log.warning("%s: reconnect failed: %r", self.name, exc)
                cause = exc
                policy.fail()
                break
            policy.opened(time.monotonic())
            self.reconnects += 1
            self._emit(ConnectionState.OPEN, attempt=policy.failures)
            self._connected.set()
            if self._on_reconnect is not None:
                try:
                    await self._on_reconnect()
                except Exception:
                    log.exception("%s: on_reconnect hook failed", self.name)
            held, self._held = self._held or [], None
            for message in held:
                self._deliver(message)
            return True
        if policy.failures > self.max_reconnects:
            why = (
                f"after {self.max_reconnects} attempt(s) in a row that failed or closed "
                "before they were useful"
            ) + (f"; last: {cause}" if cause is not None else "")
        else:
            why = f"refused: {cause}"
        self._final_error = ConnectionLostError(
            f"{self.name}: gave up reconnecting {why}", close_code=lost.close_code
        )
        self._final_error.__cause__ = cause if cause is not None else lost
        self._held = None
        log.warning("%s", self._final_error)
        self._emit(ConnectionState.GAVE_UP, attempt=policy.failures, cause=self._final_error)
        return False

    def _recovery_done(self, task: asyncio.Task[None]) -> None:
        """The recovery task ended: if it was cancelled or failed (not by :meth:`aclose`,
        nor after the channel gave up), the owner hears why now."""
        if self._closing or self._final_error is not None:
            return
        if not task.cancelled() and task.exception() is None:  # a new connection is up
            return
        self._connected.clear()
        self._policy.fail()
        cause = None if task.cancelled() else task.exception()
        why = "it was cancelled" if cause is None else f"{type(cause).__name__}: {cause}"
        lost = ConnectionLostError(
            f"{self.name}: the recovery task stopped ({why}); "
            "the outcome of pending requests is unknown"
        )
        lost.__cause__ = cause
        self._final_error = lost
        self._held = None
        if self._ws is not None:  # the channel is over: so is whatever connection it has
            self._ws.transport.abort()
        log.warning("%s", lost, exc_info=cause)
        self._emit(ConnectionState.CLOSED, cause=lost)
        for callback in (self._on_lost, self._on_final):
            if callback is not None:
                try:
                    callback(lost)
                except Exception:
                    log.exception("%s: error reporting the stopped recovery", self.name)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Close the connection and stop any reconnecting. Idempotent.

        Sends a close frame and waits up to ``timeout`` for the closing
        handshake, then stops the recovery task (if a reconnect is under way)
        and waits for it. Cancel: the close is shielded, so the socket is still
        closed and the recovery stopped, but the caller's
        :class:`asyncio.CancelledError` is raised at once (never swallowed).
        """
        if self._closing:
            return
        self._closing = True
        self._connected.clear()
        ws, recovery = self._ws, self._recovery
        if self._final_error is None and ws is not None:
            self._emit(ConnectionState.CLOSED)
        await asyncio.shield(self._close(ws, recovery, timeout))

    def _emit(
        self,
        state: ConnectionState,
        *,
        attempt: int = 0,
        delay: float | None = None,
        cause: BaseException | None = None,
    ) -> None:
        if self._observer is not None:
            event = ConnectionEvent(self.name, state, attempt, delay, cause)
            notify_connection(self._observer, event)

    async def _close(
        self,
        ws: DispatchingConnection | None,
        recovery: asyncio.Task[None] | None,
        timeout: float,
    ) -> None:
        if ws is not None:
            try:
                async with asyncio.timeout(timeout):
                    await ws.close()
            except (TimeoutError, OSError, WebSocketException):
                ws.transport.abort()
        if recovery is not None:
            await cancel_and_wait(recovery)


def _code(exc: ConnectionClosed) -> int:
    frame = exc.rcvd
    return frame.code if frame is not None else 1006
