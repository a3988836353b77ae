"""The reply correlator: FIFO per type, records to ``session.status``, errors to the oldest.

No reply may ever reach a request it cannot belong to.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from aiolens._core.correlator import Correlator, reply_request_type


class Waiter:
    """A stand-in for a future; compared by identity, like the correlator does."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Waiter({self.name!r})"


def reply(request_type: str, **fields: Any) -> dict[str, Any]:
    return {"type": f"{request_type}.response", "event_data": None, **fields}


RECORD = {"session_id": "lsn-1", "session_status": "SESSION_STATUS_RUNNING"}
ERROR = {"type": "error", "message": "Unknown session id: lsn-1"}


@pytest.fixture
def c() -> Correlator[Waiter]:
    return Correlator()


# ---- classification ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "model.query.response"}, "model.query"),
        ({"type": "session.status.response"}, "session.status"),
        ({"type": "session.heartbeat.response", "event_data": None}, "session.heartbeat"),
        ({"type": ".response"}, ""),
        (RECORD, "session.status"),
        ({}, "session.status"),
        ({"status": "SESSION_STATUS_RUNNING", "uptime_seconds": 3.5}, "session.status"),
        (ERROR, None),
        ({"type": "error"}, None),
        ({"type": "inference.result"}, None),
        ({"type": "session.status"}, None),
        ({"type": "x.Response"}, None),
        ({"type": None}, None),
        ({"type": 3}, None),
        ({"type": ["a.response"]}, None),
    ],
)
def test_reply_request_type(message: dict[str, Any], expected: str | None) -> None:
    assert reply_request_type(message) == expected


def test_reply_request_type_of_a_non_mapping_is_none() -> None:
    assert reply_request_type(["a.response"]) is None  # type: ignore[arg-type]


# ---- routing -----------------------------------------------------------------------------


def test_replies_go_to_the_oldest_request_of_their_type(c: Correlator[Waiter]) -> None:
    g1, g2, g3 = Waiter("g1"), Waiter("g2"), Waiter("g3")
    for w in (g1, g2, g3):
        c.add("session.get", w)
    assert c.route(reply("session.get")) == (g1, "session.get")
    assert c.route(reply("session.get")) == (g2, "session.get")
    assert c.route(reply("session.get")) == (g3, "session.get")
    assert c.route(reply("session.get")) is None
    assert len(c) == 0


def test_interleaved_types_are_matched_per_type(c: Correlator[Waiter]) -> None:
    g1, v1, g2, q1 = Waiter("g1"), Waiter("v1"), Waiter("g2"), Waiter("q1")
    c.add("session.get", g1)
    c.add("session.validate", v1)
    c.add("session.get", g2)
    c.add("model.query", q1)
    assert c.route(reply("model.query")) == (q1, "model.query")
    assert c.route(reply("session.validate")) == (v1, "session.validate")
    assert c.route(reply("session.get")) == (g1, "session.get")
    assert c.route(reply("session.get")) == (g2, "session.get")
    assert len(c) == 0


def test_query_timeout_reply_goes_to_the_model_query(c: Correlator[Waiter]) -> None:
    q = Waiter("q")
    c.add("model.query", q)
    timed_out = {"type": "model.query.response", "message": "Response timed out for query"}
    assert c.route(timed_out) == (q, "model.query")


def test_session_record_goes_to_the_oldest_status_request(c: Correlator[Waiter]) -> None:
    g, s1, s2 = Waiter("g"), Waiter("s1"), Waiter("s2")
    c.add("session.get", g)
    c.add("session.status", s1)
    c.add("session.status", s2)
    assert c.route(RECORD) == (s1, "session.status")
    assert c.route({"status": "SESSION_STATUS_RUNNING", "session_id": "lsn-1"}) == (
        s2,
        "session.status",
    )
    assert c.route(RECORD) is None
    assert c.pending_types() == ["session.get"]


def test_error_goes_to_the_oldest_request_of_any_type(c: Correlator[Waiter]) -> None:
    b, a1, a2 = Waiter("b"), Waiter("a1"), Waiter("a2")
    c.add("b", b)
    c.add("a", a1)
    c.add("a", a2)
    assert c.route(ERROR) == (b, "b")
    assert c.route(ERROR) == (a1, "a")
    assert c.route(reply("a")) == (a2, "a")
    assert c.route(ERROR) is None


def test_error_skips_requests_already_answered(c: Correlator[Waiter]) -> None:
    a, b, s = Waiter("a"), Waiter("b"), Waiter("s")
    c.add("a", a)
    c.add("b", b)
    c.add("session.status", s)
    assert c.route(reply("a")) == (a, "a")
    assert c.route(RECORD) == (s, "session.status")
    assert c.route(ERROR) == (b, "b")


def test_after_an_error_the_type_queue_moves_on(c: Correlator[Waiter]) -> None:
    a1, a2 = Waiter("a1"), Waiter("a2")
    c.add("a", a1)
    c.add("a", a2)
    assert c.route(ERROR) == (a1, "a")
    assert c.route(reply("a")) == (a2, "a")


@pytest.mark.parametrize(
    "message",
    [
        reply("session.read"),
        {"type": "inference.result", "event_data": {}},
        {"type": "session.get"},
        {"type": 3},
        {"type": None},
        RECORD,
    ],
)
def test_unmatched_replies_return_none_and_change_nothing(
    c: Correlator[Waiter], message: dict[str, Any]
) -> None:
    g = Waiter("g")
    c.add("session.get", g)
    assert c.route(message) is None
    assert len(c) == 1
    assert c.route(reply("session.get")) == (g, "session.get")


def test_route_on_an_empty_correlator(c: Correlator[Waiter]) -> None:
    for message in (reply("a"), RECORD, ERROR, {"type": "x"}):
        assert c.route(message) is None


def test_route_of_a_non_mapping_is_none(c: Correlator[Waiter]) -> None:
    c.add("a", Waiter("a"))
    assert c.route(["a.response"]) is None  # type: ignore[arg-type]
    assert len(c) == 1


# ---- discard -----------------------------------------------------------------------------


def test_discard_head_so_the_next_reply_goes_to_the_next_request(c: Correlator[Waiter]) -> None:
    a1, a2 = Waiter("a1"), Waiter("a2")
    c.add("a", a1)
    c.add("a", a2)
    assert c.discard(a1) is True
    assert len(c) == 1
    assert c.route(reply("a")) == (a2, "a")


def test_discard_middle_keeps_order_of_the_rest(c: Correlator[Waiter]) -> None:
    a1, a2, a3, b1 = Waiter("a1"), Waiter("a2"), Waiter("a3"), Waiter("b1")
    for w in (a1, a2, a3):
        c.add("a", w)
    c.add("b", b1)
    assert c.discard(a2) is True
    assert c.discard(a2) is False
    assert c.route(reply("a")) == (a1, "a")
    assert c.route(reply("a")) == (a3, "a")
    assert c.route(reply("a")) is None
    assert c.route(reply("b")) == (b1, "b")


def test_error_skips_discarded_requests(c: Correlator[Waiter]) -> None:
    a, b = Waiter("a"), Waiter("b")
    c.add("a", a)
    c.add("b", b)
    c.discard(a)
    assert c.route(ERROR) == (b, "b")


def test_discard_of_unknown_or_answered_waiter_is_false(c: Correlator[Waiter]) -> None:
    a = Waiter("a")
    assert c.discard(a) is False
    c.add("a", a)
    c.route(reply("a"))
    assert c.discard(a) is False


def test_discard_compares_waiters_by_identity(c: Correlator[list[int]]) -> None:
    first, second = [1], [1]  # equal but distinct, and unhashable
    c.add("a", first)
    c.add("a", second)
    assert c.discard(second) is True
    result = c.route(reply("a"))
    assert result is not None and result[0] is first


def test_a_waiter_added_twice_takes_two_replies(c: Correlator[Waiter]) -> None:
    w, other = Waiter("w"), Waiter("other")
    c.add("a", w)
    c.add("b", other)
    c.add("b", w)
    assert len(c) == 3
    assert c.discard(w) is True  # the oldest registration: the "a" one
    assert c.pending_types() == ["b", "b"]
    assert c.route(reply("b")) == (other, "b")
    assert c.route(reply("b")) == (w, "b")
    assert c.discard(w) is False


# ---- drain and bookkeeping ---------------------------------------------------------------


def test_drain_returns_every_pending_waiter_oldest_first(c: Correlator[Waiter]) -> None:
    ws = [Waiter(str(i)) for i in range(6)]
    for i, w in enumerate(ws):
        c.add("ab"[i % 2], w)
    c.route(reply("b"))  # ws[1]
    c.discard(ws[2])
    assert c.drain() == [ws[0], ws[3], ws[4], ws[5]]
    assert len(c) == 0
    assert c.drain() == []
    for message in (reply("a"), reply("b"), ERROR):
        assert c.route(message) is None
    assert c.discard(ws[0]) is False


def test_correlator_is_usable_after_drain(c: Correlator[Waiter]) -> None:
    old, new = Waiter("old"), Waiter("new")
    c.add("a", old)
    c.drain()
    c.add("a", new)
    assert c.route(reply("a")) == (new, "a")


def test_pending_types_and_len(c: Correlator[Waiter]) -> None:
    assert len(c) == 0 and c.pending_types() == []
    c.add("a", Waiter("1"))
    c.add("session.status", Waiter("2"))
    c.add("a", Waiter("3"))
    assert len(c) == 3
    assert c.pending_types() == ["a", "session.status", "a"]
    assert "pending=3" in repr(c)


def test_storage_stays_bounded_when_the_oldest_request_is_never_answered(
    c: Correlator[Waiter],
) -> None:
    stuck = Waiter("stuck")
    c.add("model.query", stuck)
    for i in range(10_000):
        w = Waiter(str(i))
        c.add("session.get", w)
        if i % 3 == 0:
            cancelled = Waiter(f"cancelled {i}")
            c.add("session.status", cancelled)
            assert c.discard(cancelled)
        assert c.route(reply("session.get")) == (w, "session.get")
    assert len(c) == 1
    assert c._slots < 200  # dead entries were compacted away
    assert len(c._order) < 200
    assert c.route(ERROR) == (stuck, "model.query")


# ---- against a naive model ---------------------------------------------------------------

TYPES = ["a", "b", "session.status"]


def model_route(model: list[tuple[Waiter, str]], kind: str) -> tuple[Waiter, str] | None:
    """The rules, spelled out over a list of (waiter, type) in send order."""
    for waiter, request_type in model:
        if kind == "error" or request_type == kind:
            return waiter, request_type
    return None


def message_for(kind: str) -> dict[str, Any]:
    if kind == "session.status":
        return dict(RECORD)
    if kind == "error":
        return dict(ERROR)
    if kind == "unknown":
        return {"type": "inference.result"}
    return reply(kind)


class CorrelatorMachine(RuleBasedStateMachine):
    """Random add / route / discard / drain sequences, checked against a list model."""

    def __init__(self) -> None:
        super().__init__()
        self.correlator: Correlator[Waiter] = Correlator()
        self.model: list[tuple[Waiter, str]] = []
        self.pool: list[Waiter] = []

    @rule(request_type=st.sampled_from(TYPES))
    def add_new(self, request_type: str) -> None:
        waiter = Waiter(str(len(self.pool)))
        self.pool.append(waiter)
        self.correlator.add(request_type, waiter)
        self.model.append((waiter, request_type))

    @precondition(lambda self: bool(self.pool))
    @rule(request_type=st.sampled_from(TYPES), index=st.integers(0, 1000))
    def add_again(self, request_type: str, index: int) -> None:
        waiter = self.pool[index % len(self.pool)]
        self.correlator.add(request_type, waiter)
        self.model.append((waiter, request_type))

    @rule(kind=st.sampled_from([*TYPES, "error", "unknown", "c"]))
    def route(self, kind: str) -> None:
        expected = model_route(self.model, kind) if kind != "unknown" else None
        assert self.correlator.route(message_for(kind)) == expected
        if expected is not None:
            self.model.remove(expected)

    @precondition(lambda self: bool(self.pool))
    @rule(index=st.integers(0, 1000))
    def discard(self, index: int) -> None:
        waiter = self.pool[index % len(self.pool)]
        position = next((i for i, (w, _) in enumerate(self.model) if w is waiter), None)
        assert self.correlator.discard(waiter) is (position is not None)
        if position is not None:
            del self.model[position]

    @rule()
    def drain(self) -> None:
        assert self.correlator.drain() == [w for w, _ in self.model]
        self.model.clear()

    @invariant()
    def same_pending(self) -> None:
        assert len(self.correlator) == len(self.model)
        assert self.correlator.pending_types() == [t for _, t in self.model]


CorrelatorMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=60, deadline=None
)
TestCorrelatorMachine = CorrelatorMachine.TestCase


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(TYPES)),
        st.tuples(st.just("route"), st.sampled_from([*TYPES, "error"])),
        st.tuples(st.just("discard"), st.sampled_from(TYPES)),
    ),
    min_size=100,
    max_size=600,
)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_long_sequences_match_the_model_through_compactions(ops: list[tuple[str, str]]) -> None:
    """Long runs, with a request that never gets a reply, force the queues to be rebuilt."""
    c: Correlator[Waiter] = Correlator()
    stuck = Waiter("stuck")
    c.add("never", stuck)
    model: list[tuple[Waiter, str]] = [(stuck, "never")]
    for n, (op, kind) in enumerate(ops):
        if op == "add":
            waiter = Waiter(str(n))
            c.add(kind, waiter)
            model.append((waiter, kind))
        elif op == "route":
            if kind == "error":
                kind = "b"  # errors would answer the stuck request; route by type instead
            expected = model_route(model, kind)
            assert c.route(message_for(kind)) == expected
            if expected is not None:
                model.remove(expected)
        else:  # discard the newest request of that type
            newest = next((w for w, t in reversed(model) if t == kind), None)
            if newest is not None:
                assert c.discard(newest)
                model = [(w, t) for w, t in model if w is not newest]
        assert len(c) == len(model)
    assert c.pending_types() == [t for _, t in model]
    assert c.drain() == [w for w, _ in model]


def test_a_classifier_gives_every_reply_to_the_oldest_request() -> None:
    # The agents serving socket: replies carry no type; each answers the oldest query.
    c: Correlator[Waiter] = Correlator(lambda message: "query")
    first, second = Waiter("a"), Waiter("b")
    c.add("query", first)
    c.add("query", second)
    assert c.route({"status": "completed", "response": 1}) == (first, "query")
    assert c.route({"status": "failed"}) == (second, "query")
    assert c.route({"status": "completed"}) is None
