"""The supporting types that appear in aiolens's public signatures.

Import them from here to annotate your own code (``backoff: Backoff``,
``stream: EventStream[LensEvent]``) without reaching into private modules.
The models of each API are in :mod:`aiolens.archetype.models` and
:mod:`aiolens.kynasmith.models`; the exceptions in :mod:`aiolens.errors`.
"""

from aiolens._core.backoff import Backoff
from aiolens._core.model import Model
from aiolens._core.redact import SecretStr
from aiolens._core.timeouts import Timeout, Timeouts
from aiolens._transport.http import RateLimit
from aiolens._transport.sse import EventStream, Overflow

__all__ = [
    "Backoff",
    "EventStream",
    "Model",
    "Overflow",
    "RateLimit",
    "SecretStr",
    "Timeout",
    "Timeouts",
]
