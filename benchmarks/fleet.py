"""Fleet benchmarks (issue 15): ``python -m benchmarks.fleet [--quick] [--repeat N]``.

Every server runs in its own process, on 127.0.0.1: ``redis-server`` (the Debian
package, persistence off), the realtime stand-in (:mod:`benchmarks.standin`: pre-encoded
SSE streams, so the Lens side costs little) and, for the takeover figure, the emulator
with paced events. Workers are ``aiolens fleet worker`` subprocesses. Figures:

1. **Redis ceiling**: redis-py pipelining the fleet's fenced append (the same Lua script,
   the same event bytes), one event per call and 100 calls per pipeline (the issue's
   anchor), and the batched shape the worker uses (many events per call).
2. **One worker end to end**: events/s from the stand-in's SSE streams into Redis, and
   its ratio to (1) — the goal is ≥ 0.8×.
3. **1, 2, 4 workers**: events/s end to end with ``--feeds`` feeds, and the ratio to one
   process reading the same streams without the fleet (no Redis); Redis round trips
   and Redis CPU per event.
4. **Takeover after kill -9**: per feed, seconds from the kill until events flow again
   under the new owner, minus the lease.

Rates are measured between 10 % and 90 % of the events (steady state; attaching 2,000
sessions is not counted), medians over ``--repeat`` runs with min..max.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import redis.asyncio as aioredis

from aiolens import AsyncArchetypeClient
from aiolens.fleet import Fleet, InputStream, LensFeed
from aiolens.fleet.store import FleetStore
from benchmarks.standin import raise_fd_limit, sse_event

PREFIX = "bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = aioredis.Redis.from_url(url)
            for _ in range(200):
                with contextlib.suppress(aioredis.ConnectionError):
                    await client.ping()
                    break
                await asyncio.sleep(0.05)
            await client.aclose()
            yield url
        finally:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def child(
    *args: str, ready: bytes
) -> AsyncIterator[tuple[asyncio.subprocess.Process, bytes]]:
    """A subprocess; yields it and its first stdout line containing ``ready``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parent.parent
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(120):
            line = await proc.stdout.readline()
            while ready not in line:
                if not line:
                    raise RuntimeError(f"{args} exited before it was ready")
                line = await proc.stdout.readline()
        yield proc, line
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def _event(i: int, total: int) -> tuple[str, str, str]:
    return (str(i), "inference.result", msgspec.json.encode(sse_event(i, total)).decode())


async def _redis_cpu(r: aioredis.Redis) -> float:
    info = await r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# ---- 1. the Redis ceiling --------------------------------------------------------------------


async def redis_ceiling(url: str, events: int, per_call: int, per_pipeline: int) -> float:
    """Events/s of pipelined fenced appends (``per_call`` events per script call)."""
    async with aioredis.Redis.from_url(url) as r:
        await r.flushdb()
        store = FleetStore(r, PREFIX)
        await store.submit(LensFeed(feed_id="ceiling", lens_id="lns-x"))
        state = await store.take("ceiling", "bench")
        assert state is not None
        await store.load_scripts()
        batch = [_event(i, events) for i in range(1, events + 1)]
        started = time.perf_counter()
        position = 0
        while position < events:
            pipe = store.pipeline()
            for _ in range(per_pipeline):
                chunk = batch[position : position + per_call]
                if not chunk:
                    break
                store.queue_append(pipe, "ceiling", state.epoch, 10**9, chunk, final=False)
                position += len(chunk)
            replies = await store.execute(pipe)
            assert all(isinstance(x, int) and x >= 0 for x in replies), replies[:3]
        elapsed = time.perf_counter() - started
        assert await r.xlen(store.results_key("ceiling")) == events
        return events / elapsed


# ---- 2/3. workers end to end -----------------------------------------------------------------


async def prepare(url: str, lens_url: str, feeds: int, events: int) -> list[str]:
    """Feeds whose sessions already exist on the stand-in (the worker attaches to them)."""
    ws = lens_url.replace("http://", "ws://")
    async with aioredis.Redis.from_url(url) as r:
        await r.flushdb()
        store = FleetStore(r, PREFIX)
        ids = [f"feed-{n:05d}" for n in range(feeds)]
        for feed_id in ids:
            await store._create(
                keys=[store.state_key(feed_id), store.results_key(feed_id)],
                args=[msgspec.json.encode(LensFeed(feed_id=feed_id, lens_id="lns-bench")), "0"],
            )
        pipe = r.pipeline(transaction=False)
        for n, feed_id in enumerate(ids):
            session = f"lsn-bench{n:05d}-n{events}"
            pipe.hset(
                store.state_key(feed_id),
                mapping={
                    "session_id": session,
                    "endpoint": f"{ws}/lens/sessions/{session}",
                    "started": "1",
                    "status": "running",
                },
            )
        await pipe.execute()
        await store.ensure_group()
        return ids


async def enqueue(url: str, ids: list[str]) -> None:
    """Queue the prepared feeds (once every worker is up, so all start together)."""
    async with aioredis.Redis.from_url(url) as r:
        store = FleetStore(r, PREFIX)
        pipe = r.pipeline(transaction=False)
        for feed_id in ids:
            pipe.xadd(store.queue, {"feed": feed_id})
        await pipe.execute()


_SUM = """
local total = 0
for i = 1, #KEYS do total = total + (tonumber(redis.call('HGET', KEYS[i], 'delivered')) or 0) end
return total
"""


async def _delivered(store: FleetStore, ids: list[str]) -> int:
    """Events written so far: one script call, so polling costs Redis next to nothing
    (a pipeline of 2,000 HGETs every 50 ms would itself load Redis)."""
    total = await store.redis.eval(_SUM, len(ids), *(store.state_key(f) for f in ids))
    return int(total)


def _worker_args(url: str, name: str, capacity: int, lease: float) -> list[str]:
    return [
        "-m",
        "aiolens",
        "fleet",
        "worker",
        "--redis",
        url,
        "--prefix",
        PREFIX,
        "--capacity",
        str(capacity),
        "--lease",
        str(lease),
        "--name",
        name,
    ]


async def run_workers(
    url: str, lens_url: str, workers: int, feeds: int, events: int
) -> dict[str, float]:
    ids = await prepare(url, lens_url, feeds, events)
    total = feeds * (events + 1)  # + each stream's end event
    os.environ.update(ATAI_API_KEY="bench-key-not-secret", ATAI_API_ENDPOINT=lens_url)
    capacity = -(-feeds // workers)
    async with contextlib.AsyncExitStack() as stack, aioredis.Redis.from_url(url) as r:
        store = FleetStore(r, PREFIX)
        cpu0 = await _redis_cpu(r)
        procs = [
            (
                await stack.enter_async_context(
                    child(*_worker_args(url, f"w{n}", capacity, 30.0), ready=b"running")
                )
            )[0]
            for n in range(workers)
        ]
        marks: dict[float, float] = {}
        started = time.perf_counter()
        cpu_before = [_cpu_seconds(proc.pid) for proc in procs]
        await enqueue(url, ids)
        while True:
            done = await _delivered(store, ids)
            now = time.perf_counter()
            for fraction in (0.1, 0.9):
                if fraction not in marks and done >= fraction * total:
                    marks[fraction] = now
            if done >= total:
                break
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - started
        cpu = await _redis_cpu(r) - cpu0
        worker_cpu = sum(_cpu_seconds(p.pid) - c for p, c in zip(procs, cpu_before, strict=True))
        stats = {"events_written": 0, "round_trips": 0, "batches": 0}
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.stdout is not None
            try:
                async with asyncio.timeout(60):
                    out = (await proc.stdout.read()).decode()
            except TimeoutError:  # a worker that does not exit (a bug: see docs/fleet.md)
                print(f"   (worker {proc.pid} did not exit 60 s after SIGTERM; killed)", flush=True)
                proc.kill()
                out = ""
            for part in out.split():
                key, _, value = part.partition("=")
                if key in stats:
                    stats[key] += int(value)
        assert stats["events_written"] in (0, total) or len(procs) > 1, (stats, total)
        pipe = r.pipeline(transaction=False)
        for feed_id in ids:
            pipe.xlen(store.results_key(feed_id))
        assert sum(await pipe.execute()) == total
    rate = _rate(total, marks, wall)
    return {
        "rate": rate,
        "wall": wall,
        "round_trips_per_event": stats["round_trips"] / total,
        "events_per_batch": total / max(1, stats["batches"]),
        "redis_cpu_us_per_event": cpu / total * 1e6,
        "worker_cpu_us_per_event": worker_cpu / total * 1e6,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def plain(lens_url: str, feeds: int, events: int) -> float:
    """One process, no fleet: attach to the same sessions and read their SSE streams."""
    total = feeds * (events + 1)
    counted = 0
    marks: dict[float, float] = {}
    started = time.perf_counter()
    opening = asyncio.Semaphore(64)  # as many handshakes at once as a worker makes
    async with AsyncArchetypeClient("bench-key-not-secret", lens_url) as client:

        async def one(n: int) -> None:
            nonlocal counted
            session_id = f"lsn-bench{n:05d}-n{events}"
            ws = lens_url.replace("http://", "ws://") + f"/lens/sessions/{session_id}"
            async with opening:
                session = await client.attach_session(session_id, ws)
            async with session:
                async for event in session.raw_events(last_event_id="0", queue_size=256):
                    if event.type == "sse.stream.start":
                        continue
                    counted += 1
                    now = time.perf_counter()
                    for fraction in (0.1, 0.9):
                        if fraction not in marks and counted >= fraction * total:
                            marks[fraction] = now

        async with asyncio.TaskGroup() as group:
            for n in range(feeds):
                group.create_task(one(n))
    assert counted == total, (counted, total)
    return _rate(total, marks, time.perf_counter() - started)


def _rate(total: int, marks: dict[float, float], wall: float) -> float:
    """Events/s between 10 % and 90 % of ``total`` (the whole run when too short to tell)."""
    steady = marks[0.9] - marks[0.1]
    return 0.8 * total / steady if steady > 0.2 else total / wall


# ---- 4. takeover after kill -9 --------------------------------------------------------------


async def _serve_emulator(interval: float) -> None:
    from aiolens.emulator import Emulator

    async with Emulator(event_interval=interval, sse_heartbeat_interval=1.0) as emu:
        print(json.dumps({"lens_url": emu.lens_url, "api_key": emu.api_key}), flush=True)
        await asyncio.Event().wait()


async def takeover(url: str, feeds: int, lease: float) -> list[float]:
    """Seconds from kill -9 to events flowing again, per feed of the killed worker."""
    csv = b"t,a\n" + b"".join(b"%d,%d\n" % (i, i % 5) for i in range(200))
    async with child(
        "-m", "benchmarks.fleet", "emulator", "--interval", "0.01", ready=b"lens_url"
    ) as (_, line):
        info = json.loads(line)
        os.environ.update(ATAI_API_KEY=info["api_key"], ATAI_API_ENDPOINT=info["lens_url"])
        async with AsyncArchetypeClient(info["api_key"], info["lens_url"]) as lens:
            file_id = (await lens.files.upload(csv, filename="t.csv")).file_id
            lens_id = (
                await lens.lenses.register(
                    {
                        "model_pipeline": [{"processor_name": "lens_noop_processor"}],
                        "output_streams": [{"stream_type": "server_sent_events_writer"}],
                    }
                )
            ).lens_id
        async with aioredis.Redis.from_url(url) as r:
            await r.flushdb()
        async with Fleet(url, prefix=PREFIX) as fleet, contextlib.AsyncExitStack() as stack:
            ids = [f"live-{n}" for n in range(feeds)]
            for feed_id in ids:
                await fleet.submit(
                    LensFeed(
                        feed_id=feed_id,
                        lens_id=lens_id,
                        input_stream=InputStream(
                            "csv_file_reader",
                            {
                                "file_id": file_id,
                                "window_size": 2,
                                "step_size": 2,
                                "loop_recording": True,
                            },
                        ),
                    )
                )
            w1, _ = await stack.enter_async_context(
                child(*_worker_args(url, "w1", feeds, lease), ready=b"running")
            )

            async def flowing() -> bool:
                return all(s.delivered > 0 for s in [await fleet.status_of(f) for f in ids])

            await _until(flowing)
            await stack.enter_async_context(
                child(*_worker_args(url, "w2", feeds, lease), ready=b"running")
            )
            at_kill = {f: (await fleet.status_of(f)).delivered for f in ids}
            w1.send_signal(signal.SIGKILL)
            killed = time.perf_counter()
            resumed: dict[str, float] = {}
            while len(resumed) < len(ids):
                for feed_id in ids:
                    if feed_id in resumed:
                        continue
                    s = await fleet.status_of(feed_id)
                    if s.epoch >= 2 and s.delivered > at_kill[feed_id]:
                        resumed[feed_id] = time.perf_counter() - killed
                await asyncio.sleep(0.01)
            for feed_id in ids:
                await fleet.cancel(feed_id, wait=60)
    return sorted(resumed.values())


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float = 300) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110 - polling Redis
            await asyncio.sleep(0.05)


# ---- the runner -------------------------------------------------------------------------------


def _spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    low, mid, high = (fmt.format(f(values)) for f in (min, statistics.median, max))
    return f"{mid} ({low}..{high})"


async def _main(args: argparse.Namespace) -> None:
    raise_fd_limit()
    feeds, events, ceiling_events = args.feeds, args.events, args.ceiling_events
    if args.quick:
        feeds, events, ceiling_events = 20, 200, 5_000
    print(f"fleet benchmarks: {feeds} feeds x {events} events, {args.repeat} repeat(s)", flush=True)
    async with (
        redis_server() as url,
        child("-m", "benchmarks.standin", "--port", "0", ready=b"PORT") as (_, line),
    ):
        lens_url = f"http://127.0.0.1:{int(line.split()[1])}/v0.5"
        single, batched, one_worker, one_ratio = [], [], [], []
        for _ in range(args.repeat):
            single.append(await redis_ceiling(url, ceiling_events, 1, 100))
            batched.append(await redis_ceiling(url, ceiling_events, 100, 10))
            w = await run_workers(url, lens_url, 1, min(feeds, 100), events)
            one_worker.append(w["rate"])
            one_ratio.append(w["rate"] / single[-1])
        ceiling = statistics.median(single)
        print(
            f"1. Redis ceiling, fenced append, 1 event/call x 100/pipeline: {_spread(single)} ev/s"
        )
        print(f"   same script, 100 events/call x 10/pipeline: {_spread(batched)} ev/s")
        print(
            f"2. one worker end to end ({min(feeds, 100)} feeds): {_spread(one_worker)} ev/s; "
            f"ratio to the 1-event ceiling {_spread(one_ratio, '{:.2f}')}x, to the batched "
            f"ceiling {statistics.median(one_worker) / statistics.median(batched):.2f}x "
            f"(1-event ceiling median {ceiling:,.0f})"
        )
        base = [await plain(lens_url, feeds, events) for _ in range(args.repeat)]
        print(f"3. one process without the fleet ({feeds} feeds, SSE only): {_spread(base)} ev/s")
        for workers in args.workers:
            runs = [
                await run_workers(url, lens_url, workers, feeds, events) for _ in range(args.repeat)
            ]
            rates = [r["rate"] for r in runs]

            def col(key: str, fmt: str, runs: list[dict[str, float]] = runs) -> str:
                return _spread([r[key] for r in runs], fmt)

            ratio = statistics.median(rates) / statistics.median(base)
            print(
                f"   {workers} worker(s): {_spread(rates)} ev/s, ratio {ratio:.2f}x; "
                f"round trips/event {col('round_trips_per_event', '{:.4f}')}, "
                f"events/batch {col('events_per_batch', '{:.0f}')}, "
                f"Redis CPU {col('redis_cpu_us_per_event', '{:.1f}')} us/event, "
                f"worker CPU {col('worker_cpu_us_per_event', '{:.1f}')} us/event, "
                f"wall {col('wall', '{:.1f}')} s",
                flush=True,
            )
        if not args.no_takeover:
            times: list[float] = []
            for _ in range(args.repeat):
                times += await takeover(url, args.takeover_feeds, args.lease)
            mid, lease = statistics.median(times), args.lease
            print(
                f"4. takeover after kill -9, lease {lease:g}s, {args.takeover_feeds} feeds x "
                f"{args.repeat}: median {mid:.2f}s (lease + {mid - lease:.2f}s), min "
                f"{min(times):.2f}s, max {max(times):.2f}s (lease + {max(times) - lease:.2f}s)"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet")
    sub = parser.add_subparsers(dest="command")
    emulator = sub.add_parser("emulator")
    emulator.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--ceiling-events", type=int, default=50_000)
    parser.add_argument(
        "--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4]
    )
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--takeover-feeds", type=int, default=50)
    parser.add_argument("--no-takeover", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "emulator":
        asyncio.run(_serve_emulator(args.interval))
        return
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
