"""Sessions shared by a fleet of workers through Redis Streams (extra: ``aiolens[fleet]``).

See ``docs/fleet.md``. :class:`Fleet` submits feeds and reads results;
:class:`FleetWorker` runs them; ``aiolens fleet`` is the command line.
"""

from aiolens.fleet.client import Fleet
from aiolens.fleet.spec import (
    DEFAULT_RESULTS_MAXLEN,
    FeedExistsError,
    FeedNotFoundError,
    FeedResult,
    FeedSpec,
    FeedStatus,
    FleetError,
    InputStream,
    LensFeed,
    decode_spec,
    encode_spec,
)
from aiolens.fleet.worker import FleetWorker

__all__ = [
    "DEFAULT_RESULTS_MAXLEN",
    "FeedExistsError",
    "FeedNotFoundError",
    "FeedResult",
    "FeedSpec",
    "FeedStatus",
    "Fleet",
    "FleetError",
    "FleetWorker",
    "InputStream",
    "LensFeed",
    "decode_spec",
    "encode_spec",
]
