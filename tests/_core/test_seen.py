"""The bounded seen-key window, without sockets: a model check and the memory bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolens._core.seen import SeenWindow

# An entry is a key (add) or None (tick: a step that keeps no key).
_ENTRIES = st.lists(st.one_of(st.none(), st.sampled_from("abcdefgh")), max_size=200)


@given(st.integers(1, 6), _ENTRIES)
def test_a_key_is_seen_while_among_the_last_capacity_entries(
    capacity: int, entries: list[str | None]
) -> None:
    window: SeenWindow[str] = SeenWindow(capacity)
    history: list[str | None] = []
    for entry in entries:
        for key in "abcdefgh":
            assert (key in window) == (key in history[-capacity:])
        if entry is None:
            window.tick()
        else:
            window.add(entry)
        history.append(entry)
        assert len(window) <= capacity


@given(st.integers(1, 6), st.lists(st.sampled_from("abcdefgh"), max_size=200))
def test_seen_answers_and_records_like_a_set_with_oldest_evicted(
    capacity: int, keys: list[str]
) -> None:
    # The model: the keys recorded (each only when it was not seen), oldest forgotten first.
    window: SeenWindow[str] = SeenWindow(capacity)
    recorded: list[str] = []
    for key in keys:
        expected = key in recorded[-capacity:]
        assert window.seen(key) is expected
        if not expected:
            recorded.append(key)
        assert key in window


def test_the_oldest_key_is_forgotten_first() -> None:
    window: SeenWindow[int] = SeenWindow(3)
    assert not any(window.seen(k) for k in (1, 2, 3))
    assert window.seen(1)  # still there: seen() does not record it again
    assert not window.seen(4)  # 1 falls out
    assert not window.seen(1)
    assert window.seen(3) and window.seen(4)
    assert len(window) == 3


@pytest.mark.parametrize("capacity", [0, -1, 1.5, True, "3"])
def test_a_bad_capacity_is_refused(capacity: object) -> None:
    with pytest.raises(ValueError, match="capacity"):
        SeenWindow(capacity)  # type: ignore[arg-type]
