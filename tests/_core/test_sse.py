"""The event-stream parser against the WHATWG rules, at every chunk boundary, and fuzzed.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aiolens._core.sse import SSEEvent, SSEParser

BOM = b"\xef\xbb\xbf"

Outcome = tuple[list[SSEEvent], str, str, int | None]


# ---- a straightforward reference implementation of the spec --------------------------------


def reference(stream: bytes) -> Outcome:
    """Parse a whole stream the way the spec text reads, with no attention to speed.

    Returns the dispatched events, the last-event-ID buffer, the event source's last event
    ID string (set from the buffer at every blank line) and the retry value.
    """
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    # end-of-line = ( cr lf / cr / lf ); what follows the last line end is not a line.
    lines = re.split("\r\n|\r|\n", text)[:-1]
    events: list[SSEEvent] = []
    data = ""
    event_type = ""
    last_id = ""
    dispatched_id = ""
    retry: int | None = None
    for line in lines:
        if line == "":
            dispatched_id = last_id
            if data == "":
                event_type = ""
                continue
            if data.endswith("\n"):
                data = data[:-1]
            events.append(SSEEvent(data, event_type or "message", last_id))
            data = ""
            event_type = ""
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            field, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            field, value = line, ""
        if field == "event":
            event_type = value
        elif field == "data":
            data += value + "\n"
        elif field == "id":
            if "\x00" not in value:
                last_id = value
        elif field == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events, last_id, dispatched_id, retry


def parse(chunks: Iterable[bytes | bytearray]) -> Outcome:
    """Feed ``chunks`` to a fresh parser, then close it."""
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    parser.close()
    return events, parser.last_event_id, parser.dispatched_id, parser.retry


def split_at(stream: bytes, cuts: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def events_of(stream: bytes) -> list[SSEEvent]:
    return parse([stream])[0]


# ---- spec cases --------------------------------------------------------------------------


def test_protocol_example_stream() -> None:
    stream = (
        b"event: message\n"
        b'data: {"type": "sse.stream.start", "event_data": {"session_id": "lsn-1"}}\n'
        b"\n"
        b"event: message\n"
        b"id: 7\n"
        b'data: {"type": "sse.stream.end"}\n'
        b"\n"
    )
    assert events_of(stream) == [
        SSEEvent('{"type": "sse.stream.start", "event_data": {"session_id": "lsn-1"}}'),
        SSEEvent('{"type": "sse.stream.end"}', "message", "7"),
    ]


def test_event_defaults() -> None:
    event = SSEEvent("x")
    assert (event.data, event.event, event.id) == ("x", "message", "")


def test_leading_bom_is_stripped() -> None:
    assert events_of(BOM + b"data: a\n\n") == [SSEEvent("a")]


def test_bom_split_across_chunks_is_stripped() -> None:
    assert parse([b"\xef", b"\xbb", b"\xbfdata: a\n\n"])[0] == [SSEEvent("a")]
    assert parse([b"\xef\xbb", b"\xbf", b"data: a\n\n"])[0] == [SSEEvent("a")]


def test_only_the_first_bom_is_stripped() -> None:
    # The second BOM starts the first line, so that line is the unknown field "\ufeffdata".
    assert events_of(BOM + BOM + b"data: a\n\ndata: b\n\n") == [SSEEvent("b")]


def test_bom_after_the_start_is_not_stripped() -> None:
    assert events_of(b"\n" + BOM + b"data: a\n\n") == []


def test_partial_bom_is_decoded_as_invalid_bytes() -> None:
    assert events_of(b"\xef\xbbdata: a\n\ndata: b\n\n") == [SSEEvent("b")]
    assert parse([b"\xef", b"\n", b"data: a\n\n"])[0] == [SSEEvent("a")]


def test_stream_shorter_than_a_bom() -> None:
    assert parse([b"\xef\xbb"]) == ([], "", "", None)
    assert parse([b"\n"]) == ([], "", "", None)


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_each_line_terminator(eol: bytes) -> None:
    stream = b"id: 1" + eol + b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert events_of(stream) == [SSEEvent("a\nb", "message", "1"), SSEEvent("c", "message", "1")]


def test_mixed_line_terminators() -> None:
    assert events_of(b"data: a\r\ndata: b\rdata: c\n\r\n") == [SSEEvent("a\nb\nc")]


def test_cr_at_chunk_end_and_lf_at_next_chunk_start_are_one_line_end() -> None:
    # Were the LF a second line end, the blank line would dispatch "a" on its own.
    assert parse([b"data: a\r", b"\ndata: b\r\n\r\n"])[0] == [SSEEvent("a\nb")]
    assert parse([b"data: a\r", b"\n", b"data: b\n\n"])[0] == [SSEEvent("a\nb")]
    assert parse([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])[0] == [SSEEvent("a\nb")]


def test_cr_pending_survives_an_empty_chunk() -> None:
    assert parse([b"data: a\r", b"", b"\ndata: b\n\n"])[0] == [SSEEvent("a\nb")]


def test_cr_cr_is_two_line_ends() -> None:
    assert parse([b"data: a\r", b"\rdata: b\n\n"])[0] == [SSEEvent("a"), SSEEvent("b")]
    assert events_of(b"data: a\r\r") == [SSEEvent("a")]


def test_lf_cr_is_two_line_ends() -> None:
    assert events_of(b"data: a\n\rdata: b\n\n") == [SSEEvent("a"), SSEEvent("b")]


def test_other_unicode_line_breaks_are_not_line_ends() -> None:
    value = "a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i"
    assert events_of(b"data: " + value.encode() + b"\n\n") == [SSEEvent(value)]


def test_multi_line_data_is_joined_with_lf() -> None:
    assert events_of(b"data: one\ndata: two\ndata:three\n\n") == [SSEEvent("one\ntwo\nthree")]


def test_comments_are_ignored() -> None:
    stream = b": hello\ndata: a\n:\n:data: b\n\n: bye\n\n"
    assert events_of(stream) == [SSEEvent("a")]


def test_comment_only_block_dispatches_nothing() -> None:
    assert events_of(b": keepalive\n\n") == []


def test_field_without_colon_has_empty_value() -> None:
    assert events_of(b"data\n\n") == [SSEEvent("")]
    assert events_of(b"data\ndata\n\n") == [SSEEvent("\n")]
    assert events_of(b"event\ndata: a\n\n") == [SSEEvent("a", "message")]


def test_only_one_leading_space_is_removed() -> None:
    assert events_of(b"data:a\n\n") == [SSEEvent("a")]
    assert events_of(b"data:  a\n\n") == [SSEEvent(" a")]
    assert events_of(b"data:\ta\n\n") == [SSEEvent("\ta")]
    assert events_of(b"data: a \n\n") == [SSEEvent("a ")]
    assert events_of(b"event:  x\ndata: a\n\n") == [SSEEvent("a", " x")]


def test_value_is_split_at_the_first_colon_only() -> None:
    assert events_of(b"data: a: b:c\n\n") == [SSEEvent("a: b:c")]


def test_field_names_are_case_sensitive() -> None:
    assert events_of(b"Data: a\nDATA: b\n\n") == []


def test_data_with_empty_value_dispatches_an_empty_event() -> None:
    assert events_of(b"data:\n\n") == [SSEEvent("")]
    assert events_of(b"data: \n\n") == [SSEEvent("")]


def test_block_without_data_is_not_dispatched_and_resets_the_event_type() -> None:
    assert events_of(b"event: foo\n\ndata: a\n\n") == [SSEEvent("a", "message")]


def test_event_type_is_set_and_reset_after_dispatch() -> None:
    stream = b"event: add\ndata: a\n\ndata: b\n\nevent:remove\ndata: c\n\n"
    assert events_of(stream) == [SSEEvent("a", "add"), SSEEvent("b"), SSEEvent("c", "remove")]


def test_empty_event_type_means_message() -> None:
    assert events_of(b"event: \ndata: a\n\n") == [SSEEvent("a", "message")]


def test_last_event_type_wins() -> None:
    assert events_of(b"event: a\nevent: b\ndata: x\n\n") == [SSEEvent("x", "b")]


def test_id_persists_across_events_and_resets_when_empty() -> None:
    stream = b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 2\ndata: d\n\nid: \ndata: e\n\n"
    assert [e.id for e in events_of(stream)] == ["1", "1", "", "2", ""]


def test_id_containing_null_is_ignored() -> None:
    stream = b"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\nid:\x003\ndata: c\n\n"
    events, last_id, _, _ = parse([stream])
    assert [e.id for e in events] == ["1", "1", "1"]
    assert last_id == "1"


def test_id_without_data_updates_the_last_event_id() -> None:
    parser = SSEParser()
    assert parser.feed(b"id: 41\n\n") == []
    assert parser.last_event_id == "41"
    assert parser.feed(b"data: a\n\n") == [SSEEvent("a", "message", "41")]


def test_last_event_id_is_updated_when_the_id_line_completes() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\nid: 9\n") == []
    assert parser.last_event_id == "9"
    assert parser.dispatched_id == ""  # the frame is not finished
    assert parser.feed(b"\n") == [SSEEvent("a", "message", "9")]
    assert parser.dispatched_id == "9"


def test_dispatched_id_follows_every_blank_line_with_or_without_data() -> None:
    parser = SSEParser()
    parser.feed(b"id: 1\ndata: a\n\nid: 2\n\nid: 3\n")
    assert (parser.last_event_id, parser.dispatched_id) == ("3", "2")
    parser.feed(b": comment\n\n")
    assert parser.dispatched_id == "3"
    parser.close()  # an unfinished frame at EOF does not move it
    assert parser.dispatched_id == "3"


def test_id_value_is_not_trimmed() -> None:
    assert events_of(b"id:  7 \ndata: a\n\n") == [SSEEvent("a", "message", " 7 ")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"retry: 1500", 1500),
        (b"retry:0", 0),
        (b"retry: 007", 7),
        (b"retry: 12a", None),
        (b"retry: -1", None),
        (b"retry: 1.5", None),
        (b"retry: +5", None),
        (b"retry:  15", None),  # the second space is part of the value
        (b"retry: 15 ", None),
        (b"retry:", None),
        (b"retry", None),
        ("retry: ١٢".encode(), None),  # Arabic-Indic digits are not ASCII digits
        ("retry: ²".encode(), None),
        ("retry: １２".encode(), None),  # fullwidth digits
    ],
)
def test_retry_takes_only_ascii_digits(line: bytes, expected: int | None) -> None:
    parser = SSEParser()
    parser.feed(line + b"\n")
    assert parser.retry == expected


def test_retry_keeps_the_last_valid_value() -> None:
    parser = SSEParser()
    parser.feed(b"retry: 100\nretry: x\n")
    assert parser.retry == 100
    parser.feed(b"retry: 200\n")
    assert parser.retry == 200


def test_retry_does_not_dispatch() -> None:
    assert events_of(b"retry: 5\n\n") == []


def test_retry_with_too_many_digits_is_ignored_without_raising() -> None:
    parser = SSEParser()
    parser.feed(b"retry: 5\nretry: " + b"9" * 20_000 + b"\n")
    assert parser.retry == 5
    parser.feed(b"retry: " + b"0" * 20_000 + b"42\n")
    assert parser.retry == 42


def test_unknown_fields_are_ignored() -> None:
    assert events_of(b"foo: bar\ndata: a\nbaz\n\n") == [SSEEvent("a")]


def test_repeated_blank_lines_dispatch_once() -> None:
    assert events_of(b"data: a\n\n\n\n\ndata: b\n\n") == [SSEEvent("a"), SSEEvent("b")]


def test_null_in_data_is_kept() -> None:
    assert events_of(b"data: a\x00b\n\n") == [SSEEvent("a\x00b")]


def test_invalid_utf8_is_replaced() -> None:
    assert events_of(b"data: \xff\xfeok\n\n") == [SSEEvent("\ufffd\ufffdok")]
    assert events_of(b"data: a\xe2\x82\n\n") == [SSEEvent("a\ufffd")]
    assert events_of(b"event: \xc3\ndata: a\n\n") == [SSEEvent("a", "\ufffd")]


def test_invalid_utf8_in_field_name_makes_an_unknown_field() -> None:
    assert events_of(b"dat\xe1: a\ndata: b\n\n") == [SSEEvent("b")]


def test_multibyte_character_split_across_chunks() -> None:
    assert parse([b"data: \xe2", b"\x82", b"\xac\n\n"])[0] == [SSEEvent("€")]
    assert parse([b"data: \xf0\x9f", b"\x98\x80\n", b"\n"])[0] == [SSEEvent("😀")]


def test_feed_returns_only_the_events_the_chunk_completes() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"\ndata: b\n\ndata: c") == [SSEEvent("a"), SSEEvent("b")]
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\n") == [SSEEvent("c")]


def test_empty_chunks_are_harmless() -> None:
    assert parse([b"", b"data: a", b"", b"\n", b"", b"\n", b""])[0] == [SSEEvent("a")]


def test_bytearray_chunks_are_accepted() -> None:
    assert parse([bytearray(b"data: a\n"), bytearray(b"\n")])[0] == [SSEEvent("a")]


def test_partial_event_at_end_of_stream_is_dropped() -> None:
    assert parse([b"data: a\n"]) == ([], "", "", None)
    assert parse([b"data: a\n\ndata: b"]) == ([SSEEvent("a")], "", "", None)
    assert parse([b"data: a\n\ndata: b\n"]) == ([SSEEvent("a")], "", "", None)


def test_close_keeps_last_event_id_and_retry() -> None:
    parser = SSEParser()
    parser.feed(b"id: 3\nretry: 250\ndata: a\n\nid: 4\ndata: b\n")
    parser.close()
    assert (parser.last_event_id, parser.retry) == ("4", 250)


def test_close_is_idempotent_and_feed_after_close_raises() -> None:
    parser = SSEParser()
    parser.close()
    parser.close()
    with pytest.raises(RuntimeError, match="after close"):
        parser.feed(b"data: a\n\n")


def test_long_line_fed_in_small_pieces() -> None:
    value = "x" * 100_000
    stream = b"data: " + value.encode() + b"\n\n"
    chunks = [stream[i : i + 7] for i in range(0, len(stream), 7)]
    assert parse(chunks)[0] == [SSEEvent(value)]


def test_many_events_in_one_chunk() -> None:
    stream = b"".join(b'id: %d\ndata: {"n": %d}\n\n' % (i, i) for i in range(1000))
    events = events_of(stream)
    assert len(events) == 1000
    assert events[999] == SSEEvent('{"n": 999}', "message", "999")


def test_event_is_immutable() -> None:
    event = SSEEvent("a")
    with pytest.raises(AttributeError):
        event.data = "b"  # type: ignore[misc]
    assert hash(event) == hash(SSEEvent("a"))


# ---- every chunk boundary ----------------------------------------------------------------

STREAMS = [
    pytest.param(
        b'event: message\nid: 1\ndata: {"type": "inference.result", "event_data": {}}\n\n',
        id="typical",
    ),
    pytest.param(BOM + b"data: a\n\n", id="bom"),
    pytest.param(BOM + BOM + b"data: a\n\ndata: b\n\n", id="two-boms"),
    pytest.param(b"\xef\xbb\n" + b"data: a\n\n", id="partial-bom"),
    pytest.param(b"data: a\r\ndata: b\rdata: c\n\r\n\r\n\r", id="mixed-eol"),
    pytest.param(b"data: a\r\r\n\r\n\rdata:b\r\r", id="cr-runs"),
    pytest.param(b": c\ndata\nevent: x\nid: 5\nretry: 30\n\ndata:  y\n\n", id="fields"),
    pytest.param(b"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\nid\ndata: c\n\n", id="ids"),
    pytest.param(b"retry: 12a\nretry: 40\ndata: \xe2\x82\xac \xff \xf0\x9f\x98\x80\n\n", id="utf8"),
    pytest.param(b"event: foo\n\ndata: a\n\ndata: partial", id="partial-at-eof"),
]


@pytest.mark.parametrize("stream", STREAMS)
def test_every_single_split_gives_the_same_result(stream: bytes) -> None:
    whole = parse([stream])
    assert whole == reference(stream)
    for cut in range(len(stream) + 1):
        assert parse(split_at(stream, [cut])) == whole, cut


@pytest.mark.parametrize("stream", STREAMS)
def test_every_pair_of_splits_gives_the_same_result(stream: bytes) -> None:
    whole = parse([stream])
    for a in range(1, len(stream)):
        for b in range(a, len(stream)):
            assert parse(split_at(stream, [a, b])) == whole, (a, b)


@pytest.mark.parametrize("stream", STREAMS)
def test_byte_by_byte_gives_the_same_result(stream: bytes) -> None:
    assert parse(stream[i : i + 1] for i in range(len(stream))) == parse([stream])


# ---- fuzzing against the reference -------------------------------------------------------

TOKENS = [
    b"data",
    b"event",
    b"id",
    b"retry",
    b"dat",
    b"data: ",
    b"event: ",
    b"id: ",
    b"retry: ",
    b":",
    b" ",
    b"  ",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    BOM,
    b"\xef",
    b"\xef\xbb",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\xc2\x85",
    b"\xe2\x80\xa8",
    b"\x0b",
    b"12",
    b"0",
    b"7a",
    b"message",
    b"x",
    b"{}",
    "١".encode(),
]

sse_bytes = st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=4)), max_size=60).map(
    b"".join
)


@st.composite
def streams_with_cuts(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    stream = draw(st.one_of(sse_bytes, st.binary(max_size=200)))
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=12))
    return stream, cuts


@settings(max_examples=400, deadline=None)
@given(streams_with_cuts())
def test_fuzz_matches_reference_with_any_chunking(case: tuple[bytes, list[int]]) -> None:
    stream, cuts = case
    assert parse(split_at(stream, cuts)) == reference(stream)


@settings(max_examples=100, deadline=None)
@given(sse_bytes)
def test_fuzz_byte_by_byte_matches_reference(stream: bytes) -> None:
    assert parse(stream[i : i + 1] for i in range(len(stream))) == reference(stream)


@settings(max_examples=200, deadline=None)
@given(sse_bytes, st.data())
def test_fuzz_per_chunk_results_add_up(stream: bytes, data: st.DataObject) -> None:
    """Events are returned by the very chunk that completes them, never later."""
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    parser = SSEParser()
    fed = b""
    got: list[SSEEvent] = []
    for chunk in split_at(stream, cuts):
        fed += chunk
        got += parser.feed(chunk)
        assert got == reference(fed)[0]


# ---- the size bound (max_event_bytes) ----------------------------------------------------


def test_an_event_over_the_bound_is_dropped_and_counted_and_parsing_goes_on() -> None:
    parser = SSEParser(max_event_bytes=100)
    stream = b"data: " + b"x" * 200 + b"\n\ndata: ok\n\n"
    assert parser.feed(stream) == [SSEEvent("ok")]
    assert parser.oversized == 1


def test_an_over_long_line_is_discarded_as_it_arrives() -> None:
    parser = SSEParser(max_event_bytes=100)
    for _ in range(1000):  # 10 kB of one line, without a line end
        parser.feed(b"data: " + b"y" * 4)
        assert len(parser._buf) <= 100  # memory stays bounded
    # The line ends (CRLF split across chunks); the frame's id still moves the cursor.
    assert parser.feed(b"zz\r") == []
    assert parser.feed(b"\nid: 5\n\ndata: after\n\n") == [SSEEvent("after", "message", "5")]
    assert (parser.oversized, parser.dispatched_id) == (1, "5")


def test_many_data_lines_without_a_blank_line_are_let_go() -> None:
    parser = SSEParser(max_event_bytes=1000)
    for _ in range(10_000):
        parser.feed(b"data:\n")
        assert len(parser._data) <= 1000
    assert parser.oversized == 1
    assert parser.feed(b"data: rest\n\ndata: next\n\n") == [SSEEvent("next")]


def test_comments_alone_never_count_as_an_oversized_event() -> None:
    parser = SSEParser(max_event_bytes=100)
    for _ in range(100):
        parser.feed(b": keep-alive\n")
    assert parser.feed(b"\ndata: a\n\n") == [SSEEvent("a")]
    assert parser.oversized == 0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "16"])
def test_the_bound_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ValueError, match="max_event_bytes"):
        SSEParser(max_event_bytes=bad)  # type: ignore[arg-type]


@settings(max_examples=300)
@given(streams_with_cuts(), st.integers(1, 64))
@example((b"\xef\xbb", [1]), 1)  # a BOM's start, held over a bound of 1
def test_fuzz_a_bounded_parser_holds_no_more_than_its_bound(
    case: tuple[bytes, list[int]], limit: int
) -> None:
    stream, cuts = case
    parser = SSEParser(max_event_bytes=limit)
    for chunk in split_at(stream, cuts):
        for event in parser.feed(chunk):
            assert len(event.data) <= limit
        # the first two bytes of a possible BOM wait for the third, whatever the bound
        bom_start = 2 if parser._bom_pending else 0
        assert len(parser._buf) <= max(limit, bom_start)
        assert sum(len(value) + 1 for value in parser._data) <= limit


@given(streams_with_cuts())
def test_fuzz_a_bound_above_the_stream_size_changes_nothing(case: tuple[bytes, list[int]]) -> None:
    stream, cuts = case
    parser = SSEParser(max_event_bytes=len(stream) + 1)
    events = [e for chunk in split_at(stream, cuts) for e in parser.feed(chunk)]
    assert events == reference(stream)[0] and parser.oversized == 0
