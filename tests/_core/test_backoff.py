from __future__ import annotations

from aiolens._core.backoff import Backoff, parse_retry_after


def test_parse_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now=now) == 10.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0


def test_backoff_is_capped_and_jittered() -> None:
    b = Backoff(initial=1.0, maximum=4.0, jitter=0.5)
    for attempt in range(10):
        d = b.delay(attempt)
        assert 0.5 * min(4.0, 2.0**attempt) <= d <= min(4.0, 2.0**attempt)


def test_retry_after_wins_but_is_capped() -> None:
    b = Backoff(max_retry_after=10)
    assert b.delay(0, 3.0) == 3.0
    assert b.delay(5, 120.0) == 10.0


def test_parse_retry_after_obsolete_date_forms() -> None:
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
    assert parse_retry_after("Tue Nov 14 22:13:30 2023", now=now) == 10.0  # asctime: no zone
    assert parse_retry_after("Tuesday, 14-Nov-23 22:13:30 GMT", now=now) == 10.0  # RFC 850


def test_absurd_retry_after_is_capped() -> None:
    b = Backoff(max_retry_after=30)
    for value in ("1e400", "inf", "99999999", "Fri, 31 Dec 9999 23:59:59 GMT"):
        assert b.delay(0, parse_retry_after(value)) == 30
