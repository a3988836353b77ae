"""The pure reply correlator: FIFO per type, errors to the oldest, no misrouting."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aiolens._core.correlator import Correlator, reply_request_type


def test_fifo_per_type_and_interleaving() -> None:
    c: Correlator[str] = Correlator()
    c.add("session.get", "g1")
    c.add("session.validate", "v1")
    c.add("session.get", "g2")
    assert c.route({"type": "session.validate.response"}) == ("v1", "session.validate")
    assert c.route({"type": "session.get.response"}) == ("g1", "session.get")
    assert c.route({"type": "session.get.response"}) == ("g2", "session.get")
    assert len(c) == 0


def test_status_record_goes_to_oldest_status() -> None:
    c: Correlator[str] = Correlator()
    c.add("session.get", "g")
    c.add("session.status", "s1")
    c.add("session.status", "s2")
    assert c.route({"session_id": "lsn-1", "session_status": "X"}) == ("s1", "session.status")


def test_error_goes_to_oldest_overall() -> None:
    c: Correlator[str] = Correlator()
    c.add("b", "first")
    c.add("a", "second")
    assert c.route({"type": "error", "message": "x"}) == ("first", "b")
    assert c.route({"type": "error", "message": "x"}) == ("second", "a")
    assert c.route({"type": "error"}) is None


def test_unmatched_replies_return_none() -> None:
    c: Correlator[str] = Correlator()
    c.add("session.get", "g")
    assert c.route({"type": "session.read.response"}) is None
    assert c.route({"type": "something.else"}) is None
    assert c.route({"type": 3}) is None
    assert c.route({"session_id": "x"}) is None
    assert len(c) == 1


def test_discard_and_drain() -> None:
    c: Correlator[str] = Correlator()
    for name in ("a1", "a2", "a3"):
        c.add("a", name)
    c.add("b", "b1")
    assert c.discard("a2") and not c.discard("a2")
    assert c.route({"type": "a.response"}) == ("a1", "a")
    assert c.route({"type": "a.response"}) == ("a3", "a")
    c.add("a", "a4")
    assert c.drain() == ["b1", "a4"]
    assert len(c) == 0 and c.route({"type": "error"}) is None


def test_reply_request_type() -> None:
    assert reply_request_type({"type": "model.query.response"}) == "model.query"
    assert reply_request_type({"session_id": "x"}) == "session.status"
    assert reply_request_type({"type": "error"}) == ""
    assert reply_request_type({"type": "weird"}) is None


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(["a", "b", "session.status"])),
        st.tuples(st.just("reply"), st.sampled_from(["a", "b", "session.status", "error", "x"])),
        st.tuples(st.just("discard"), st.integers(min_value=0, max_value=30)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_matches_a_naive_model(ops: list[tuple[str, object]]) -> None:
    c: Correlator[int] = Correlator()
    model: list[tuple[int, str]] = []  # (waiter, type), in send order
    next_id = 0
    for op, arg in ops:
        if op == "add":
            assert isinstance(arg, str)
            c.add(arg, next_id)
            model.append((next_id, arg))
            next_id += 1
        elif op == "discard":
            assert isinstance(arg, int)
            present = any(w == arg for w, _ in model)
            assert c.discard(arg) == present
            model = [(w, t) for w, t in model if w != arg]
        else:
            if arg == "session.status":
                message: dict[str, object] = {"session_id": "s"}
            elif arg == "error":
                message = {"type": "error"}
            else:
                message = {"type": f"{arg}.response"}
            expected = next(((w, t) for w, t in model if arg == "error" or t == arg), None)
            assert c.route(message) == expected
            if expected is not None:
                model.remove(expected)
        assert len(c) == len(model)
    assert c.drain() == [w for w, _ in model]
