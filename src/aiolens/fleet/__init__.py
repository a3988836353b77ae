"""Sessions shared by a fleet of workers through Redis Streams (extra: ``aiolens[fleet]``).

See ``docs/fleet.md``. :class:`Fleet` submits feeds and reads results;
:class:`FleetWorker` runs them; ``aiolens fleet`` is the command line.
"""

from aiolens._extras import require_extra

require_extra("fleet", "the fleet", "redis")

from aiolens.fleet.client import Fleet  # noqa: E402
from aiolens.fleet.spec import (  # noqa: E402
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
from aiolens.fleet.worker import FleetWorker  # noqa: E402

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
