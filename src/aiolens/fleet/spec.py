"""What a feed is (:class:`LensFeed`) and what the fleet reports about it.

A feed is one long-running source of events that some worker of the fleet keeps
streaming into Redis. Specs are tagged msgspec structs (``kind``), so other kinds
(Kynasmith detection sessions) can join the :data:`FeedSpec` union later without
changing how feeds are queued, claimed, checkpointed or fenced.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import msgspec

from aiolens.archetype.events import LensEvent, UnknownEvent, decode_event
from aiolens.errors import AiolensError, ConfigurationError

__all__ = [
    "DEFAULT_RESULTS_MAXLEN",
    "FeedExistsError",
    "FeedNotFoundError",
    "FeedResult",
    "FeedSpec",
    "FeedStatus",
    "FleetError",
    "InputStream",
    "LensFeed",
    "decode_spec",
    "encode_spec",
]

DEFAULT_RESULTS_MAXLEN: Final = 100_000
"""Entries a feed's results stream keeps by default (``XADD MAXLEN ~``)."""

_FEED_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")

Status = Literal["pending", "running", "cancelling", "ended", "cancelled", "failed"]
TERMINAL: Final = frozenset({"ended", "cancelled", "failed"})


class FleetError(AiolensError):
    """A fleet operation failed (Redis state not as expected)."""


class FeedExistsError(FleetError):
    """``submit`` with a ``feed_id`` that is already in the fleet and not finished."""


class FeedNotFoundError(FleetError):
    """No feed with that ``feed_id``."""


class InputStream(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The input a worker binds once it made the session (``input_stream.set``).

    Attributes:
        stream_type: e.g. ``csv_file_reader``, ``video_file_reader``.
        stream_config: e.g. ``{"file_id": ..., "window_size": 100}``.
    """

    stream_type: str
    stream_config: dict[str, Any] = msgspec.field(default_factory=dict)


class LensFeed(msgspec.Struct, frozen=True, tag_field="kind", tag="lens"):
    """A Lens session whose SSE events the fleet writes, exactly once, to Redis.

    Give ``lens_id`` (an existing lens) or ``lens_config`` (the worker that starts
    the feed registers it, and deletes it when the feed is over).

    Attributes:
        feed_id: the feed's name: 1-200 of ``A-Z a-z 0-9 . _ : -``.
        lens_id: the lens to run.
        lens_config: a lens configuration to register instead.
        input_stream: the input to bind; ``None`` when the lens config names
            its own ``input_streams``.
        output_stream: the SSE writer to bind (``server_sent_events_writer``).
        results_maxlen: entries the results stream keeps, about (``MAXLEN ~``):
            older entries are trimmed, so a reader must stay within this many.
        options: free-form settings kept with the spec (labels, owner ...).
    """

    feed_id: str
    lens_id: str | None = None
    lens_config: dict[str, Any] | None = None
    input_stream: InputStream | None = None
    output_stream: str = "server_sent_events_writer"
    results_maxlen: int = DEFAULT_RESULTS_MAXLEN
    options: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _FEED_ID.match(self.feed_id):
            raise ConfigurationError(
                f"feed_id {self.feed_id!r}: use 1-200 of the characters A-Z a-z 0-9 . _ : -"
            )
        if (self.lens_id is None) == (self.lens_config is None):
            raise ConfigurationError(
                f"feed {self.feed_id}: give exactly one of lens_id and lens_config"
            )
        if self.results_maxlen < 1:
            raise ConfigurationError(f"feed {self.feed_id}: results_maxlen must be at least 1")


FeedSpec = LensFeed
"""Every kind of feed (a tagged union on ``kind`` once there is more than one)."""

_spec_decoder: Final = msgspec.json.Decoder(FeedSpec)
_encoder: Final = msgspec.json.Encoder()


def decode_spec(data: str | bytes) -> FeedSpec:
    """A feed spec from JSON.

    Raises:
        ConfigurationError: not a valid spec (the message says which field).
    """
    try:
        return _spec_decoder.decode(data)
    except msgspec.ValidationError as exc:  # __post_init__'s errors arrive wrapped
        raise ConfigurationError(f"invalid feed spec: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigurationError(f"feed spec is not valid JSON: {exc}") from None


def encode_spec(spec: FeedSpec) -> bytes:
    """The spec as JSON (``kind`` included)."""
    return _encoder.encode(spec)


class FeedStatus(msgspec.Struct, frozen=True):
    """What Redis says about one feed (``Fleet.status``).

    Attributes:
        feed_id: the feed.
        status: ``pending`` (queued, not started), ``running``, ``cancelling``,
            ``ended`` (its stream ended), ``cancelled``, ``failed``.
        owner: the worker running it; ``""`` when none.
        epoch: the fencing epoch: how many times a worker took the feed.
        session_id: its Lens session, once made.
        last_event_id: the id of the last event written to its results.
        delivered: events written to its results.
        error: why it failed, when it did.
    """

    feed_id: str
    status: str
    owner: str = ""
    epoch: int = 0
    session_id: str = ""
    last_event_id: str = ""
    delivered: int = 0
    error: str = ""

    @property
    def finished(self) -> bool:
        """Whether the feed is over (ended, cancelled or failed)."""
        return self.status in TERMINAL


class FeedResult(msgspec.Struct, frozen=True, gc=False):
    """One entry of a feed's results stream.

    Attributes:
        feed_id: the feed.
        entry_id: the Redis stream entry id (pass it as ``after`` to continue).
        event_id: the SSE id of the event (unique per feed).
        type: the event's ``type``.
        epoch: the fencing epoch of the worker that wrote it.
        data: the event's JSON text, as the Lens service sent it.
    """

    feed_id: str
    entry_id: str
    event_id: str
    type: str
    epoch: int
    data: str

    def event(self) -> LensEvent | UnknownEvent:
        """The typed event."""
        return decode_event(self.data)
