"""EventStream over crafted event streams: decoding, malformed frames, ids, backpressure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aiolens import AsyncArchetypeClient
from aiolens._core.backoff import Backoff
from aiolens.archetype.events import (
    InferenceResult,
    LogInfo,
    SSEStreamEnd,
    SSEStreamStart,
    UnknownEvent,
)
from aiolens.archetype.session import LensSession
from aiolens.errors import APIConnectionError

START = b'data: {"type": "sse.stream.start", "event_data": {"session_id": "lsn-x"}}\n\n'
END = b'data: {"type": "sse.stream.end"}\n\n'
Body = Callable[[web.Request], list[bytes]]
QUICK = Backoff(initial=0.01, maximum=0.05)


def result(i: int, ident: str | None = None) -> bytes:
    head = b"event: message\n" + (f"id: {ident}\n".encode() if ident is not None else b"")
    return head + (
        b'data: {"type": "inference.result", "event_data": {"response": ["r%d"], '
        b'"query_id": "q%d"}}\n\n' % (i, i)
    )


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Body], asyncio.Future[LensSession]]]:
    servers: list[TestServer] = []
    clients: list[AsyncArchetypeClient] = []
    sessions: list[LensSession] = []

    async def start(body: Body) -> LensSession:
        async def consumer(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for part in body(request):
                if part == b"DROP":
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                if part == b"STALL":  # until the server closes
                    await asyncio.Event().wait()
                await response.write(part)
            return response

        app = web.Application()
        app.router.add_get("/lens/sessions/consumer/lsn-x", consumer)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        # Resumes follow the client's backoff: short delays, Retry-After and retry: honoured.
        client = AsyncArchetypeClient("k" * 16, str(server.make_url("")), backoff=QUICK)
        clients.append(client)
        session = LensSession(client, "lsn-x", "ws://unused")
        sessions.append(session)
        return session

    yield start  # type: ignore[misc]
    for session in sessions:
        await session.aclose()
    for client in clients:
        await client.aclose()
    for server in servers:
        await server.close()


async def test_events_are_typed_unknown_types_kept_and_bad_connection_events_not_obeyed(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    session = await serve(
        lambda _r: [
            START,
            result(1, "1"),
            b'id: 2\ndata: {"type": "log.info", "event_data": {"line": "hello"}}\n\n',
            b'id: 3\ndata: {"type": "brand.new", "event_data": {"x": 1}}\n\n',
            b'id: 4\ndata: {"type": "inference.result", "timestamp": "not a number"}\n\n',
            # An end event whose fields do not fit: an UnknownEvent, and not the end.
            b'data: {"type": "sse.stream.end", "timestamp": "soon"}\n\n',
            result(5, "5"),
            END,
        ]
    )
    received = [event async for event in session.events()]
    assert [type(e) for e in received] == [
        SSEStreamStart,
        InferenceResult,
        LogInfo,
        UnknownEvent,
        UnknownEvent,
        UnknownEvent,
        InferenceResult,
        SSEStreamEnd,
    ]
    first = received[1]
    assert isinstance(first, InferenceResult) and first.text == "r1" and first.query_id == "q1"
    assert [e.type for e in received[3:6]] == ["brand.new", "inference.result", "sse.stream.end"]


async def test_frames_that_are_not_json_objects_are_skipped_and_the_stream_goes_on(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    session = await serve(
        lambda _r: [
            START,
            b"id: 1\ndata: [1, 2]\n\n",
            b"id: 2\ndata: 42\n\n",
            b'id: 3\ndata: {"type": 7}\n\n',
            b"id: 4\ndata: {not json\n\n",
            result(5, "5"),
            END,
        ]
    )
    events = session.events()
    received = await asyncio.wait_for(_collect(events), 5)
    assert [type(e) for e in received] == [SSEStreamStart, InferenceResult, SSEStreamEnd]
    assert events.malformed == 4


async def test_resume_with_non_numeric_ids_repeats_nothing(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    cursors: list[str | None] = []

    def body(request: web.Request) -> list[bytes]:
        cursors.append(request.headers.get("Last-Event-ID"))
        if len(cursors) == 1:
            return [START, result(1, "a"), result(2, "b"), b"DROP"]
        # A server that replays from further back than asked: repeats are dropped.
        return [START, result(1, "a"), result(2, "b"), result(3, "c"), END]

    session = await serve(body)
    events = session.events()
    received = await asyncio.wait_for(_collect(events), 10)
    results = [e for e in received if isinstance(e, InferenceResult)]
    assert [e.query_id for e in results] == ["q1", "q2", "q3"]
    assert cursors == [None, "b"]
    assert events.last_event_id == "c"
    assert sum(isinstance(e, SSEStreamStart) for e in received) == 1


async def test_a_frame_with_only_an_id_moves_the_resume_cursor(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    cursors: list[str | None] = []

    def body(request: web.Request) -> list[bytes]:
        cursors.append(request.headers.get("Last-Event-ID"))
        if len(cursors) == 1:
            # Events without ids, then a data-less frame that sets the id (WHATWG: it is
            # the last event ID from then on), an unfinished frame's id, then a drop.
            return [START, result(1), result(2), b"id: 7\n\n", b"id: 99\n", b"DROP"]
        return [START, result(3, "8"), END]

    session = await serve(body)
    events = session.events()
    received = await asyncio.wait_for(_collect(events), 10)
    results = [e for e in received if isinstance(e, InferenceResult)]
    assert [e.query_id for e in results] == ["q1", "q2", "q3"]
    assert cursors == [None, "7"]
    assert events.last_event_id == "8"


async def test_the_streams_retry_field_sets_the_reconnect_delay(
    serve: Callable[[Body], asyncio.Future[LensSession]], caplog: pytest.LogCaptureFixture
) -> None:
    cursors: list[str | None] = []

    def body(request: web.Request) -> list[bytes]:
        cursors.append(request.headers.get("Last-Event-ID"))
        if len(cursors) == 1:
            return [START, b"retry: 350\n\n", result(1, "1"), b"DROP"]
        return [START, result(2, "2"), END]

    session = await serve(body)
    events = session.events()
    with caplog.at_level(logging.INFO, logger="aiolens"):
        received = await asyncio.wait_for(_collect(events), 10)
    assert [e.query_id for e in received if isinstance(e, InferenceResult)] == ["q1", "q2"]
    assert events.server_retry == 0.35
    # The backoff's first delay is at most 0.2 s: the stream asked for longer.
    assert any("resuming after id '1' in 0.35s" in r.getMessage() for r in caplog.records)


async def test_ids_of_non_ascii_digits_are_names_not_numbers(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    # "\u00b2" (superscript two) and "\u0663" (Arabic-Indic three) pass str.isdigit() but
    # int() refuses them: they must be treated as opaque ids, not crash the reader.
    session = await serve(
        lambda _r: [START, result(1, "\u00b2"), result(2, "\u0663"), result(3, "4"), END]
    )
    events = session.events()
    received = await asyncio.wait_for(_collect(events), 5)
    results = [e for e in received if isinstance(e, InferenceResult)]
    assert [e.query_id for e in results] == ["q1", "q2", "q3"]
    assert events.last_event_id == "4"


async def test_a_full_queue_holds_the_reader_back_and_loses_nothing(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    count = 300
    session = await serve(lambda _r: [START, *(result(i, str(i)) for i in range(count)), END])
    events = session.events(queue_size=2)
    received = []
    async for event in events:
        received.append(event)
        if len(received) % 50 == 0:
            await asyncio.sleep(0.01)  # a slow consumer
    results = [e for e in received if isinstance(e, InferenceResult)]
    assert [e.query_id for e in results] == [f"q{i}" for i in range(count)]
    assert events.dropped == 0 and events.delivered == count + 2


async def test_ids_longer_than_ints_digit_limit_are_ordered_and_resumed_without_repeats(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    # More digits than int() converts (4300): the reader used to die on them, silently.
    big, bigger = "9" * 5000, "1" + "0" * 5000
    cursors: list[str | None] = []

    def body(request: web.Request) -> list[bytes]:
        cursors.append(request.headers.get("Last-Event-ID"))
        if len(cursors) == 1:
            return [START, result(1, big), b"DROP"]
        return [START, result(1, big), result(2, bigger), result(3, "0" * 9000 + "7"), END]

    session = await serve(body)
    events = session.events()
    received = await asyncio.wait_for(_collect(events), 10)
    results = [e for e in received if isinstance(e, InferenceResult)]
    assert [e.query_id for e in results] == ["q1", "q2"]  # no repeat; 7 is below both
    assert cursors == [None, big]
    assert events.last_event_id == bigger and events.malformed == 0
    await asyncio.sleep(0)  # the reader's done-callback ran: it added nothing after the end
    assert not events._items


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


async def test_json_nested_too_deeply_is_a_malformed_frame_and_the_stream_goes_on(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    # msgspec raises RecursionError on such input, which used to kill the reader.
    session = await serve(
        lambda _r: [
            START,
            b'id: 1\ndata: {"type": "inference.result", "event_data": ' + nested(50_000) + b"}\n\n",
            b"id: 2\ndata: " + nested(50_000) + b"\n\n",
            b'data: {"type": "sse.stream.end", "x": ' + nested(50_000) + b"}\n\n",
            result(3, "3"),
            END,
        ]
    )
    events = session.events()
    received = await asyncio.wait_for(_collect(events), 10)
    assert [type(e) for e in received] == [SSEStreamStart, InferenceResult, SSEStreamEnd]
    assert events.malformed == 3


async def test_an_event_over_max_event_bytes_is_skipped_counted_and_the_stream_goes_on(
    serve: Callable[[Body], asyncio.Future[LensSession]], caplog: pytest.LogCaptureFixture
) -> None:
    line = b"data: " + b"x" * 1000 + b"\n"
    session = await serve(
        lambda _r: [
            START,
            result(1, "1"),
            b"id: 2\n" + line * 40 + b"\n",  # 40 kB in lines: over the bound
            b"id: 3\ndata: " + b"y" * 50_000,  # one line, sent in pieces
            b"z" * 50_000,
            b"\n\n",
            result(4, "4"),
            END,
        ]
    )
    events = session.events(max_event_bytes=10_000)
    with caplog.at_level(logging.WARNING, logger="aiolens"):
        received = await asyncio.wait_for(_collect(events), 10)
    results = [e for e in received if isinstance(e, InferenceResult)]
    assert [e.query_id for e in results] == ["q1", "q4"]
    assert events.malformed == 2 and events.last_event_id == "4"
    assert any("over max_event_bytes" in r.getMessage() for r in caplog.records)


async def test_a_reader_cancelled_from_outside_ends_the_iteration_with_a_typed_error(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    session = await serve(lambda _r: [START, result(1, "1"), b"STALL"])
    events = session.events()
    iterator = aiter(events)
    assert isinstance(await anext(iterator), SSEStreamStart)
    assert isinstance(await anext(iterator), InferenceResult)
    (reader,) = [t for t in asyncio.all_tasks() if t.get_name().startswith("aiolens-sse")]
    waiting = asyncio.ensure_future(anext(iterator))
    await asyncio.sleep(0.05)
    reader.cancel()  # e.g. a framework cancelling every task but its own
    with pytest.raises(APIConnectionError, match="stopped"):
        await asyncio.wait_for(waiting, 5)


async def test_the_stream_start_comes_once_even_when_the_first_connection_is_cut_inside_it(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    # Found by the fault suite: only the first connection's start was yielded, so a cut
    # inside it lost the start for good.
    calls: list[int] = []

    def body(request: web.Request) -> list[bytes]:
        calls.append(1)
        if len(calls) == 1:
            return [START[:20], b"DROP"]
        if len(calls) == 2:
            return [START, result(1, "1"), b"DROP"]
        return [START, result(2, "2"), END]

    session = await serve(body)
    received = await asyncio.wait_for(_collect(session.events()), 10)
    assert [type(e) for e in received] == [
        SSEStreamStart,
        InferenceResult,
        InferenceResult,
        SSEStreamEnd,
    ]


async def test_closing_the_stream_ends_a_consumer_waiting_in_another_task(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    session = await serve(lambda _r: [START, b"STALL"])
    events = session.events()
    consumer = asyncio.ensure_future(_collect(events))
    await asyncio.sleep(0.1)
    await events.aclose()
    received = await asyncio.wait_for(consumer, 5)
    assert [type(e) for e in received] == [SSEStreamStart]


async def _collect(events: AsyncIterator[object]) -> list[object]:
    return [event async for event in events]


# ---- chunks queued whole (a run of new numeric ids, all lens events) ------------------------


async def test_whole_chunks_fill_a_small_queue_in_order_and_lose_nothing(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    runs = [b"".join(result(i, str(i)) for i in range(start, start + 40)) for start in (1, 41)]
    session = await serve(lambda _r: [START, *runs, END])
    events = session.events(queue_size=48)  # room for one run, not two
    received = []
    async for event in events:
        received.append(event)
        if len(received) % 10 == 0:
            await asyncio.sleep(0.01)  # a slow consumer: the reader waits for room
    results = [e for e in received if isinstance(e, InferenceResult)]
    assert [e.query_id for e in results] == [f"q{i}" for i in range(1, 81)]
    assert events.dropped == 0 and events.delivered == 82
    assert events.last_event_id == "80"


async def test_whole_chunks_under_drop_oldest_keep_the_newest(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    runs = [b"".join(result(i, str(i)) for i in range(start, start + 10)) for start in (1, 11, 21)]
    session = await serve(lambda _r: [START, *runs, END])
    events = session.events(queue_size=12, overflow="drop_oldest")
    events.start()
    for _ in range(1000):  # nobody consumes while the stream arrives
        if events.delivered >= 32:
            break
        await asyncio.sleep(0.01)
    received = await asyncio.wait_for(_collect(events), 10)
    results = [e.query_id for e in received if isinstance(e, InferenceResult)]
    assert results == [f"q{i}" for i in range(20, 31)]  # the newest: 11 and the end fit
    assert events.dropped + len(received) == events.delivered == 32


async def test_a_run_replayed_after_a_resume_repeats_nothing(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    cursors: list[str | None] = []

    def body(request: web.Request) -> list[bytes]:
        cursors.append(request.headers.get("Last-Event-ID"))
        if len(cursors) == 1:
            return [START, b"".join(result(i, str(i)) for i in range(1, 31)), b"DROP"]
        # From further back than asked, and then on: one chunk with old and new ids.
        return [START, b"".join(result(i, str(i)) for i in range(20, 61)), END]

    session = await serve(body)
    events = session.events()
    received = await asyncio.wait_for(_collect(events), 10)
    results = [e.query_id for e in received if isinstance(e, InferenceResult)]
    assert results == [f"q{i}" for i in range(1, 61)]
    assert cursors == [None, "30"] and events.last_event_id == "60"


async def test_a_malformed_frame_inside_a_run_is_skipped_and_counted(
    serve: Callable[[Body], asyncio.Future[LensSession]],
) -> None:
    bad = b'event: message\nid: 5\ndata: {"type": "inference.result", oops\n\n'
    run = b"".join(result(i, str(i)) if i != 5 else bad for i in range(1, 11))
    session = await serve(lambda _r: [START, run, END])
    events = session.events()
    received = await asyncio.wait_for(_collect(events), 10)
    results = [e.query_id for e in received if isinstance(e, InferenceResult)]
    assert results == [f"q{i}" for i in range(1, 11) if i != 5]
    assert events.malformed == 1 and events.last_event_id == "10"
