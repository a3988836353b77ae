"""Server-Sent Events over aiohttp, with resume and liveness.

An :class:`EventStream` runs one reader task that reads the response body in
chunks, parses it with the WHATWG parser in :mod:`aiolens._core.sse`, decodes
each event and puts it on a bounded queue that the consumer iterates.

* **Backpressure** (``overflow="block"``, the default): when the queue is
  full the reader stops reading, and TCP flow control slows the server.
  ``overflow="drop_oldest"`` instead discards the oldest queued event and
  counts it in :attr:`EventStream.dropped`.
* **Resume**: when the connection drops (an error, a read stall longer than
  ``liveness_timeout``, or EOF before the end event), the reader reconnects
  with ``Last-Event-ID`` and drops any event whose id was already delivered.
  It waits the backoff delay, and at least the stream's own ``retry:`` time.
  If the server cannot resume (it answers 4xx to the resume request), or the
  stream carries no ids after events were delivered, the consumer gets a
  :class:`~aiolens.errors.StreamResumeError`: events are never silently lost.
  A 429 or 5xx answer (to the first request or a resume) is retried the same
  way, after the server's ``Retry-After`` when it gives one; after
  ``max_reconnects`` failures in a row the consumer gets the last error.
* **Malformed frames** (not JSON, JSON too deeply nested to decode, any decode
  error) and events larger than ``max_event_bytes`` are logged at WARNING,
  counted in :attr:`EventStream.malformed`, and skipped; the stream goes on.
* **The consumer always hears the end**: whatever ends the reader task (the end
  event, a lost stream, an unexpected error, a cancel from outside) ends the
  iteration, with a typed error (:class:`~aiolens.errors.AiolensError`) unless
  the stream ended normally or was closed; an unexpected exception is the
  typed error's ``__cause__``.
* **Decisions are pure**: which ids were delivered and whether a resume is
  safe is :class:`~aiolens._core.resume.ResumeCursor`'s; when to reconnect and
  when to give up is :class:`~aiolens._core.reconnect.ReconnectPolicy`'s (a
  connection that ends before delivering anything counts as a failed attempt).
* **Decoding where the event is used**: with ``ordinary`` set, the reader only
  checks each frame's kind (well-formed, not the end, not skipped, not a
  connection event) and queues it still encoded; the consumer decodes it when
  it takes it. The decoded objects then live only as long as the caller keeps
  them, instead of waiting in the queue long enough for the garbage
  collector to promote them (with a full queue that collector took a fifth of
  the consumer's time in the benchmarks).
* **A chunk at a time**: when a chunk's frames all carry new numeric ids in
  order and are all ordinary, the reader moves the resume cursor once and
  queues them in one step (waiting, under ``block``, until all fit), which is
  what taking them one by one would do, at a fraction of the cost.

Size: one class with one state shared by the reader task and its consumers (the
queue, its waiters, the resume cursor, the reconnect loop); the parsing and the
resume and reconnect decisions are already in ``_core``.
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections.abc import Callable
from typing import Any, Final, Generic, Literal, TypeVar, get_args

import aiohttp

from aiolens._core.backoff import Backoff
from aiolens._core.options import check_choice, check_count, check_seconds
from aiolens._core.reconnect import ReconnectPolicy
from aiolens._core.redact import get_logger
from aiolens._core.resume import ResumeCursor
from aiolens._core.sse import DEFAULT_MAX_EVENT_BYTES, SSEEvent, SSEParser
from aiolens._transport.buffer import ItemBuffer
from aiolens._transport.http import HTTPTransport
from aiolens._transport.shielded import cancel_and_wait
from aiolens.errors import (
    AiolensError,
    APIConnectionError,
    APIStatusError,
    StreamResumeError,
)
from aiolens.observe import ConnectionEvent, ConnectionState, notify_connection

__all__ = ["EventStream", "Overflow"]

T = TypeVar("T")
log = get_logger("sse")

Overflow = Literal["block", "drop_oldest"]

_ID: Final = operator.attrgetter("id")
_RUN_AT_LEAST: Final = 4
"""A chunk with fewer frames is taken one by one (the run's checks would cost more)."""
_END: Final = object()
_SKIP: Final = object()
_USEFUL_AFTER: Final = 10.0
"""Seconds after which an open connection counts as useful even without events."""


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class EventStream(Generic[T]):
    """Iterate decoded events of one SSE endpoint; see the module docs for the policies.

    Args:
        http: the transport (auth, base URL).
        path: the endpoint path.
        decode: turns one :class:`SSEEvent` into a typed event; raising
            :class:`ProtocolError` marks the frame malformed (skipped).
        is_end: whether a decoded event ends the stream (it is still yielded).
        skip: whether a decoded event is consumed silently (heartbeats).
        outside_sequence: events that belong to a connection, not to the
            resumable sequence (stream start, heartbeats): they carry no id
            and do not make a resume unsafe.
        ordinary: for each frame, whether it is an ordinary event: one that
            ``decode`` turns into an event without raising, for which
            ``is_end``, ``skip`` and ``outside_sequence`` are all false. Such
            frames are decoded by the consumer, not the reader (see the module
            docs); the others are decoded at once. It may raise
            :class:`ProtocolError` for a malformed frame. ``T`` must not be
            :class:`SSEEvent` itself.
        ordinary_run: with ``ordinary``, whether every frame of a run (a
            chunk's frames) is ordinary, judged at once (one call per chunk
            instead of one per frame). It may answer ``False`` when unsure;
            the frames are then judged one by one. A frame it lets through
            that ``decode`` then refuses is counted in :attr:`malformed` when
            the consumer reaches it.
        decode_text: with ``ordinary``, a faster decoder for an ordinary frame's
            ``data``, tried first when the consumer takes the frame; any
            exception from it sends the frame to ``decode`` (which decides
            whether it is malformed).
        queue_size: bound of the queue between reader and consumer.
        overflow: ``"block"`` or ``"drop_oldest"``.
        liveness_timeout: seconds without any bytes (heartbeats included)
            after which the connection is considered dead and resumed.
        max_reconnects: consecutive failed reconnects before giving up (a
            connection that ends before delivering an event, within 10 s,
            counts as a failed one).
        backoff: delays between reconnects.
        last_event_id: a resume cursor kept elsewhere (a checkpoint): the first
            request sends it as ``Last-Event-ID``, and events up to it count as
            delivered.
        max_event_bytes: the largest event (or line) kept; a larger one is
            dropped, logged and counted in :attr:`malformed`, so memory stays
            bounded whatever the server sends.

    Cancelling the consumer does not stop the reader; :meth:`aclose` does
    (and releases the connection), and consumers waiting at that moment see
    the iteration end. Leaving an ``async with`` block closes it.
    """

    def __init__(
        self,
        http: HTTPTransport,
        path: str,
        *,
        decode: Callable[[SSEEvent], T],
        is_end: Callable[[T], bool],
        skip: Callable[[T], bool] | None = None,
        outside_sequence: Callable[[T], bool] | None = None,
        ordinary: Callable[[SSEEvent], bool] | None = None,
        ordinary_run: Callable[[list[SSEEvent]], bool] | None = None,
        decode_text: Callable[[str], T] | None = None,
        queue_size: int = 1024,
        overflow: Overflow = "block",
        liveness_timeout: float = 30.0,
        max_reconnects: int = 5,
        backoff: Backoff | None = None,
        last_event_id: str = "",
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        check_count("queue_size", queue_size)
        check_choice("overflow", overflow, get_args(Overflow))
        check_seconds("liveness_timeout", liveness_timeout)
        check_count("max_reconnects", max_reconnects, minimum=0)
        SSEParser(max_event_bytes)  # checks the bound now, not at the first connection
        self._max_event_bytes = max_event_bytes
        self._http = http
        self._path = path
        self._decode = decode
        self._is_end = is_end
        self._skip = skip
        self._outside = outside_sequence
        self._ordinary = ordinary
        self._ordinary_run = ordinary_run if ordinary is not None else None
        self._decode_text = decode_text
        self._opened = False
        # The queue between reader and consumer (block: the reader waits for room;
        # drop_oldest: the buffer drops and counts).
        self._buffer: ItemBuffer[Any] = ItemBuffer(queue_size)
        self._items = self._buffer.items  # the consumer's and reader's fast paths use it
        self._overflow = overflow
        self._liveness = liveness_timeout
        self._max_reconnects = max_reconnects
        self._policy = ReconnectPolicy(
            backoff or Backoff(initial=0.2, maximum=5.0),
            max_attempts=max_reconnects,
            useful_after=_USEFUL_AFTER,
        )
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()  # set once the server first answers 200
        self._finished = False
        self._terminal = False  # the end or a failure was queued
        self._cursor = ResumeCursor()  # ids delivered, so that a resume repeats nothing
        self.malformed: int = 0
        """Frames skipped because they could not be decoded."""
        self.reconnects: int = 0
        """Successful resumes so far."""
        self.delivered: int = 0
        """Events put on the queue so far."""
        self.server_retry: float | None = None
        """The reconnection time the stream asked for (its last ``retry:``), in seconds."""
        self._parser: SSEParser | None = None  # the current (or last) connection's
        if last_event_id:
            self._cursor.advance(last_event_id)

    @property
    def dropped(self) -> int:
        """Events discarded by the ``drop_oldest`` policy."""
        return self._buffer.dropped

    @property
    def last_event_id(self) -> str:
        """The id of the last event delivered (the resume cursor)."""
        return self._cursor.last_event_id

    @property
    def finished(self) -> bool:
        """Whether the stream is over (ended, failed or closed) and its reader stopped."""
        return self._finished and (self._reader is None or self._reader.done())

    def start(self) -> None:
        """Start the reader task (iteration starts it too)."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._run(), name=f"aiolens-sse {self._path}")
            self._reader.add_done_callback(self._reader_done)

    async def wait_connected(self) -> bool:
        """Start the reader and wait until the server has accepted the stream.

        A live-only server (the Lens consumer without ``Last-Event-ID``) sends
        only what is produced after the consumer connected: wait for this
        before starting what produces the events. Bound it with
        ``asyncio.timeout``; cancelling it leaves the reader running.

        Returns:
            ``True`` once connected; ``False`` when the stream ended or failed
            before connecting (iterating it raises that error).
        """
        self.start()
        reader = self._reader
        assert reader is not None
        if self._connected.is_set() or reader.done():
            return self._connected.is_set()
        connected = asyncio.ensure_future(self._connected.wait())
        try:
            await asyncio.wait((connected, reader), return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
        return self._connected.is_set()

    def __aiter__(self) -> EventStream[T]:
        self.start()
        return self

    async def __anext__(self) -> T:
        items = self._items
        if not items or self._finished:  # the usual case is an item waiting
            await self._wait_for_item()
        item = items.popleft()
        if self._buffer.producers:
            self._buffer.taken()
        if type(item) is SSEEvent:  # an ordinary event, queued undecoded
            if self._decode_text is not None:
                try:
                    return self._decode_text(item.data)
                except Exception:  # not for the fast decoder: let decode() judge it
                    pass
            try:
                return self._decode(item)
            except Exception as exc:  # ordinary() said it would not: count it, go on
                self.malformed += 1
                self.delivered -= 1
                log.warning("skipping malformed event on %s: %s", self._path, _describe(exc))
                return await self.__anext__()
        if item is _END:
            self._finish()
            raise StopAsyncIteration
        if type(item) is _Failure:
            self._finish()
            raise item.error
        result: T = item
        return result

    async def _wait_for_item(self) -> None:
        """Wait until an item is queued; ``StopAsyncIteration`` once the iteration is over."""
        if self._finished:
            raise StopAsyncIteration
        if self._reader is None:
            self.start()
        while not self._items:
            if self._finished:  # closed, or another consumer took the end
                raise StopAsyncIteration
            await self._buffer.wait_for_item()

    async def __aenter__(self) -> EventStream[T]:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _finish(self) -> None:
        """The iteration is over: later and concurrent ``__anext__`` calls stop too."""
        self._finished = True
        self._buffer.wake_all_consumers()

    async def aclose(self) -> None:
        """Stop the reader and release the connection. Idempotent.

        Consumers waiting for an event at that moment see the iteration end. Cancel:
        if the caller is cancelled while the reader winds down, its
        :class:`asyncio.CancelledError` propagates and the reader still stops.
        """
        self._finish()
        reader = self._reader
        if reader is not None and not reader.done():
            if not self._terminal:
                self._emit(ConnectionState.CLOSED)
            # The caller's own cancel still propagates; the reader stops either way.
            await cancel_and_wait(reader)

    # ---- reader task --------------------------------------------------------------------

    def _reader_done(self, reader: asyncio.Task[None]) -> None:
        """The reader ended: if it queued neither the end nor a failure, queue one now.

        That happens when it is cancelled (by :meth:`aclose`: the iteration just ends; from
        outside, e.g. a loop shutting down: the consumer gets a typed error), so that no
        consumer waits for an event that cannot come.
        """
        if self._terminal:
            return
        self._terminal = True
        if reader.cancelled() and self._finished:
            item: Any = _END
        else:
            exc = None if reader.cancelled() else reader.exception()
            error = APIConnectionError(f"The reader of event stream {self._path} stopped")
            error.__cause__ = exc
            item = _Failure(error)
        self._buffer.append(item)  # past the bound: it must not wait

    async def _run(self) -> None:
        """The reader task: read and resume until the end; queue the end or the failure."""
        try:
            await self._read_all()
        except asyncio.CancelledError:
            raise
        except AiolensError as exc:
            await self._put(_Failure(exc))
        except Exception as exc:
            # Not one of ours (a bug, or an error no layer below wrapped): the consumer
            # still hears it, typed, with the cause attached.
            log.warning("event stream %s failed: %r", self._path, exc)
            error = APIConnectionError(f"Event stream {self._path} failed: {_describe(exc)}")
            error.__cause__ = exc
            await self._put(_Failure(error))

    async def _read_all(self) -> None:
        first = True
        cursor, policy = self._cursor, self._policy
        self._emit(ConnectionState.CONNECTING)
        while True:
            if not first and not cursor.resumable:
                raise StreamResumeError(
                    f"The event stream dropped after {cursor.since_id} event(s) without "
                    "ids; it cannot be resumed without losing or repeating events"
                )
            resuming = not first and bool(cursor.last_event_id)
            first = False
            before = self.delivered
            retry_after: float | None = None
            error: BaseException | None = None
            try:
                ended = await self._read_once()
            except StreamResumeError:
                raise
            except APIStatusError as exc:
                if resuming and 400 <= exc.status < 500 and exc.status not in (401, 429):
                    raise StreamResumeError(
                        f"The server cannot resume after event {cursor.last_event_id!r}: "
                        f"HTTP {exc.status} {exc.message}"
                    ) from exc
                if not exc.retryable:
                    raise
                # 429 / 5xx: come back later (after Retry-After, when given).
                error, retry_after = exc, exc.retry_after
            except (APIConnectionError, aiohttp.ClientError, TimeoutError) as exc:
                error = exc
            else:
                if ended:
                    self._emit(ConnectionState.CLOSED)
                    await self._put(_END)
                    return
                # EOF before the end event: the server went away; resume.
            if self._parser is not None and self._parser.retry is not None:
                self.server_retry = self._parser.retry / 1000
            # WHATWG: the stream's "retry:" sets the reconnection time; our backoff may
            # wait longer, never less (capped like Retry-After).
            delay = policy.ended(
                time.monotonic(),
                useful=self.delivered > before,
                retry_after=retry_after,
                at_least=self.server_retry,
            )
            if delay is None:
                self._emit(ConnectionState.GAVE_UP, attempt=policy.failures, cause=error)
                if isinstance(error, APIStatusError):
                    raise error
                if error is None:
                    raise APIConnectionError(
                        f"Event stream {self._path} kept closing before its end event"
                    )
                raise APIConnectionError(
                    f"Event stream {self._path} lost and not resumed after "
                    f"{self._max_reconnects} attempts: {_describe(error)}"
                ) from error
            log.info(
                "event stream %s dropped (%s); resuming after id %r in %.2fs",
                self._path,
                "EOF" if error is None else type(error).__name__,
                cursor.last_event_id,
                delay,
            )
            self._emit(
                ConnectionState.RECONNECTING, attempt=policy.failures, delay=delay, cause=error
            )
            await asyncio.sleep(delay)

    def _emit(
        self,
        state: ConnectionState,
        *,
        attempt: int = 0,
        delay: float | None = None,
        cause: BaseException | None = None,
    ) -> None:
        observer = self._http.observer
        if observer is not None:
            event = ConnectionEvent(f"event stream {self._path}", state, attempt, delay, cause)
            notify_connection(observer, event)

    async def _read_once(self) -> bool:
        """Read one connection until EOF; ``True`` when the end event arrived."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        cursor = self._cursor
        if cursor.last_event_id:
            headers["Last-Event-ID"] = cursor.last_event_id
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=self._liveness)
        parser = self._parser = SSEParser(self._max_event_bytes)
        oversized = 0
        previous_id = ""
        items, size, is_end = self._items, self._buffer.size, self._is_end
        async with self._http.stream(
            "GET", self._path, headers=headers, timeout=timeout, max_retries=0
        ) as resp:
            if self._opened:
                self.reconnects += 1
            self._opened = True
            self._policy.opened(time.monotonic())
            self._connected.set()
            self._emit(ConnectionState.OPEN, attempt=self._policy.failures)
            async for chunk in resp.content.iter_any():
                frames = parser.feed(chunk)
                if parser.oversized != oversized:
                    log.warning(
                        "skipping %d event(s) over max_event_bytes (%d) on %s",
                        parser.oversized - oversized,
                        self._max_event_bytes,
                        self._path,
                    )
                    self.malformed += parser.oversized - oversized
                    oversized = parser.oversized
                if (
                    len(frames) >= _RUN_AT_LEAST
                    and self._ordinary_run is not None
                    and len(frames) <= size
                    and self._is_run(frames)
                ):
                    # The whole chunk at once: new ids in order, ordinary events.
                    await self._put_run(frames)
                    previous_id = frames[-1].id
                    frames = []
                for raw in frames:
                    # The last-event-ID persists across frames (WHATWG): only a
                    # frame that changed it carries an id of its own.
                    own_id = raw.id if raw.id != previous_id else ""
                    previous_id = raw.id
                    event = self._accept(raw, own_id)
                    if event is _SKIP:
                        continue
                    self.delivered += 1
                    if len(items) < size:  # _offer(), inlined for the usual case
                        self._buffer.push(event)
                    elif not self._offer(event):
                        await self._put(event)
                    if event is not raw and is_end(event):
                        return True
                if parser.dispatched_id != previous_id:
                    # A frame with an id and no event (no data, or dropped as oversized)
                    # moved the cursor.
                    previous_id = parser.dispatched_id
                    cursor.advance(previous_id)
        parser.close()
        return False

    def _is_run(self, frames: list[SSEEvent]) -> bool:
        """Whether a chunk's frames may be queued in one step; if so, their ids are taken.

        That is when every frame carries a new numeric id, above the one before it
        (:meth:`ResumeCursor.fresh_run`: none is a repeat, each moves the cursor) and
        all are ordinary (``ordinary_run``): one by one, each would be accepted
        undecoded and queued. The cursor then moves past them all at once.
        """
        assert self._ordinary_run is not None
        ids = list(map(_ID, frames))
        if not self._cursor.fresh_run(ids) or not self._ordinary_run(frames):
            return False
        self._cursor.remember_run(ids)
        return True

    async def _put_run(self, frames: list[SSEEvent]) -> None:
        """Queue ordinary frames with one queue operation (no more than ``queue_size``).

        As :meth:`_put` of each in turn: ``block`` waits until there is room for all
        (the consumer wakes the reader only then, not for every event it takes);
        ``drop_oldest`` discards the oldest events that no longer fit.
        """
        count = len(frames)
        self.delivered += count
        buffer = self._buffer
        if self._overflow != "drop_oldest":
            while not buffer.has_room(count):
                await buffer.wait_for_room(count)
        buffer.extend(frames, count)

    def _accept(self, raw: SSEEvent, event_id: str) -> Any:
        """Decode one frame and track its id; the event to deliver, or ``_SKIP``.

        Any exception from decoding (a :class:`ProtocolError`, a ``RecursionError`` from
        JSON nested too deeply ...) marks the frame malformed: logged, counted, skipped.
        """
        cursor = self._cursor
        if event_id:
            if cursor.seen(event_id):
                return _SKIP
            cursor.remember(event_id)  # delivered or skipped below: the stream moved past it
        try:
            if self._ordinary is not None and self._ordinary(raw):
                event: Any = raw  # decoded by the consumer (__anext__)
            else:
                event = self._decode(raw)
        except Exception as exc:
            self.malformed += 1
            log.warning(
                "skipping malformed event (id %r) on %s: %s",
                event_id[:100],
                self._path,
                _describe(exc),
            )
            return _SKIP
        if event is raw:  # ordinary: not skipped, inside the sequence
            if not event_id:
                cursor.since_id += 1
            return event
        if self._skip is not None and self._skip(event):
            return _SKIP
        if not event_id and (self._outside is None or not self._outside(event)):
            cursor.since_id += 1
        return event

    def _offer(self, item: Any) -> bool:
        """Queue ``item`` without waiting; ``False`` when it must wait for room.

        ``drop_oldest`` makes room by discarding the oldest events (counted in
        :attr:`dropped`); terminal items are never dropped and never drop others.
        """
        buffer = self._buffer
        if not buffer.has_room() and (
            self._overflow != "drop_oldest" or item is _END or type(item) is _Failure
        ):
            return False
        buffer.push(item)
        return True

    async def _put(self, item: Any) -> None:
        """Queue ``item``, waiting while the queue is full (backpressure)."""
        while not self._offer(item):
            await self._buffer.wait_for_room(1)
        if item is _END or type(item) is _Failure:
            self._terminal = True  # the reader's last word: _reader_done adds nothing


def _describe(exc: BaseException) -> str:
    """An exception as one short log or message line."""
    text = (str(exc) or type(exc).__name__)[:300]
    return text if isinstance(exc, AiolensError) else f"{type(exc).__name__}: {text}"
