"""``Timeouts``: the limits of one HTTP attempt, phase by phase, in aiolens's own terms.

A ``timeout=`` option takes seconds (a limit on the whole attempt) or a
:class:`Timeouts`; the transport turns either into what its HTTP library needs,
so no third-party type appears in aiolens's public signatures.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiolens._core.options import check_optional_seconds
from aiolens.errors import ConfigurationError

__all__ = ["Timeout", "Timeouts"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed for the phases of one HTTP attempt; ``None``: no limit on that one.

    ::

        client = AsyncArchetypeClient(timeout=Timeouts(total=120, connect=5, read=30))

    Attributes:
        total: the whole attempt: connecting, sending and reading the whole answer.
        connect: getting a connection (waiting for a free one in the pool included).
        read: the longest wait for the next bytes of the answer; a transfer that keeps
            making progress is never cut short by it.

    A ``Retry-After`` longer than ``total`` is not waited for (the error is raised
    at once). Cancel: a cancelled call stops at once, whatever the limits.

    Raises:
        ConfigurationError: a limit that is not a finite number of seconds > 0 or
            ``None`` (it names the field), or neither ``total`` nor ``read`` given
            (nothing would bound the wait for the answer).
    """

    total: float | None = None
    connect: float | None = None
    read: float | None = None

    def __post_init__(self) -> None:
        for name in ("total", "connect", "read"):
            seconds = check_optional_seconds(f"Timeouts.{name}", getattr(self, name))
            object.__setattr__(self, name, seconds)
        if self.total is None and self.read is None:
            raise ConfigurationError(
                "Timeouts needs total= or read= (or both): nothing else bounds the answer"
            )


Timeout = float | Timeouts
"""A ``timeout=`` value: seconds for a whole attempt (a finite number > 0), or a
:class:`Timeouts` with a limit per phase."""
