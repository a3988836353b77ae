"""The SSE consumer against a hostile server: cuts, garbage, stalls, refusals, any bytes at all.

Each scenario ends (events, a clean end or a typed error) within its hang guard, loses and
repeats no event where the server's stream allows a resume, leaves no session on the emulator,
and leaks no task, file descriptor or warning (the ``leaks`` fixture). Set
``AIOLENS_FAULT_TRIALS`` for more trials of the randomised scenarios, ``AIOLENS_FAULT_SEED``
for other random cuts.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiolens import AsyncArchetypeClient
from aiolens.archetype.events import InferenceResult, SSEStreamEnd, SSEStreamStart
from aiolens.archetype.session import LensSession
from aiolens.emulator import Emulator
from aiolens.errors import AiolensError, APIConnectionError, InternalServerError
from tests.archetype.test_session import CSV_ROWS, IMAGE_QA, csv_lens, start_csv
from tests.conftest import FAST_BACKOFF
from tests.faults.conftest import LeakGuard, open_fds, sessions_left
from tests.faults.hostile import HostileServer, http_status, sse, stall

CONSUMER = r"/v0.5/lens/sessions/consumer/lsn-[^/]+"
HANG_GUARD = 60
EXAMPLE_GUARD = 15  # one property example: two attempts of 0.2 s liveness at most, and slack
TRIALS = int(os.environ.get("AIOLENS_FAULT_TRIALS", "5"))

START = b'data: {"type": "sse.stream.start", "event_data": {"session_id": "lsn-x"}}\n\n'
END = b'id: 99\ndata: {"type": "sse.stream.end"}\n\n'


def result(i: int, ident: str) -> bytes:
    return (
        f"id: {ident}\n"
        f'data: {{"type": "inference.result", "event_data": {{"response": ["r{i}"], '
        f'"query_id": "q{i}"}}}}\n\n'
    ).encode()


async def collect(stream: Any) -> list[Any]:
    return [event async for event in stream]


# ---- cuts at random byte offsets, against the emulator's real stream ---------------------------


def cutter(hostile: HostileServer, cuts: list[int]) -> Any:
    """Forward the stream, cutting the n-th connection after ``cuts[n]`` bytes (then whole)."""

    async def cut(request: web.Request) -> web.StreamResponse:
        return await hostile.forward(request, cut_after=cuts.pop(0) if cuts else None)

    return cut


async def test_a_stream_cut_at_random_byte_offsets_loses_and_repeats_nothing(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
) -> None:
    # A cut before the first event id cannot be resumed from a live-only consumer (there is
    # no cursor to give); with replay, every cut is resumable and the test is about the client.
    emulator.lens.sse_replay = True
    seed = int(os.environ.get("AIOLENS_FAULT_SEED", "9"))
    rng = random.Random(seed)
    lens_id = await csv_lens(lens)
    lost = duplicated = 0
    for _ in range(TRIALS):
        cuts = [rng.randrange(1, 1500) for _ in range(3)]  # the first three connections
        hostile.on("GET", CONSUMER, cutter(hostile, cuts), name="sse")
        async with asyncio.timeout(HANG_GUARD):
            async with lens.session(lens_id) as session:
                events = session.events()
                events.start()
                await start_csv(session)
                received = await collect(events)
        ids = [e.query_id for e in received if isinstance(e, InferenceResult)]
        starts = sum(isinstance(e, SSEStreamStart) for e in received)
        lost += CSV_ROWS // 5 - len(set(ids)) + (starts == 0)
        duplicated += len(ids) - len(set(ids)) + max(0, starts - 1)
        assert isinstance(received[0], SSEStreamStart) and isinstance(received[-1], SSEStreamEnd)
    assert (lost, duplicated) == (0, 0), f"seed {seed}"
    assert sessions_left(emulator) == 0


# ---- what a hostile server sends ---------------------------------------------------------------


async def test_hostile_frames_are_skipped_and_counted_and_the_stream_goes_on(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
) -> None:
    nested = b"[" * 5000 + b"]" * 5000
    hostile.on(
        "GET",
        CONSUMER,
        sse(
            [
                START,
                result(1, "1"),
                b"id: 2\ndata: " + nested + b"\n\n",  # RecursionError in the decoder
                b'id: 3\ndata: {"type": "inference.result", "x": ' + nested + b"}\n\n",
                b"id: 4\ndata: \xff\xfe{not json\n\n",  # invalid UTF-8, not JSON
                b"id: 5\ndata: " + b"x" * 300_000 + b"\n\n",  # over max_event_bytes
                b"data: z\n" * 50_000 + b"\n",  # ...and many lines without a blank one
                result(6, "9" * 5000),  # more digits than int() takes
                b"id: 1" + b"0" * 5000 + b'\ndata: {"type": "sse.stream.end"}\n\n',
            ]
        ),
        name="sse",
    )
    async with asyncio.timeout(HANG_GUARD):
        async with lens.session(IMAGE_QA) as session:
            events = session.events(max_event_bytes=100_000)
            received = await collect(events)
    assert [e.query_id for e in received if isinstance(e, InferenceResult)] == ["q1", "q6"]
    assert events.malformed == 5
    assert hostile.hits["sse"] == 1
    assert sessions_left(emulator) == 0


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        pytest.param(sse([START], then="stall"), APIConnectionError, id="stall-after-start"),
        pytest.param(stall, APIConnectionError, id="no-answer"),
        pytest.param(sse([], then="end"), APIConnectionError, id="eof-at-once"),
        pytest.param(sse([START, b"data: {"], then="drop"), APIConnectionError, id="drop"),
        pytest.param(http_status(503), InternalServerError, id="503"),
    ],
)
async def test_a_stream_that_never_delivers_ends_typed_after_max_reconnects(
    leaks: LeakGuard,
    emulator: Emulator,
    hostile: HostileServer,
    lens: AsyncArchetypeClient,
    rule: Any,
    error: type[Exception],
) -> None:
    hostile.on("GET", CONSUMER, rule, name="sse")
    async with asyncio.timeout(HANG_GUARD):
        async with lens.session(IMAGE_QA) as session:
            events = session.events(liveness_timeout=0.3, max_reconnects=2)
            with pytest.raises(error):
                await collect(events)
    assert hostile.hits["sse"] == 3  # the first connection and two attempts
    assert sessions_left(emulator) == 0


# ---- any bytes at all, through a real socket -----------------------------------------------


async def one_stream(head: bytes, body: bytes, then: str) -> list[Any]:
    """Serve ``head`` + ``body`` raw on a socket to one SSE consumer; what it yields."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head + body)
            await writer.drain()
            if then == "stall":
                await asyncio.sleep(3600)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with AsyncArchetypeClient(
            "k" * 16, f"http://127.0.0.1:{port}", backoff=FAST_BACKOFF, timeout=2, max_retries=0
        ) as client:
            session = LensSession(client, "lsn-x", "ws://unused")
            events = session.events(liveness_timeout=0.2, max_reconnects=1, queue_size=4)
            try:
                async with asyncio.timeout(EXAMPLE_GUARD):
                    return await collect(events)
            except AiolensError:
                return []
            finally:
                await session.aclose()
    finally:
        server.close()
        await server.wait_closed()


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
TOKENS = [
    START,
    END,
    result(1, "1"),
    result(2, "9" * 5000),  # more digits than int() takes
    b'data: {"type": "x", "y": ' + b"[" * 3000 + b"\n\n",  # nested too deeply
    b"data: ",
    b"id: ",
    b"retry: 1\n",
    b"\n",
    b"\r",
    b":",
]
sse_bodies = st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=40)), max_size=30)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    head=st.one_of(st.just(HEAD), st.binary(max_size=80)),
    body=sse_bodies.map(b"".join),
    then=st.sampled_from(["close", "stall"]),
)
def test_any_bytes_on_the_socket_end_the_stream_within_its_timeout(
    head: bytes, body: bytes, then: str
) -> None:
    fds = open_fds()
    received = asyncio.run(one_stream(head, body, then))
    assert all(type(e).__module__ == "aiolens.archetype.events" for e in received)
    assert open_fds() <= fds
