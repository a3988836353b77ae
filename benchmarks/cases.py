"""The measured code of every case: one call measures one variant once.

Each function returns a :class:`Sample`. Servers run in other processes
(see :mod:`benchmarks.run`); only the client side runs here, so ``cpu`` is
the client's own CPU time (``time.process_time()``, all its threads).

``python -m benchmarks.cases scale ...`` runs case 4 for one session count in
a fresh process (so that its RSS figures start from a clean heap) and prints
its :class:`Sample` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import aiohttp
import msgspec
from websockets.asyncio.client import connect

from aiolens import AsyncArchetypeClient
from aiolens.archetype.events import InferenceResult, LensEvent, SSEStreamEnd
from benchmarks.standin import raise_fd_limit

__all__ = [
    "Sample",
    "kyna_stream",
    "pipelined",
    "raw_emulator_window",
    "raw_window",
    "round_trips",
    "scale",
    "sse_aiolens",
    "sse_floor",
    "sse_untyped_floor",
]

API_KEY: Final = "atai-bench-" + "0" * 16
VALIDATE: Final = b'{"type":"session.validate","event_data":{}}'
"""The frame both WebSocket clients send; aiolens encodes the same bytes."""

# What aiolens's WebSocketChannel passes to websockets.connect, so that the raw
# client differs from aiolens only in what aiolens adds on top.
WS_OPTIONS: Final[dict[str, Any]] = {
    "compression": None,
    "max_queue": None,
    "ping_interval": 20.0,
    "ping_timeout": 20.0,
    "max_size": 16 * 1024 * 1024,
    "proxy": None,
}


@dataclass
class Sample:
    """One measurement of one variant."""

    ops: int
    """Operations completed (round trips, requests, events, frames)."""
    wall: float
    """Seconds of wall-clock time for them."""
    cpu: float
    """Seconds of client CPU time for them."""
    lost: int = 0
    """Operations that should have completed and did not (events lost ...)."""
    extra: dict[str, Any] = field(default_factory=dict)


class _Clock:
    """Wall and CPU time of a block, and the part of it the garbage collector took."""

    def __enter__(self) -> _Clock:
        gc.collect()
        self.gc = 0.0
        self.gc_runs = [0, 0, 0]
        self.gc_by_gen = [0.0, 0.0, 0.0]
        self.gc_cpu = 0.0
        self._gc_start = self._gc_cpu_start = 0.0
        gc.callbacks.append(self._on_gc)
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
            self._gc_cpu_start = time.process_time()
        else:
            self.gc_cpu += time.process_time() - self._gc_cpu_start
            took = time.perf_counter() - self._gc_start
            self.gc += took
            self.gc_runs[info["generation"]] += 1
            self.gc_by_gen[info["generation"]] += took

    def sample(self, ops: int, lost: int = 0, **extra: Any) -> Sample:
        extra["gc_s"] = self.gc
        extra["gc_cpu_s"] = self.gc_cpu
        extra["gc_runs"] = self.gc_runs
        extra["gc_s_by_generation"] = self.gc_by_gen
        return Sample(ops, self.wall, self.cpu, lost, extra)


def lens_base(port: int) -> str:
    """The stand-in's Lens API base URL."""
    return f"http://127.0.0.1:{port}/v0.5"


def ws_url(port: int, session_id: str) -> str:
    """The stand-in's WebSocket URL for ``session_id``."""
    return f"ws://127.0.0.1:{port}/v0.5/lens/sessions/{session_id}"


# ---- cases 1 and 2: requests over one WebSocket ---------------------------------------------
#
# Both clients stay connected for the whole measurement and take turns, in blocks, so that
# the machine's drift (other tenants, frequency changes) hits both alike: the sample of
# each is the sum of its blocks.


class _Tally:
    def __init__(self) -> None:
        self.wall = self.cpu = self.gc = 0.0
        self.gc_runs = [0, 0, 0]

    def add(self, clock: _Clock) -> None:
        self.wall += clock.wall
        self.cpu += clock.cpu
        self.gc += clock.gc
        self.gc_runs = [a + b for a, b in zip(self.gc_runs, clock.gc_runs, strict=True)]

    def sample(self, ops: int, lost: int = 0) -> Sample:
        extra = {"gc_s": self.gc, "gc_runs": self.gc_runs}
        return Sample(ops, self.wall, self.cpu, lost, extra)


async def _take_turns(
    blocks: int,
    first: Callable[[], Awaitable[None]],
    second: Callable[[], Awaitable[None]],
    only_second: bool = False,
) -> tuple[_Tally, _Tally]:
    tallies = (_Tally(), _Tally())
    runs = (first, second)
    for block in range(blocks):
        order = (0, 1) if block % 2 == 0 else (1, 0)
        for which in (1,) if only_second else order:
            with _Clock() as clock:
                await runs[which]()
            tallies[which].add(clock)
    return tallies


async def round_trips(
    port: int, n: int, blocks: int = 10, *, only_aiolens: bool = False
) -> tuple[Sample, Sample]:
    """Case 1, one request in flight: (bare websockets, aiolens), ``n`` round trips each.

    Bare websockets sends the frame and awaits the reply; aiolens awaits
    ``session.request("session.validate", {})``, which sends the same bytes.
    ``only_aiolens`` skips the bare client's turns (for profiling).
    """
    per_block = max(1, n // blocks)
    async with (
        connect(ws_url(port, "lsn-rtt-raw"), **WS_OPTIONS) as ws,
        AsyncArchetypeClient(API_KEY, lens_base(port)) as client,
        client.attach("lsn-rtt", ws_url(port, "lsn-rtt")) as session,
    ):

        async def raw(count: int = per_block) -> None:
            for _ in range(count):
                await ws.send(VALIDATE, text=True)
                await ws.recv()

        async def aiolens(count: int = per_block) -> None:
            for _ in range(count):
                await session.request("session.validate", {})

        await raw(min(n, 50))  # warm-up
        await aiolens(min(n, 50))
        tally_raw, tally_aiolens = await _take_turns(blocks, raw, aiolens, only_aiolens)
        lost = session.unmatched_replies
    ops = per_block * blocks
    return tally_raw.sample(ops), tally_aiolens.sample(ops, lost)


async def pipelined(
    port: int, n: int, in_flight: int, blocks: int = 10, *, only_aiolens: bool = False
) -> tuple[Sample, Sample]:
    """Case 2, ``in_flight`` requests at once on one socket: (bare websockets, aiolens).

    Bare websockets, one task: send ``in_flight`` frames, read as many replies,
    repeat. aiolens: ``in_flight`` tasks share one session, each awaiting
    ``request()`` in a loop. ``only_aiolens`` skips the bare client's turns.
    """
    per_block = max(in_flight, n // blocks)
    async with (
        connect(ws_url(port, "lsn-pipe-raw"), **WS_OPTIONS) as ws,
        AsyncArchetypeClient(API_KEY, lens_base(port)) as client,
        client.attach("lsn-pipe", ws_url(port, "lsn-pipe"), max_in_flight=in_flight) as session,
    ):

        async def raw(count: int = per_block) -> None:
            done = 0
            while done < count:
                batch = min(in_flight, count - done)
                for _ in range(batch):
                    await ws.send(VALIDATE, text=True)
                for _ in range(batch):
                    await ws.recv()
                done += batch

        async def aiolens(count: int = per_block) -> None:
            left = count

            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await session.request("session.validate", {})

            await asyncio.gather(*(worker() for _ in range(in_flight)))

        await raw(in_flight * 4)  # warm-up
        await aiolens(in_flight * 4)
        tally_raw, tally_aiolens = await _take_turns(blocks, raw, aiolens, only_aiolens)
        lost = session.unmatched_replies
    ops = per_block * blocks
    return tally_raw.sample(ops), tally_aiolens.sample(ops, lost)


# ---- case 3: SSE events -----------------------------------------------------------------------


async def sse_aiolens(port: int, n: int) -> Sample:
    """aiolens: ``async for event in session.events()``, counting ``InferenceResult``."""
    session_id = f"lsn-sse-n{n}"
    results = 0
    ended = False
    async with (
        AsyncArchetypeClient(API_KEY, lens_base(port)) as client,
        client.attach(session_id, ws_url(port, session_id), heartbeat_interval=None) as session,
    ):
        with _Clock() as clock:
            async for event in session.events():
                if type(event) is InferenceResult:
                    results += 1
                elif type(event) is SSEStreamEnd:
                    ended = True
    return clock.sample(results, n - results + (not ended))


_floor_decoder: Final = msgspec.json.Decoder(LensEvent)


async def sse_floor(port: int, n: int) -> Sample:
    """The floor: aiohttp chunks, split on blank lines, msgspec-decode each ``data:`` line.

    It decodes into the same typed events as aiolens but ignores everything
    the WHATWG rules say about line ends, comments, ids and multi-line data.
    """
    session_id = f"lsn-sse-n{n}"
    url = f"{lens_base(port)}/lens/sessions/consumer/{session_id}"
    results = 0
    ended = False
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}
    async with aiohttp.ClientSession() as http:
        with _Clock() as clock:
            async with http.get(url, headers=headers) as resp:
                rest = b""
                async for chunk in resp.content.iter_any():
                    *frames, rest = (rest + chunk).split(b"\n\n")
                    for frame in frames:
                        for line in frame.split(b"\n"):
                            if line.startswith(b"data: "):
                                event = _floor_decoder.decode(line[6:])
                                if type(event) is InferenceResult:
                                    results += 1
                                elif type(event) is SSEStreamEnd:
                                    ended = True
    return clock.sample(results, n - results + (not ended))


async def sse_untyped_floor(port: int, n: int) -> Sample:
    """The untyped floor: aiohttp chunks, split on blank lines, ``msgspec.json.decode``.

    As :func:`sse_floor`, but each ``data:`` line becomes plain dicts and lists
    (no typed structs); the event is told apart by its ``type`` key.
    """
    session_id = f"lsn-sse-n{n}"
    url = f"{lens_base(port)}/lens/sessions/consumer/{session_id}"
    results = 0
    ended = False
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}
    decode = msgspec.json.decode
    async with aiohttp.ClientSession() as http:
        with _Clock() as clock:
            async with http.get(url, headers=headers) as resp:
                rest = b""
                async for chunk in resp.content.iter_any():
                    *frames, rest = (rest + chunk).split(b"\n\n")
                    for frame in frames:
                        for line in frame.split(b"\n"):
                            if line.startswith(b"data: "):
                                kind = decode(line[6:]).get("type")
                                if kind == "inference.result":
                                    results += 1
                                elif kind == "sse.stream.end":
                                    ended = True
    return clock.sample(results, n - results + (not ended))


# ---- case 4: many sessions --------------------------------------------------------------------


def rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB; (ru_maxrss, ru_maxrss) without /proc."""
    try:
        with open("/proc/self/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak


async def scale(
    port: int,
    sessions: int,
    events: int,
    requests: int,
    *,
    freeze: bool = False,
    gc_threshold: tuple[int, ...] | None = None,
    profile: cProfile.Profile | None = None,
) -> Sample:
    """``sessions`` sessions, each with a WebSocket and an SSE stream, in this process.

    Each session attaches (WebSocket, at most 64 handshakes at once), then
    consumes an SSE stream of ``events`` ``inference.result`` events while it
    makes ``requests`` sequential requests on its WebSocket. ``ops`` counts
    events and replies; ``wall`` spans the streaming (connecting is reported
    separately, as ``connect_s``; ``tracked_per_session`` counts the objects
    the garbage collector tracks per open session). Once connected, ``freeze`` calls
    ``gc.freeze()`` and ``gc_threshold`` is passed to ``gc.set_threshold``
    (both undone at the end); ``profile`` profiles the streaming.
    """
    raise_fd_limit()
    gc.collect()
    rss0, _ = rss_kib()
    tracked0 = len(gc.get_objects())
    received = 0
    replies = 0
    errors = 0
    unfinished = 0
    gate = asyncio.Semaphore(64)  # handshakes at once

    async with (
        AsyncArchetypeClient(API_KEY, lens_base(port), timeout=120) as client,
        contextlib.AsyncExitStack() as stack,
    ):
        opened = []
        t0 = time.perf_counter()

        async def attach(i: int) -> None:
            session_id = f"lsn-scale{i}-n{events}"
            async with gate:
                opened.append(
                    await stack.enter_async_context(
                        client.attach(session_id, ws_url(port, session_id))
                    )
                )

        await asyncio.gather(*(attach(i) for i in range(sessions)))
        connect_wall = time.perf_counter() - t0
        rss_connected, _ = rss_kib()
        gc.collect()  # the streaming's clock collects too, on entry
        tracked = len(gc.get_objects()) - tracked0
        if freeze:  # the README's advice for many long-lived sessions
            gc.freeze()
        thresholds = gc.get_threshold()
        if gc_threshold is not None:  # the README's other advice
            gc.set_threshold(*gc_threshold)

        async def consume(session: Any) -> None:
            nonlocal received, unfinished
            count = 0
            ended = False
            async with session.events() as stream:
                async for event in stream:
                    if type(event) is InferenceResult:
                        count += 1
                    elif type(event) is SSEStreamEnd:
                        ended = True
            received += count
            unfinished += not ended

        async def ask(session: Any) -> None:
            nonlocal replies, errors
            for _ in range(requests):
                try:
                    await session.request("session.validate", {})
                    replies += 1
                except Exception:
                    errors += 1

        with _Clock() as clock:
            if profile is not None:
                profile.enable()
            await asyncio.gather(*(consume(s) for s in opened), *(ask(s) for s in opened))
            if profile is not None:
                profile.disable()
        rss_end, hwm = rss_kib()
        gc.set_threshold(*thresholds)
        if freeze:
            gc.unfreeze()
    expected = sessions * events
    return clock.sample(
        received + replies,
        expected - received + unfinished + errors,
        sessions=sessions,
        events=received,
        replies=replies,
        connect_s=connect_wall,
        rss_connected_kib_per_session=(rss_connected - rss0) / sessions,
        tracked_per_session=tracked / sessions,
        rss_peak_kib_per_session=(hwm - rss0) / sessions,
        rss_end_kib_per_session=(rss_end - rss0) / sessions,
    )


# ---- case 5: Kynasmith pose frames ------------------------------------------------------------


async def kyna_stream(
    base_url: str, api_key: str, frames: list[Any], *, window: int, batch: int = 15
) -> Sample:
    """Stream ``frames`` in batches of ``batch`` with up to ``window`` unacknowledged.

    Every batch is a ``send()`` call started at once (``asyncio.gather``);
    the session's window lets ``window`` of them await their acks together.
    ``window=1`` is stop-and-wait. Timing ends with the last ack; then the
    session is finalized and its frame count checked.
    """
    from aiolens.kynasmith import AsyncKynasmithClient

    chunks = [frames[i : i + batch] for i in range(0, len(frames), batch)]
    async with AsyncKynasmithClient(api_key, base_url=base_url) as client:
        specs = await client.movespecs.list(visibility="public")
        spec = next(s.movespec_id for s in specs if s.name == "squat")
        async with client.detection_session(movespec_id=spec, window=window) as det:
            with _Clock() as clock:
                acks = await asyncio.gather(*(det.send(c) for c in chunks))
            done = await det.finalize()
    accepted = sum(a.accepted_frame_count for a in acks)
    lost = len(frames) - accepted + (len(frames) - done.accepted_frames_total)
    return clock.sample(accepted, lost, batches=len(chunks))


# ---- case 6: over a long link (benchmarks.delay_proxy) ----------------------------------------


async def raw_window(url: str, payload: bytes, n: int, window: int, weight: int = 1) -> Sample:
    """Bare websockets: ``n`` messages, at most ``window`` awaiting their reply (a sliding window).

    One task sends ``window`` messages, then one more for every reply, until
    ``n`` were sent and answered: what a hand-written pipelining client does.
    Each message counts as ``weight`` operations (frames per batch).
    """
    async with connect(url, **WS_OPTIONS) as ws:
        await ws.send(payload, text=True)  # warm-up: the connection is open and used
        await ws.recv()
        with _Clock() as clock:
            sent = 0
            for _ in range(min(window, n)):
                await ws.send(payload, text=True)
                sent += 1
            for _ in range(n):
                await ws.recv()
                if sent < n:
                    await ws.send(payload, text=True)
                    sent += 1
    return clock.sample(n * weight)


async def raw_emulator_window(
    base_url: str, api_key: str, frames: list[Any], *, window: int, batch: int = 15
) -> Sample:
    """Bare websockets against the emulator: the same batches as :func:`kyna_stream`.

    The session is created with aiolens (not timed); the batches are encoded
    before the clock starts, then sent over a bare ``websockets`` connection
    with at most ``window`` awaiting their ``frame_ack`` (a sliding window).
    It shows what the emulator itself can take, apart from the aiolens client.
    """
    import msgspec

    from aiolens.kynasmith import AsyncKynasmithClient
    from aiolens.kynasmith.models import FrameBatch, encoder

    payloads = []
    seq = 0
    for number, start in enumerate(range(0, len(frames), batch), 1):
        numbered = []
        for frame in frames[start : start + batch]:
            seq += 1
            numbered.append(msgspec.structs.replace(frame, frame_seq=seq))
        payloads.append(encoder.encode(FrameBatch(batch_seq=number, frames=numbered)))
    async with AsyncKynasmithClient(api_key, base_url=base_url) as client:
        specs = await client.movespecs.list(visibility="public")
        spec = next(s.movespec_id for s in specs if s.name == "squat")
        created = await client.sessions.create(movespec_id=spec)
        url = f"{created.stream_url}?runtime_token={created.runtime_token}"
        async with connect(url, **WS_OPTIONS) as ws:
            await ws.recv()  # the session_update sent on attach
            acks = sent = 0
            total = len(payloads)
            with _Clock() as clock:
                for _ in range(min(window, total)):
                    await ws.send(payloads[sent], text=True)
                    sent += 1
                while acks < total:
                    message = await ws.recv()
                    if '"frame_ack"' in message:
                        acks += 1
                        if sent < total:
                            await ws.send(payloads[sent], text=True)
                            sent += 1
        await client.sessions.cancel_quietly(created.session_id, timeout=10)
    return clock.sample(len(frames))


def cpu_by_package(profile: cProfile.Profile) -> dict[str, float]:
    """Shares of the profiled CPU time spent in each package's own code (``tottime``).

    ``C`` is built-in code called from Python (sockets, ``select``, msgspec, ...),
    ``stdlib`` the rest of the standard library (``asyncio`` has its own line);
    the collector's time lands on whatever ran when it started.
    """
    import pstats

    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    for (path, _, _), (_, _, tottime, _, _) in stats.items():
        groups[_package(path)] = groups.get(_package(path), 0.0) + tottime
    total = sum(groups.values()) or 1.0
    return {name: t / total for name, t in sorted(groups.items(), key=lambda kv: -kv[1])}


def _package(path: str) -> str:
    for name in ("aiolens", "websockets", "aiohttp", "asyncio", "benchmarks", "msgspec"):
        if f"/{name}/" in path:
            return name
    if path == "~":
        return "C"
    if "/lib/python3" in path:
        return "stdlib"
    if "/yarl/" in path or "/multidict/" in path or "/propcache/" in path:
        return "aiohttp"
    return "other"


# ---- child-process entry point ----------------------------------------------------------------


def _run(coro: Callable[[], Awaitable[Sample]]) -> Sample:
    async def main() -> Sample:
        return await coro()

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.cases scale --port P --sessions N --events E --requests R``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cases")
    parser.add_argument("case", choices=["scale"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sessions", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() once connected")
    parser.add_argument("--gc-threshold", help="gc.set_threshold once connected: 50000,20")
    parser.add_argument("--profile", action="store_true", help="add extra['cpu_by_package']")
    args = parser.parse_args(argv)
    thresholds = tuple(int(t) for t in args.gc_threshold.split(",")) if args.gc_threshold else None
    # CPU time, not wall time: waiting in select() is not work.
    profile = cProfile.Profile(time.process_time) if args.profile else None
    sample = _run(
        lambda: scale(
            args.port,
            args.sessions,
            args.events,
            args.requests,
            freeze=args.freeze,
            gc_threshold=thresholds,
            profile=profile,
        )
    )
    if profile is not None:
        sample.extra["cpu_by_package"] = cpu_by_package(profile)
    sys.stdout.write(json.dumps(asdict(sample)) + "\n")


if __name__ == "__main__":
    main()
