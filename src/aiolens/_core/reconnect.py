"""When to reconnect a realtime connection, and when to give up (pure, no I/O).

The WebSocket channel and the SSE consumer both drive a :class:`ReconnectPolicy`: they tell it
when a connection opened, whether it did anything useful, and when it ended; it answers with
the delay before the next attempt, or ``None`` to give up.

The rule that matters: **a connection that ends before it was useful is a failed attempt**,
like one that never opened. A server that accepts every handshake and closes at once (1001,
1006, 1011 ...) therefore meets a growing backoff and, after ``max_attempts`` such failures in
a row, the end of the road, instead of a reconnect storm. A connection is useful once it
delivered something (a message, an event) or stayed open ``useful_after`` seconds; the next
loss then starts a new outage with a fresh count.
"""

from __future__ import annotations

import enum

from aiolens._core.backoff import Backoff

__all__ = ["ConnectionState", "ReconnectPolicy"]


class ConnectionState(enum.Enum):
    """Where a :class:`ReconnectPolicy` stands."""

    WAITING = "waiting"
    """No connection: before the first one, or between attempts."""
    OPEN = "open"
    """A connection is open."""
    FAILED = "failed"
    """Given up: no more attempts."""


class ReconnectPolicy:
    """Counts failed attempts across connections and turns them into delays.

    Args:
        backoff: the delay schedule; the n-th consecutive failure waits
            ``backoff.delay(n - 1)``.
        max_attempts: consecutive failures allowed; the next one gives up.
            0 means never reconnect.
        useful_after: seconds after which an open connection counts as useful even if it
            delivered nothing (an idle but healthy connection).

    Attributes:
        failures: consecutive failed attempts in the current outage.
        state: see :class:`ConnectionState`.
    """

    __slots__ = ("_backoff", "_max_attempts", "_opened_at", "_useful_after", "failures", "state")

    def __init__(self, backoff: Backoff, *, max_attempts: int, useful_after: float) -> None:
        """Start in :attr:`ConnectionState.WAITING` with no failures."""
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._useful_after = useful_after
        self._opened_at = 0.0
        self.failures = 0
        self.state = ConnectionState.WAITING

    def opened(self, now: float) -> None:
        """A connection opened at monotonic time ``now`` (nothing useful yet)."""
        if self.state is not ConnectionState.FAILED:
            self.state = ConnectionState.OPEN
            self._opened_at = now

    def ended(
        self,
        now: float,
        *,
        useful: bool = False,
        retry_after: float | None = None,
        at_least: float | None = None,
    ) -> float | None:
        """The connection (or the attempt to open one) ended at ``now``; try again?

        Args:
            now: monotonic time.
            useful: the connection delivered something (ignored if it never opened).
            retry_after: the server's ``Retry-After``, which replaces the backoff delay
                (capped by ``backoff.max_retry_after``).
            at_least: a floor for the backoff delay (an SSE stream's ``retry:``), capped
                like ``retry_after``.

        Returns:
            Seconds to wait before the next attempt, or ``None``: give up (the state is
            then :attr:`ConnectionState.FAILED`).
        """
        if self.state is ConnectionState.FAILED:
            return None
        if self.state is ConnectionState.OPEN and (
            useful or now - self._opened_at >= self._useful_after
        ):
            self.failures = 0  # a new outage
        self.failures += 1
        if self.failures > self._max_attempts:
            self.state = ConnectionState.FAILED
            return None
        self.state = ConnectionState.WAITING
        backoff = self._backoff
        delay = backoff.delay(self.failures - 1, retry_after)
        if retry_after is None and at_least is not None:
            delay = min(max(delay, at_least), backoff.max_retry_after)
        return delay

    def fail(self) -> None:
        """Give up now (an unrecoverable close or refusal)."""
        self.state = ConnectionState.FAILED
