"""The SSE resume cursor, without sockets: repeats, id ordering, resumability."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from aiolens._core.resume import RECENT_IDS, ResumeCursor


def test_numeric_ids_at_or_below_the_highest_are_repeats() -> None:
    cursor = ResumeCursor()
    assert not cursor.seen("5")
    cursor.remember("5")
    assert cursor.seen("5") and cursor.seen("4") and cursor.seen("005")
    assert not cursor.seen("6") and not cursor.seen("10")
    assert cursor.last_event_id == "5"


def test_ids_beyond_ints_digit_limit_are_ordered_without_int() -> None:
    big = "9" * 5000
    cursor = ResumeCursor()
    cursor.remember(big)
    assert cursor.seen(big) and cursor.seen("0" * 10_000 + big) and cursor.seen("8" + "9" * 4999)
    assert not cursor.seen("1" + "0" * 5000)


@given(st.integers(0, 10**30), st.integers(0, 10**30), st.integers(0, 5))
def test_decimal_comparison_matches_int_comparison(last: int, other: int, zeros: int) -> None:
    cursor = ResumeCursor()
    cursor.remember(str(last))
    assert cursor.seen("0" * zeros + str(other)) == (other <= last)


def test_other_ids_are_repeats_while_among_the_recent_ones() -> None:
    cursor = ResumeCursor()
    cursor.remember("a")
    assert cursor.seen("a") and not cursor.seen("b")
    for i in range(RECENT_IDS):
        cursor.remember(f"n{i}")
    assert not cursor.seen("a")  # forgotten: the memory is bounded
    assert cursor.seen(f"n{RECENT_IDS - 1}")
    assert len(cursor._named) <= RECENT_IDS


def test_events_without_ids_make_a_resume_unsafe_until_an_id_comes() -> None:
    cursor = ResumeCursor()
    assert cursor.resumable
    cursor.since_id += 1
    assert not cursor.resumable
    cursor.advance("7")  # a frame with only an id
    assert cursor.resumable and cursor.last_event_id == "7"
    cursor.advance("6")  # already passed: nothing moves
    cursor.advance("")
    assert cursor.last_event_id == "7"


@given(st.lists(st.one_of(st.integers(0, 30).map(str), st.sampled_from(["a", "b", "c"]))))
def test_seen_matches_a_plain_model_of_delivered_ids(ids: list[str]) -> None:
    # The model: a numeric id is seen when some numeric id delivered is at least as high;
    # a name is seen when it was delivered (few names: all are recent).
    cursor = ResumeCursor()
    numbers: list[int] = []
    names: set[str] = set()
    for event_id in ids:
        expected = (
            any(n >= int(event_id) for n in numbers) if event_id.isdigit() else event_id in names
        )
        assert cursor.seen(event_id) == expected
        cursor.advance(event_id)
        if expected:
            continue
        if event_id.isdigit():
            numbers.append(int(event_id))
        else:
            names.add(event_id)
        assert cursor.last_event_id == event_id


@given(
    st.lists(st.one_of(st.integers(0, 40).map(str), st.sampled_from(["a", "007", ""]))),
    st.lists(st.one_of(st.integers(0, 40).map(str), st.sampled_from(["a", "09", "", "1" * 30]))),
)
def test_a_run_taken_at_once_leaves_the_cursor_as_one_by_one(
    before: list[str], run: list[str]
) -> None:
    def one_by_one(cursor: ResumeCursor, ids: list[str]) -> bool:
        fresh = all(i and not cursor.seen(i) for i in ids)
        for event_id in ids:
            cursor.advance(event_id)
        return fresh

    fast, slow = ResumeCursor(), ResumeCursor()
    one_by_one(fast, before)
    one_by_one(slow, before)
    fast.since_id = slow.since_id = 1
    taken = fast.fresh_run(run)
    if taken:
        fast.remember_run(run)
    all_fresh = one_by_one(slow, run)
    if taken:
        assert all_fresh
        assert (fast.last_event_id, fast.since_id, fast._last_digits, fast._named._clock) == (
            slow.last_event_id,
            slow.since_id,
            slow._last_digits,
            slow._named._clock,
        )
        assert all(fast.seen(i) == slow.seen(i) for i in [*before, *run, "41", "b"])
    else:
        assert fast.since_id == 1


@given(
    st.lists(st.integers(0, 120).map(str), max_size=3),
    st.integers(0, 99),
    st.lists(st.one_of(st.integers(0, 3), st.sampled_from(["dup", "zero", "comma", "x"]))),
)
def test_a_run_of_ids_of_one_length_is_taken_as_one_by_one(
    before: list[str], first: int, steps: list[int | str]
) -> None:
    # The usual run (ids of one length, each above the one before) is checked without
    # int(); near misses (a repeat, a leading zero, a comma, a letter) must not pass.
    run, number = [], first
    for step in steps:
        if isinstance(step, int):
            number += step + 1
            run.append(f"{number:03d}" if step == 3 else str(number))
        else:
            run.append(
                {
                    "dup": run[-1] if run else "5",
                    "zero": "0" + str(number)[1:] if len(str(number)) > 1 else "0",
                    "comma": "1,2",
                    "x": "1x",
                }[step]
            )
    fast, slow = ResumeCursor(), ResumeCursor()
    for event_id in before:
        fast.advance(event_id)
        slow.advance(event_id)
    taken = fast.fresh_run(run)
    fresh = all(i and not slow.seen(i) for i in run)
    for event_id in run:
        slow.advance(event_id)
    numbers = [int(i) for i in run if i.isdigit()]
    in_order = len(numbers) == len(run) and all(a < b for a, b in itertools.pairwise(numbers))
    if taken:
        assert fresh and in_order
        fast.remember_run(run)
        assert (fast.last_event_id, fast._last_digits) == (slow.last_event_id, slow._last_digits)
    elif run and in_order and fresh and len({len(i) for i in run}) == 1 and len(run[0]) <= 18:
        raise AssertionError(f"a usual run was refused: {run}")
