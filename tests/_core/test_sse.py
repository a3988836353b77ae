"""The SSE parser against the WHATWG rules, at every chunk boundary, and fuzzed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aiolens._core.sse import SSEEvent, SSEParser


def reference(stream: bytes) -> tuple[list[SSEEvent], str, int | None]:
    """A straightforward transcription of the spec, over the whole stream at once."""
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines: list[str] = []
    current = ""
    i = 0
    complete_upto = 0
    while i < len(text):
        ch = text[i]
        if ch == "\r":
            lines.append(current)
            current = ""
            if i + 1 < len(text) and text[i + 1] == "\n":
                i += 1
            complete_upto = i + 1
        elif ch == "\n":
            lines.append(current)
            current = ""
            complete_upto = i + 1
        else:
            current += ch
        i += 1
    del complete_upto
    events: list[SSEEvent] = []
    data: list[str] = []
    event_type = ""
    last_id = ""
    retry: int | None = None
    for line in lines:
        if line == "":
            if data:
                events.append(SSEEvent("\n".join(data), event_type or "message", last_id))
            data = []
            event_type = ""
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            name, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "data":
            data.append(value)
        elif name == "event":
            event_type = value
        elif name == "id":
            if "\0" not in value:
                last_id = value
        elif name == "retry" and value and all("0" <= c <= "9" for c in value):
            retry = int(value)
    return events, last_id, retry


def parse_chunks(chunks: list[bytes]) -> tuple[list[SSEEvent], SSEParser]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    parser.close()
    return events, parser


def at_every_boundary(stream: bytes) -> list[SSEEvent]:
    """Parse whole, split at each boundary, and byte by byte: all must agree."""
    whole, _ = parse_chunks([stream])
    for cut in range(len(stream) + 1):
        split, _ = parse_chunks([stream[:cut], stream[cut:]])
        assert split == whole, f"differs when split at {cut}"
    assert parse_chunks([stream[i : i + 1] for i in range(len(stream))])[0] == whole
    return whole


def test_basic_stream_from_the_docs() -> None:
    stream = (
        b'event: message\ndata: {"type": "sse.stream.start"}\n\n'
        b": a comment\n"
        b'event: message\nid: 1\ndata: {"type": "inference.result"}\n\n'
        b'event: message\ndata: {"type": "sse.stream.end"}\n\n'
    )
    events = at_every_boundary(stream)
    assert [e.data for e in events] == [
        '{"type": "sse.stream.start"}',
        '{"type": "inference.result"}',
        '{"type": "sse.stream.end"}',
    ]
    assert [e.id for e in events] == ["", "1", "1"]  # the id persists


def test_line_endings_cr_lf_crlf_mixed() -> None:
    stream = b"data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n"
    assert [e.data for e in at_every_boundary(stream)] == ["a", "b", "c", "d"]


def test_cr_at_chunk_end_then_lf_is_one_line_end() -> None:
    events, _ = parse_chunks([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert [e.data for e in events] == ["a\nb"]


def test_bom_stripped_once_even_when_split() -> None:
    stream = b"\xef\xbb\xbfdata: x\n\n"
    assert [e.data for e in at_every_boundary(stream)] == ["x"]
    events, _ = parse_chunks([b"\xef", b"\xbb", b"\xbf\xef\xbb\xbfdata: y\n\n"])
    # A second BOM is part of the first line: the field name is then not "data".
    assert events == []


def test_multiline_data_and_field_rules() -> None:
    stream = b"data:first\ndata:  second\ndata\nevent: custom\n\n"
    (event,) = at_every_boundary(stream)
    assert event.data == "first\n second\n"
    assert event.event == "custom"


def test_empty_data_not_dispatched_and_type_reset() -> None:
    stream = b"event: ignored\n\nid: 7\n\ndata: x\n\n"
    (event,) = at_every_boundary(stream)
    assert event.event == "message"
    assert event.id == "7"


def test_id_with_null_ignored_and_empty_id_resets() -> None:
    stream = b"id: 5\ndata: a\n\nid: 6\x007\ndata: b\n\nid\ndata: c\n\n"
    events = at_every_boundary(stream)
    assert [e.id for e in events] == ["5", "5", ""]


def test_retry_only_ascii_digits() -> None:
    _, parser = parse_chunks([b"retry: 1500\n\nretry: 12a\n\nretry: \xd9\xa3\n\n"])
    assert parser.retry == 1500


def test_partial_event_at_eof_dropped() -> None:
    events, _ = parse_chunks([b"data: complete\n\ndata: partial\n"])
    assert [e.data for e in events] == ["complete"]


def test_invalid_utf8_replaced() -> None:
    (event,) = at_every_boundary(b"data: caf\xc3\n\n")
    assert event.data == "caf\ufffd"


def test_unknown_fields_and_comments_ignored() -> None:
    (event,) = at_every_boundary(b":hello\nfoo: bar\ndata: x\n\n")
    assert event.data == "x"


SSE_PIECES = st.sampled_from(
    [
        b"data",
        b"event",
        b"id",
        b"retry",
        b"foo",
        b":",
        b" ",
        b"  ",
        b"\r",
        b"\n",
        b"\r\n",
        b"\xef\xbb\xbf",
        b"\x00",
        b"\xc3",
        b"\xff",
        b"x",
        b"123",
        b"message",
        b"\xc3\xa9",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(SSE_PIECES, max_size=40).map(b"".join),
    st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_matches_reference_for_any_stream_and_chunking(stream: bytes, cuts: list[int]) -> None:
    expected, last_id, retry = reference(stream)
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    events, parser = parse_chunks(chunks)
    # Events completed before the end of stream must match; the reference sees
    # complete lines only if they end with a terminator, like the parser.
    assert events == expected
    assert parser.retry == retry
    assert parser.last_event_id == last_id
