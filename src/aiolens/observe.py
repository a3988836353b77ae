"""Observability: connection-state events, request samples and raw HTTP responses.

Give a client an :class:`Observer` (``AsyncArchetypeClient(observer=...)``) and it
hears, synchronously and in the task that did the work:

* :meth:`Observer.connection_changed` — each realtime channel (a session's WebSocket,
  its SSE stream, a detection socket) going ``connecting`` → ``open`` →
  ``reconnecting`` → ``open`` … → ``closed`` or ``gave_up``, with the cause;
* :meth:`Observer.request_finished` — every REST call (all its retries together) and
  every realtime request, with its latency, outcome and, for REST, the response's
  status, headers and request id.

Counters that change per event (events delivered, dropped, malformed, queue depth)
are read when wanted rather than pushed per event: see ``session.stats()``.
:mod:`aiolens.otel` turns all of it into OpenTelemetry spans and metrics.

:func:`capture_responses` records the raw responses of the REST calls made inside
it, in this task (and the tasks it starts), as openai-python's
``with_raw_response`` does for one call::

    with capture_responses() as responses:
        lens = await client.lenses.get(lens_id)
    print(responses[-1].status, responses[-1].request_id, responses[-1].headers)

An observer must not block and should not raise: an exception it raises is
logged (``aiolens.observe``) and otherwise ignored, so observing never changes
what the client does.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from aiolens._core.redact import get_logger

__all__ = [
    "ConnectionEvent",
    "ConnectionState",
    "Observer",
    "RawResponse",
    "RequestSample",
    "capture_responses",
]

log: logging.Logger = get_logger("observe")


class ConnectionState(enum.StrEnum):
    """Where a realtime channel is in its life."""

    CONNECTING = "connecting"
    """The first connection attempt is under way."""
    OPEN = "open"
    """Connected (first time or after a reconnect)."""
    RECONNECTING = "reconnecting"
    """The connection was lost; an attempt follows after ``delay`` seconds."""
    CLOSED = "closed"
    """Ended on purpose (``aclose()``), or by the server with a final close."""
    GAVE_UP = "gave_up"
    """Reconnects ran out; ``cause`` is the last failure."""


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """One change of a realtime channel's state.

    Attributes:
        channel: which channel, as its logs name it (``"session lsn-… websocket"``).
        state: the new state.
        attempt: the reconnect attempt this event belongs to (1 for the first
            retry), 0 outside reconnects.
        delay: with ``reconnecting``, the seconds before that attempt.
        cause: what ended the previous state (the lost connection, the refusal).
    """

    channel: str
    state: ConnectionState
    attempt: int = 0
    delay: float | None = None
    cause: BaseException | None = None


@dataclass(frozen=True, slots=True)
class RawResponse:
    """What came back for one REST call (its last attempt).

    Attributes:
        method: ``"GET"``, ``"POST"`` ….
        url: the URL called (no credentials: they travel in headers).
        status: the HTTP status.
        headers: the response headers (case-insensitive mapping).
        request_id: the ``X-Request-ID`` header, if any.
        elapsed: seconds from the first attempt to the answer.
        attempts: how many attempts the call took (1 without retries).
    """

    method: str
    url: str
    status: int
    headers: Mapping[str, str] = field(repr=False)
    request_id: str | None
    elapsed: float
    attempts: int


@dataclass(frozen=True, slots=True)
class RequestSample:
    """One finished request.

    Attributes:
        transport: ``"http"`` for REST, ``"websocket"`` for a realtime request.
        name: ``"GET /lens/metadata"``, or the event type (``"session.status"``).
        duration: seconds, retries and their waits included.
        error: the exception the caller got, or ``None``.
        response: for REST, the last answer (absent when none came).
    """

    transport: Literal["http", "websocket"]
    name: str
    duration: float
    error: BaseException | None = None
    response: RawResponse | None = None


class Observer:
    """Hooks for monitoring; subclass it and override what you need (each is a no-op)."""

    def connection_changed(self, event: ConnectionEvent) -> None:
        """A realtime channel changed state."""

    def request_finished(self, sample: RequestSample) -> None:
        """A REST call or a realtime request finished (answered, failed or cancelled)."""


def notify_connection(observer: Observer | None, event: ConnectionEvent) -> None:
    """Tell ``observer`` about ``event``; its exceptions are logged, never raised."""
    if observer is not None:
        try:
            observer.connection_changed(event)
        except Exception:
            log.exception("observer %r failed on %s", observer, event.state)


def notify_request(observer: Observer | None, sample: RequestSample) -> None:
    """Tell ``observer`` about ``sample`` and record its response for :func:`capture_responses`."""
    captured = _captured.get()
    if captured is not None and sample.response is not None:
        captured.append(sample.response)
    if observer is not None:
        try:
            observer.request_finished(sample)
        except Exception:
            log.exception("observer %r failed on %s", observer, sample.name)


_captured: contextvars.ContextVar[list[RawResponse] | None] = contextvars.ContextVar(
    "aiolens_captured_responses", default=None
)


@contextlib.contextmanager
def capture_responses() -> Iterator[list[RawResponse]]:
    """Collect the :class:`RawResponse` of every REST call made inside the block.

    Calls made by this task, and by tasks it creates inside the block, are
    recorded in the order they finish; calls that got no answer (connection
    errors) are not. Nested blocks each see the calls made inside them.
    Error answers are recorded too; the exception still propagates.
    """
    outer = _captured.get()
    responses: list[RawResponse] = _Tee(outer) if outer is not None else []
    token = _captured.set(responses)
    try:
        yield responses
    finally:
        _captured.reset(token)


class _Tee(list[RawResponse]):
    """A list that also appends to the enclosing block's list."""

    def __init__(self, outer: list[RawResponse]) -> None:
        super().__init__()
        self._outer = outer

    def append(self, item: RawResponse) -> None:
        super().append(item)
        self._outer.append(item)
