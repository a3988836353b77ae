"""The event side of a lens session: its SSE consumers and its mailbox.

:meth:`LensEventStreams.events` and :meth:`LensEventStreams.raw_events` open
the session's Server-Sent-Events stream (an
:class:`~aiolens._transport.sse.EventStream`, resumed with ``Last-Event-ID``);
:meth:`LensEventStreams.mailbox` polls ``session.read`` for lenses without an
SSE writer. The decode helpers at the bottom tell the stream what an event is,
which ones end it and which stand outside its sequence.

:class:`LensEventStreams` is a base of :class:`~aiolens.archetype.session.LensSession`,
which closes the streams it opened when it closes; it is not made on its own.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

import msgspec

from aiolens._core.options import check_bool, check_seconds
from aiolens._core.sse import DEFAULT_MAX_EVENT_BYTES, SSEEvent
from aiolens._transport.sse import EventStream, Overflow
from aiolens.archetype.events import (
    LensEvent,
    RawEvent,
    SSEStreamEnd,
    SSEStreamHeartbeat,
    SSEStreamStart,
    StreamEnd,
    UnknownEvent,
    all_ordinary,
    decode_event,
    decode_frame,
    decode_known,
)
from aiolens.archetype.session_requests import LensRequests
from aiolens.errors import ProtocolError

if TYPE_CHECKING:
    from aiolens.archetype.session_host import LensSessionHost

__all__ = ["LensEventStreams"]

T = TypeVar("T")

_OUTSIDE_SEQUENCE: Final = frozenset({SSEStreamStart, SSEStreamHeartbeat})
_CONNECTION_EVENTS: Final = frozenset(
    cls.__struct_config__.tag for cls in (SSEStreamStart, SSEStreamHeartbeat, SSEStreamEnd)
)


class _Tag(msgspec.Struct, gc=False):
    type: str


_tag_decoder: Final = msgspec.json.Decoder(_Tag)


class LensEventStreams(LensRequests):
    """A lens session's event streams (SSE) and mailbox, on top of its requests.

    Streams it opens are kept in ``_streams``: requests that start the lens
    producing connect them first, and the session closes them when it closes.
    """

    client: LensSessionHost

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
        # Decoded events are of these exact classes: their type is their kind.
        heartbeat = None if include_heartbeats else SSEStreamHeartbeat
        return self._open_stream(
            decode=_decode_sse,
            is_end=_is_sse_end,
            skip=_SkipRepeatedStarts(type, SSEStreamStart, heartbeat),
            outside_sequence=_outside_sequence,
            ordinary=_ordinary_sse,
            ordinary_run=all_ordinary,
            decode_text=decode_known,
            queue_size=queue_size,
            overflow=overflow,
            liveness_timeout=liveness_timeout,
            max_reconnects=max_reconnects,
            last_event_id=last_event_id,
            max_event_bytes=max_event_bytes,
        )

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
        return self._open_stream(
            decode=_raw_sse,
            is_end=_is_raw_end,
            skip=_SkipRepeatedStarts(_raw_type, _START, _HEARTBEAT),
            outside_sequence=_raw_outside_sequence,
            queue_size=queue_size,
            liveness_timeout=liveness_timeout,
            max_reconnects=max_reconnects,
            last_event_id=last_event_id,
            max_event_bytes=max_event_bytes,
        )

    def _open_stream(
        self, *, decode: Callable[[SSEEvent], T], is_end: Callable[[T], bool], **options: Any
    ) -> EventStream[T]:
        """The session's SSE consumer (its path, the client's transport and backoff),
        decoded by ``decode``, with ``options`` (:class:`EventStream`'s), kept in
        ``_streams`` so the session closes it."""
        stream = EventStream(
            self.client.transport,
            f"/lens/sessions/consumer/{self.session_id}",
            decode=decode,
            is_end=is_end,
            backoff=self.client.transport.backoff,
            **options,
        )
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


_decode_sse = decode_frame


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
_raw_type: Final = operator.attrgetter("type")


class _SkipRepeatedStarts(Generic[T]):
    """A stream's ``skip``: of the stream starts (one per connection) the first is
    yielded and the ones after reconnects skipped; events of kind ``heartbeat`` are
    skipped (``None``: none are).

    An object rather than a closure: one tracked object per stream, not a function
    and a cell per variable.
    """

    __slots__ = ("heartbeat", "kind", "start", "started")

    def __init__(self, kind: Callable[[T], object], start: object, heartbeat: object) -> None:
        self.kind = kind
        self.start = start
        self.heartbeat = heartbeat
        self.started = False

    def __call__(self, event: T) -> bool:
        found = self.kind(event)
        if found == self.start:
            seen, self.started = self.started, True
            return seen
        return found == self.heartbeat


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
