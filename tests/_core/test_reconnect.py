"""The reconnect policy, without sockets: storms meet backoff, useful connections reset it."""

from __future__ import annotations

import itertools

from aiolens._core.backoff import Backoff
from aiolens._core.reconnect import ConnectionState, ReconnectPolicy

NO_JITTER = Backoff(initial=1.0, maximum=8.0, jitter=0.0, max_retry_after=30.0)


def policy(max_attempts: int = 3) -> ReconnectPolicy:
    return ReconnectPolicy(NO_JITTER, max_attempts=max_attempts, useful_after=10.0)


def test_connections_that_close_at_once_are_failed_attempts() -> None:
    p = policy()
    delays = []
    now = 0.0
    for _ in range(4):  # accept, close at once: the storm
        p.opened(now)
        delays.append(p.ended(now + 0.01))
        now += 1
    assert delays == [1.0, 2.0, 4.0, None]
    assert p.state is ConnectionState.FAILED
    p.opened(now)  # nothing revives it
    assert p.ended(now) is None and p.state is ConnectionState.FAILED


def test_a_useful_connection_starts_a_new_outage() -> None:
    p = policy()
    p.opened(0)
    assert p.ended(0) == 1.0
    assert p.ended(1) == 2.0  # the attempt itself failed
    p.opened(2)
    assert p.ended(2.5, useful=True) == 1.0  # it delivered: fresh count
    p.opened(5)
    assert p.ended(15.0) == 1.0  # idle but open long enough: useful too
    assert p.failures == 1


def test_retry_after_replaces_the_backoff_and_at_least_raises_it() -> None:
    p = policy()
    assert p.ended(0, retry_after=7.0) == 7.0
    assert p.ended(0, retry_after=99.0) == 30.0  # capped
    assert p.ended(0, at_least=3.0) == 4.0  # backoff 4 s is already longer


def test_no_attempts_means_no_reconnect_and_fail_is_final() -> None:
    p = policy(max_attempts=0)
    p.opened(0)
    assert p.ended(100, useful=True) is None
    q = policy()
    q.fail()
    assert q.ended(0) is None


STEPS = ["open", "close-at-once", "close-useful", "close-idle-long", "attempt-fails"]


def test_every_sequence_of_five_steps_keeps_the_rules() -> None:
    # Exhaustive over 5**5 sequences: the count never passes the limit, the delay grows
    # within an outage, a useful connection starts a new one, and giving up is final.
    for steps in itertools.product(STEPS, repeat=5):
        p = policy(max_attempts=3)
        now, last_delay, failed = 0.0, 0.0, False
        for step in steps:
            now += 1
            if step == "open":
                p.opened(now)
                continue
            was_open = p.state is ConnectionState.OPEN
            if step == "close-useful":
                delay = p.ended(now, useful=True)
            elif step == "close-idle-long":
                delay = p.ended(now + 60)
            else:
                delay = p.ended(now)
            if failed:
                assert delay is None
                continue
            fresh = was_open and step in ("close-useful", "close-idle-long")
            if delay is None:
                assert p.state is ConnectionState.FAILED and not fresh
                failed = True
                continue
            assert 1 <= p.failures <= 3
            if fresh:
                assert (p.failures, delay) == (1, 1.0)
            else:
                assert delay >= last_delay
            last_delay = delay
