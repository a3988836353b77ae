"""Retry delays: capped exponential backoff with jitter, honouring ``Retry-After``."""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import time
from dataclasses import dataclass

from aiolens._core.options import check_seconds
from aiolens.errors import ConfigurationError

__all__ = ["Backoff", "parse_retry_after"]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` (or ``RateLimit-Reset``) value.

    Accepts delta-seconds (``"2"``, ``"1.5"``) and HTTP dates in all three
    forms of RFC 9110 (``"Wed, 21 Oct 2026 07:28:00 GMT"``, RFC 850, asctime).
    Returns ``None`` for a missing or unparseable value; a date in the past
    gives ``0.0``. Absurdly long waits are not capped here but by
    :attr:`Backoff.max_retry_after`.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN → None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # asctime form, which has no zone: HTTP dates are GMT
        parsed = parsed.replace(tzinfo=datetime.UTC)
    current = time.time() if now is None else now
    return max(0.0, parsed.timestamp() - current)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay schedule for retries.

    The n-th retry (0-based) waits ``min(maximum, initial * multiplier**n)``
    scaled by a random factor in ``[1 - jitter, 1]``. A server's
    ``Retry-After`` wins when it is given and not longer than
    ``max_retry_after``; a longer one is capped to it.
    """

    initial: float = 0.5
    maximum: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.25
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        check_seconds("Backoff.initial", self.initial, allow_zero=True)
        check_seconds("Backoff.maximum", self.maximum, allow_zero=True)
        if not (isinstance(self.multiplier, int | float) and 1 <= self.multiplier < math.inf):
            raise ConfigurationError(
                f"Backoff.multiplier must be a finite number >= 1, not {self.multiplier!r}"
            )
        if not (isinstance(self.jitter, int | float) and 0 <= self.jitter <= 1):
            raise ConfigurationError(f"Backoff.jitter must be between 0 and 1, not {self.jitter!r}")
        check_seconds("Backoff.max_retry_after", self.max_retry_after, allow_zero=True)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before retry number ``attempt`` (0 for the first retry)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        base = min(self.maximum, self.initial * self.multiplier ** max(0, attempt))
        return base * (1.0 - self.jitter * random.random())
