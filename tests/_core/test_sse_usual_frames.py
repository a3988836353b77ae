"""The parser's fast path for usual frames (``event: message`` / ``id`` / one ``data`` line).

Streams made mostly of such frames, with near misses mixed in (another event type, two
data lines, an ``id`` with NUL, ``data:`` inside the ``id`` line, blank lines, CRs,
comments), must parse exactly as the spec's reference does, at any chunking.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aiolens._core.sse import SSEEvent, SSEParser
from tests._core.test_sse import reference, split_at


class FramesFirst(SSEParser):
    """The parser taking every chunk frame by frame, however short (its fast path)."""

    _short_text = 0


def parse(chunks: list[bytes]) -> tuple[list[SSEEvent], str, str, int | None]:
    parser = FramesFirst()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    parser.close()
    return events, parser.last_event_id, parser.dispatched_id, parser.retry


PIECES = [
    b"event: message\n",
    b"event: other\n",
    b"event:message\n",
    b"event: \n",
    b"id: 7\n",
    b"id: 12\n",
    b"id: \n",
    b"id:  3\n",
    b"id: 4\x005\n",
    b"id: data: 9\n",
    b"data: {}\n",
    b'data: {"type": "x"}\n',
    b"data: \n",
    b"data:x\n",
    b"data: a\rdata: b\r\n",
    b": comment\n",
    b"retry: 10\n",
    b"\n",
    b"\r\n",
    b"\r",
    b"data: \xe2\x82",
    b"\xac\n",
]

usual_frame = st.sampled_from(
    [
        b"event: message\nid: 5\ndata: {}\n\n",
        b"event: message\ndata: {}\n\n",
        b"id: 6\ndata: x\n\n",
        b"data: y\n\n",
    ]
)
streams = st.lists(st.one_of(usual_frame, st.sampled_from(PIECES)), max_size=40).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(streams, st.data())
def test_usual_frames_parse_as_the_reference_at_any_chunking(
    stream: bytes, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    assert parse(split_at(stream, cuts)) == reference(stream)


class LineByLine(FramesFirst):
    """The parser with every frame taken line by line (its general path)."""

    def _usual_frames(self, text: str, start: int, end: int, events: list[SSEEvent]) -> bool:
        return False

    def _frames(self, blocks: list[str], events: list[SSEEvent], bounded: bool) -> None:
        for block in blocks:
            self._lines([*block.split("\n"), ""], events)


@settings(max_examples=200, deadline=None)
@given(streams, st.integers(1, 40), st.data())
def test_usual_frames_respect_the_size_bound_as_line_by_line(
    stream: bytes, limit: int, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    fast, slow = FramesFirst(limit), LineByLine(limit)
    for chunk in split_at(stream, cuts):
        assert fast.feed(chunk) == slow.feed(chunk)
        assert (fast.oversized, fast.last_event_id, fast.dispatched_id) == (
            slow.oversized,
            slow.last_event_id,
            slow.dispatched_id,
        )


# Runs of the most usual frame (event, id, data), taken all at once, with near misses that
# keep the run's length or its line count (no data line, an extra line, two data lines, an
# id with NUL or LF-free oddities): any of them must send the run back to the frame-by-frame
# path, with the same result.
usual_run_frame = st.one_of(
    st.integers(1, 10**6).map(lambda n: b'event: message\nid: %d\ndata: {"n": %d}\n\n' % (n, n)),
    st.sampled_from(
        [
            b"event: message\nid: 5\n\n",
            b"event: message\nid: 6\nxxxxxx\ndata: y\n\n",
            b"event: message\nid: 7\ndata: a\ndata: b\n\n",
            b"event: message\nid: 8\x00\ndata: z\n\n",
            b"event: message\nid: \ndata: \n\n",
            b"event: message\nid: 9\ndata:  two spaces\n\n",
            b"event: message\nid: 10\ndata: x\ndata: \n\n",
            b"event: message\nid: 11\ndata: event: message\nid: 12\n\n",
            b"event: message\nid: data: 13\n\n",
            b"event: message\nid: 14\r\ndata: w\r\n\r\n",
        ]
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(usual_run_frame, max_size=60).map(b"".join), st.data())
def test_runs_of_usual_frames_parse_as_the_reference(stream: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=3))
    assert parse(split_at(stream, cuts)) == reference(stream)
