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
  If the server cannot resume (it answers 4xx to the resume request), or the
  stream carries no ids after events were delivered, the consumer gets a
  :class:`~aiolens.errors.StreamResumeError`: events are never silently lost.
* **Malformed frames** are logged at WARNING, counted in
  :attr:`EventStream.malformed`, and skipped; the stream goes on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from typing import Any, Final, Generic, Literal, TypeVar

import aiohttp

from aiolens._core.backoff import Backoff
from aiolens._core.redact import get_logger
from aiolens._core.sse import SSEEvent, SSEParser
from aiolens._transport.http import HTTPTransport
from aiolens.errors import (
    AiolensError,
    APIConnectionError,
    APIStatusError,
    ProtocolError,
    StreamResumeError,
)

__all__ = ["EventStream", "Overflow"]

T = TypeVar("T")
log = get_logger("sse")

Overflow = Literal["block", "drop_oldest"]

_END: Final = object()
_RECENT_IDS: Final = 4096


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
        queue_size: bound of the queue between reader and consumer.
        overflow: ``"block"`` or ``"drop_oldest"``.
        liveness_timeout: seconds without any bytes (heartbeats included)
            after which the connection is considered dead and resumed.
        max_reconnects: consecutive failed reconnects before giving up.
        backoff: delays between reconnects.

    Cancelling the consumer does not stop the reader; :meth:`aclose` does
    (and releases the connection). Leaving an ``async with`` block closes it.
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
        queue_size: int = 1024,
        overflow: Overflow = "block",
        liveness_timeout: float = 30.0,
        max_reconnects: int = 5,
        backoff: Backoff | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._http = http
        self._path = path
        self._decode = decode
        self._is_end = is_end
        self._skip = skip
        self._outside = outside_sequence
        self._opened = False
        self._since_id = 0  # sequence events delivered without an id since the last id
        self._queue: asyncio.Queue[Any] = asyncio.Queue(queue_size)
        self._overflow = overflow
        self._liveness = liveness_timeout
        self._max_reconnects = max_reconnects
        self._backoff = backoff or Backoff(initial=0.2, maximum=5.0)
        self._reader: asyncio.Task[None] | None = None
        self._finished = False
        self._recent: collections.deque[str] = collections.deque(maxlen=_RECENT_IDS)
        self._recent_set: set[str] = set()
        self._last_number: int | None = None
        self.last_event_id: str = ""
        """The id of the last event delivered (the resume cursor)."""
        self.dropped = 0
        """Events discarded by the ``drop_oldest`` policy."""
        self.malformed = 0
        """Frames skipped because they could not be decoded."""
        self.reconnects = 0
        """Successful resumes so far."""
        self.delivered = 0
        """Events put on the queue so far."""

    def start(self) -> None:
        """Start the reader task (iteration starts it too)."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._run(), name=f"aiolens-sse {self._path}")

    def __aiter__(self) -> EventStream[T]:
        self.start()
        return self

    async def __anext__(self) -> T:
        if self._finished:
            raise StopAsyncIteration
        self.start()
        item = await self._queue.get()
        if item is _END:
            self._finished = True
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            self._finished = True
            raise item.error
        result: T = item
        return result

    async def __aenter__(self) -> EventStream[T]:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the reader and release the connection. Idempotent; shielded from cancel."""
        self._finished = True
        reader = self._reader
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(reader)

    # ---- reader task --------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        first = True
        try:
            while True:
                if not first and self._since_id:
                    raise StreamResumeError(
                        f"The event stream dropped after {self._since_id} event(s) without "
                        "ids; it cannot be resumed without losing or repeating events"
                    )
                resuming = not first and bool(self.last_event_id)
                first = False
                before = self.delivered
                try:
                    ended = await self._read_once()
                except StreamResumeError:
                    raise
                except APIStatusError as exc:
                    if resuming and 400 <= exc.status < 500 and exc.status not in (401, 429):
                        raise StreamResumeError(
                            f"The server cannot resume after event {self.last_event_id!r}: "
                            f"HTTP {exc.status} {exc.message}"
                        ) from exc
                    raise
                except (APIConnectionError, aiohttp.ClientError, TimeoutError) as exc:
                    failures = 1 if self.delivered > before else failures + 1
                    if failures > self._max_reconnects:
                        raise APIConnectionError(
                            f"Event stream {self._path} lost and not resumed after "
                            f"{self._max_reconnects} attempts: {exc}"
                        ) from exc
                    delay = self._backoff.delay(failures - 1)
                    log.info(
                        "event stream %s dropped (%s); resuming after id %r in %.2fs",
                        self._path,
                        type(exc).__name__,
                        self.last_event_id,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                if ended:
                    await self._put(_END)
                    return
                # EOF before the end event: the server went away; resume.
                failures = 1 if self.delivered > before else failures + 1
                if failures > self._max_reconnects:
                    raise APIConnectionError(
                        f"Event stream {self._path} kept closing before its end event"
                    )
                await asyncio.sleep(self._backoff.delay(failures - 1))
        except asyncio.CancelledError:
            raise
        except (AiolensError, aiohttp.ClientError, OSError) as exc:
            await self._put(_Failure(exc))

    async def _read_once(self) -> bool:
        """Read one connection until EOF; ``True`` when the end event arrived."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=self._liveness)
        parser = SSEParser()
        previous_id = ""
        async with self._http.stream(
            "GET", self._path, headers=headers, timeout=timeout, max_retries=0
        ) as resp:
            if self._opened:
                self.reconnects += 1
            self._opened = True
            async for chunk in resp.content.iter_any():
                for raw in parser.feed(chunk):
                    # The last-event-ID persists across frames (WHATWG): only a
                    # frame that changed it carries an id of its own.
                    own_id = raw.id if raw.id != previous_id else ""
                    previous_id = raw.id
                    if await self._handle(raw, own_id):
                        return True
        parser.close()
        return False

    async def _handle(self, raw: SSEEvent, event_id: str) -> bool:
        if event_id and self._seen(event_id):
            return False
        try:
            event = self._decode(raw)
        except ProtocolError as exc:
            self.malformed += 1
            log.warning("skipping malformed event (id %r) on %s: %s", event_id, self._path, exc)
            self._remember(event_id)
            return False
        self._remember(event_id)
        if self._skip is not None and self._skip(event):
            return False
        if event_id:
            self._since_id = 0
        elif self._outside is None or not self._outside(event):
            self._since_id += 1
        self.delivered += 1
        await self._put(event)
        return self._is_end(event)

    def _seen(self, event_id: str) -> bool:
        if event_id in self._recent_set:
            return True
        if self._last_number is not None and event_id.isdigit():
            return int(event_id) <= self._last_number
        return False

    def _remember(self, event_id: str) -> None:
        if not event_id:
            return
        self.last_event_id = event_id
        if event_id.isdigit():
            self._last_number = int(event_id)
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(event_id)
        self._recent_set.add(event_id)

    async def _put(self, item: Any) -> None:
        terminal = item is _END or isinstance(item, _Failure)
        if self._overflow == "drop_oldest" and not terminal:
            while self._queue.full():
                self._queue.get_nowait()
                self.dropped += 1
            self._queue.put_nowait(item)
        else:
            await self._queue.put(item)  # terminal items are never dropped
