"""Run the benchmarks: ``python -m benchmarks`` (or ``python benchmarks/run.py``).

Servers run in their own processes: the stand-in (:mod:`benchmarks.standin`)
for the transport figures (cases 1-4) and the emulator
(:mod:`benchmarks.emulator_server`) for Kynasmith (case 5). The clients run in
this process, except case 4, which runs each measurement in a fresh process
so its RSS figures start from a clean heap, and the official SDK, which runs
in the interpreter that has it installed (:mod:`benchmarks.sdk_worker`).

Every case runs ``--repeat`` times; within a repeat the variants run one
after the other, in an order that rotates from repeat to repeat, so drift on
a noisy machine hits them alike (cases 1 and 2 go further: both clients stay
connected and take turns in ten blocks). The table shows medians, the spread
(min-max), the client's CPU time per operation, the share of wall time spent
in the garbage collector, and the ratio to the baseline measured in the same
run: the median of the per-repeat ratios (variant / baseline; for latency,
lower is better, for throughput higher).

Options: ``--quick`` (tiny sizes), ``--repeat N``, ``--cases 1,3``,
``--json PATH`` (``-`` for stdout, the table then goes to stderr),
``--sdk-python PATH`` / ``--no-sdk``, ``--profile CASE`` (cProfile the aiolens
variant of one case and print the hottest functions).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import cases
from benchmarks.cases import Sample
from benchmarks.standin import raise_fd_limit

__all__ = ["main"]

ROOT: Final = Path(__file__).resolve().parent.parent
SDK_WORKER: Final = Path(__file__).resolve().parent / "sdk_worker.py"
MEASURE_TIMEOUT: Final = 600.0
GC_ADVICE: Final = {
    "gc.freeze() once connected": ("--freeze",),
    "gc.set_threshold(50_000, 20)": ("--gc-threshold=50000,20",),
}
"""Case 4's extra variants at the largest count: the garbage-collector settings the README
suggests for many long-lived sessions."""

SIZES: Final[dict[str, dict[str, Any]]] = {
    "full": {
        "rtt": 5000,
        "rtt_sdk": 20,
        "pipelined": 20_000,
        "in_flight": 64,
        "sse": 100_000,
        "scale": [1, 10, 100, 1000, 8000],
        "scale_events": 100,
        "scale_requests": 10,
        "kyna_reps": 200,
        "link_rtts": [20],
        "link_windows": [1, 2, 4, 8, 16, 32, 64],
        "link_batches_per_window": 8,
        "link_min_batches": 16,
        "link_lens": 2560,
    },
    "quick": {
        "rtt": 300,
        "rtt_sdk": 5,
        "pipelined": 1000,
        "in_flight": 64,
        "sse": 10_000,
        "scale": [1, 10, 50],
        "scale_events": 20,
        "scale_requests": 5,
        "kyna_reps": 10,
        "link_rtts": [20],
        "link_windows": [1, 8, 64],
        "link_batches_per_window": 4,
        "link_min_batches": 8,
        "link_lens": 640,
    },
    "smoke": {  # the test suite's: just enough to run every code path
        "rtt": 10,
        "rtt_sdk": 2,
        "pipelined": 100,
        "in_flight": 8,
        "sse": 200,
        "scale": [1, 3],
        "scale_events": 5,
        "scale_requests": 2,
        "kyna_reps": 1,
        "link_rtts": [2],
        "link_windows": [1, 4],
        "link_batches_per_window": 2,
        "link_min_batches": 4,
        "link_lens": 64,
    },
}


# ---- servers --------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def server(module: str, *args: str) -> Iterator[str]:
    """Start ``python -m <module> --port 0 [args]`` and yield the first line it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *args],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError(f"{module} did not start (exit status {proc.wait(10)})")
        yield line
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# ---- results --------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: one variant of one case, all its repeats."""

    case: str
    variant: str
    metric: str  # "latency" (µs per op, lower is better) or "throughput" (ops/s)
    unit: str
    samples: list[Sample] = field(default_factory=list)
    baseline: str | None = None  # variant key of the baseline row
    skipped: str | None = None
    target: str = ""

    @property
    def key(self) -> str:
        return f"{self.case}/{self.variant}"

    def values(self) -> list[float]:
        if self.metric == "latency":
            return [s.wall / s.ops * 1e6 for s in self.samples if s.ops]
        return [s.ops / s.wall for s in self.samples if s.wall > 0]

    def median(self) -> float | None:
        values = self.values()
        return statistics.median(values) if values else None

    def cpu_per_op(self) -> float | None:
        values = [s.cpu / s.ops * 1e6 for s in self.samples if s.ops]
        return statistics.median(values) if values else None

    def lost(self) -> int:
        return sum(s.lost for s in self.samples)

    def gc_share(self) -> float | None:
        values = [s.extra["gc_s"] / s.wall for s in self.samples if "gc_s" in s.extra and s.wall]
        return statistics.median(values) if values else None

    def extra_median(self, name: str) -> float | None:
        values = [s.extra[name] for s in self.samples if name in s.extra]
        return statistics.median(values) if values else None


class Results:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.profiles: dict[str, dict[str, float]] = {}
        """Case 4: per session count, the share of profiled time per package."""

    def row(self, case: str, variant: str, metric: str, unit: str, **kw: Any) -> Row:
        key = f"{case}/{variant}"
        if key not in self.rows:
            self.rows[key] = Row(case, variant, metric, unit, **kw)
        return self.rows[key]

    def ratio(self, row: Row) -> float | None:
        """The median of the per-repeat ratios to the baseline (measured side by side)."""
        if row.baseline is None:
            return None
        base = self.rows.get(f"{row.case}/{row.baseline}")
        if base is None or not base.samples:
            return None
        mine, theirs = row.values(), base.values()
        if len(mine) == len(theirs) and all(theirs):
            return statistics.median(a / b for a, b in zip(mine, theirs, strict=True))
        m, t = row.median(), base.median()  # not paired (a row failed a repeat)
        return m / t if m is not None and t else None


# ---- the cases ------------------------------------------------------------------------------

Measure = Callable[[], Awaitable[Any]]
"""Measures once: a Sample, or a tuple of them (one per row of a paired entry)."""
Entry = tuple[tuple["Row", ...], Measure]


async def _measure(fn: Measure) -> Any:
    async with asyncio.timeout(MEASURE_TIMEOUT):
        return await fn()


def _rotate(items: list[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return items[shift:] + items[:shift]


def _sdk_sample(sdk_python: str, args: list[str]) -> Sample:
    out = subprocess.run(
        [sdk_python, str(SDK_WORKER), *args],
        capture_output=True,
        timeout=MEASURE_TIMEOUT,
        check=True,
        cwd=ROOT,
    )
    data = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return Sample(int(data["ops"]), float(data["wall"]), float(data["cpu"]), int(data["lost"]))


async def _sdk(sdk_python: str, args: list[str]) -> Sample:
    return await asyncio.to_thread(_sdk_sample, sdk_python, args)


def _scale_sample(port: int, sessions: int, events: int, requests: int, *args: str) -> Sample:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.cases",
            "scale",
            f"--port={port}",
            f"--sessions={sessions}",
            f"--events={events}",
            f"--requests={requests}",
            *args,
        ],
        capture_output=True,
        timeout=MEASURE_TIMEOUT,
        cwd=ROOT,
        env=_env(),
    )
    if out.returncode:
        raise RuntimeError(f"case 4 ({sessions} sessions) failed:\n{out.stderr.decode()}")
    data = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return Sample(**data)


async def run_cases(
    selected: set[int],
    sizes: dict[str, Any],
    repeat: int,
    sdk: tuple[str | None, str],
    results: Results,
    log: Callable[[str], None],
    profile_scale: bool = True,
) -> None:
    with contextlib.ExitStack() as stack:
        port = 0
        if selected & {1, 2, 3, 4, 6}:
            port = int(stack.enter_context(server("benchmarks.standin")).split()[1])
        emu: dict[str, str] = {}
        if 5 in selected:
            emu = json.loads(stack.enter_context(server("benchmarks.emulator_server")))
        links: dict[int, tuple[int, str]] = {}  # RTT ms -> (proxied stand-in port, Kynasmith URL)
        if 6 in selected:
            emu = emu or json.loads(stack.enter_context(server("benchmarks.emulator_server")))
            links = _links(stack, sizes["link_rtts"], port, emu["kynasmith_url"])
        plan = _plan(selected, sizes, sdk, results, port, emu, links)
        if 3 in selected:  # the stand-in encodes an event stream on first use: not timed
            await _measure(partial(cases.sse_floor, port, sizes["sse"]))
        for r in range(repeat):
            log(f"repeat {r + 1}/{repeat}")
            for group in plan:
                await _run_variants(group, r)
        if 4 in selected and profile_scale:
            log("case 4: profiling")
            for count in sizes["scale"]:
                sample = await asyncio.to_thread(
                    _scale_sample,
                    port,
                    count,
                    sizes["scale_events"],
                    sizes["scale_requests"],
                    "--profile",
                )
                results.profiles[_sessions_label(count)] = sample.extra["cpu_by_package"]


def _links(
    stack: contextlib.ExitStack, rtts: list[int], port: int, kynasmith_url: str
) -> dict[int, tuple[int, str]]:
    """Start a delay proxy before the stand-in and one before the emulator, per RTT."""
    parts = urlsplit(kynasmith_url)
    links = {}
    for rtt in rtts:
        delay = str(rtt / 2)
        standin = stack.enter_context(
            server("benchmarks.delay_proxy", f"--upstream=127.0.0.1:{port}", f"--delay-ms={delay}")
        )
        upstream = f"--upstream={parts.hostname}:{parts.port}"
        emulator = stack.enter_context(
            server("benchmarks.delay_proxy", upstream, f"--delay-ms={delay}")
        )
        url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{emulator.split()[1]}"))
        links[rtt] = (int(standin.split()[1]), url)
    return links


def _plan(
    selected: set[int],
    sizes: dict[str, Any],
    sdk: tuple[str | None, str],
    results: Results,
    port: int,
    emu: dict[str, str],
    links: dict[int, tuple[int, str]],
) -> list[list[Entry]]:
    """The groups of entries to measure; a group's entries run one after the other.

    An entry is a measurement and the rows its samples go to: one row, or two for
    the paired measurements of cases 1 and 2 (both clients in turns, see
    :func:`benchmarks.cases.round_trips`).
    """
    sdk_python, sdk_reason = sdk
    base = cases.lens_base(port)
    plan: list[list[Entry]] = []
    row = results.row

    if 1 in selected:
        case = "1 WS round trip, 1 in flight"
        raw = row(case, "raw websockets", "latency", "µs/req")
        mine = row(case, "aiolens request()", "latency", "µs/req", baseline=raw.variant)
        mine.target = "≤ 1.3"
        group: list[Entry] = [((raw, mine), partial(cases.round_trips, port, sizes["rtt"]))]
        sdk_row = row(case, "archetypeai sessions.write", "latency", "µs/req", baseline=raw.variant)
        if sdk_python:
            args = ["rtt", f"--base={base}", f"--n={sizes['rtt_sdk']}"]
            group.append(((sdk_row,), partial(_sdk, sdk_python, args)))
        else:
            sdk_row.skipped = sdk_reason
        plan.append(group)

    if 2 in selected:
        n, k = sizes["pipelined"], sizes["in_flight"]
        case = f"2 WS pipelined, {k} in flight"
        raw = row(case, "raw websockets", "throughput", "req/s")
        mine = row(case, f"aiolens, {k} tasks", "throughput", "req/s", baseline=raw.variant)
        mine.target = "≥ 1.0"
        plan.append([((raw, mine), partial(cases.pipelined, port, n, k))])

    if 3 in selected:
        n = sizes["sse"]
        case = "3 SSE typed events"
        floor = row(case, "naive split+msgspec", "throughput", "events/s")
        mine = row(case, "aiolens events()", "throughput", "events/s", baseline=floor.variant)
        mine.target = "≥ 0.9"
        untyped = row(
            case, "untyped split+msgspec", "throughput", "events/s", baseline=floor.variant
        )
        mine_untyped = row(
            case, "aiolens vs untyped floor", "throughput", "events/s", baseline=untyped.variant
        )
        group = [
            ((floor,), partial(cases.sse_floor, port, n)),
            ((mine, mine_untyped), partial(_twice, cases.sse_aiolens, port, n)),
            ((untyped,), partial(cases.sse_untyped_floor, port, n)),
        ]
        sdk_row = row(
            case, "archetypeai SSE reader", "throughput", "events/s", baseline=floor.variant
        )
        if sdk_python:
            args = ["sse", f"--base={base}", f"--n={n}"]
            group.append(((sdk_row,), partial(_sdk, sdk_python, args)))
        else:
            sdk_row.skipped = sdk_reason
        plan.append(group)

    if 4 in selected:
        case = "4 sessions, WS+SSE each"
        events, requests = sizes["scale_events"], sizes["scale_requests"]
        counts = sizes["scale"]
        base = _sessions_label(1000 if 1000 in counts else counts[0])
        group = []
        variants = [(count, _sessions_label(count), ()) for count in counts]
        largest = counts[-1]
        variants += [  # the README's advice for many sessions, measured
            (largest, f"{_sessions_label(largest)}, {label}", args)
            for label, args in GC_ADVICE.items()
        ]
        for count, label, args in variants:
            measure = partial(
                asyncio.to_thread, _scale_sample, port, count, events, requests, *args
            )
            baseline = None if label == base else base
            group.append(((row(case, label, "throughput", "msgs/s", baseline=baseline),), measure))
        plan.append(group)

    if 5 in selected:
        from aiolens.kynasmith.synthetic import generate_squats

        frames = generate_squats(sizes["kyna_reps"], seed=1)
        case = "5 Kynasmith frames, 15/batch"
        url, key = emu["kynasmith_url"], emu["kynasmith_api_key"]
        one = row(case, "stop-and-wait (window 1)", "throughput", "frames/s")
        eight = row(case, "pipelined (window 8)", "throughput", "frames/s", baseline=one.variant)
        plan.append(
            [
                ((one,), partial(cases.kyna_stream, url, key, frames, window=1)),
                ((eight,), partial(cases.kyna_stream, url, key, frames, window=8)),
            ]
        )
    if 6 in selected:
        plan.extend(_link_plan(sizes, results, emu, links))
    return plan


def _link_plan(
    sizes: dict[str, Any],
    results: Results,
    emu: dict[str, str],
    links: dict[int, tuple[int, str]],
) -> list[list[Entry]]:
    """Case 6: over a long link (:mod:`benchmarks.delay_proxy`), one group per RTT and window.

    Kynasmith frames (15 per batch, ``window`` batches unacknowledged) from
    aiolens to the emulator, against bare websockets pipelining the same
    message bytes to the stand-in (the baseline) and to the emulator (what
    the emulator alone can take); then Lens requests, 64 in flight.
    """
    from aiolens.kynasmith.models import FrameBatch, encoder
    from aiolens.kynasmith.synthetic import generate_squats

    key = emu["kynasmith_api_key"]
    row = results.row
    plan: list[list[Entry]] = []
    for rtt, (proxied, kyna_url) in links.items():
        case = f"6 {rtt} ms RTT, Kynasmith 15/batch"
        for window in sizes["link_windows"]:
            batches = max(sizes["link_min_batches"], sizes["link_batches_per_window"] * window)
            frames = generate_squats(batches // 6 + 1, seed=1)[: batches * 15]  # 90 per squat
            payload = encoder.encode(FrameBatch(batch_seq=1, frames=frames[:15]))
            raw = row(case, f"window {window:2d}: raw websockets", "throughput", "frames/s")
            mine = row(
                case, f"window {window:2d}: aiolens", "throughput", "frames/s", baseline=raw.variant
            )
            mine.target = "≥ 0.9"
            emulator = row(
                case,
                f"window {window:2d}: raw → emulator",
                "throughput",
                "frames/s",
                baseline=raw.variant,
            )
            url = cases.ws_url(proxied, "lsn-link-raw")
            plan.append(
                [
                    ((raw,), partial(cases.raw_window, url, payload, batches, window, 15)),
                    ((mine,), partial(cases.kyna_stream, kyna_url, key, frames, window=window)),
                    (
                        (emulator,),
                        partial(cases.raw_emulator_window, kyna_url, key, frames, window=window),
                    ),
                ]
            )
        n = sizes["link_lens"]
        case = f"6 {rtt} ms RTT, Lens 64 in flight"
        raw = row(case, "raw websockets", "throughput", "req/s")
        mine = row(case, "aiolens, 64 tasks", "throughput", "req/s", baseline=raw.variant)
        mine.target = "≥ 0.9"
        plan.append([((raw, mine), partial(cases.pipelined, proxied, n, 64))])
    return plan


async def _twice(fn: Callable[..., Awaitable[Sample]], *args: Any) -> tuple[Sample, Sample]:
    """One measurement reported in two rows (each row has its own baseline)."""
    sample = await fn(*args)
    return sample, sample


def _sessions_label(count: int) -> str:
    return f"{count} session{'s' if count != 1 else ''}"


async def _run_variants(entries: list[Entry], repeat: int) -> None:
    for rows, fn in _rotate(entries, repeat):
        result = await _measure(fn)
        samples = result if isinstance(result, tuple) else (result,)
        for target_row, sample in zip(rows, samples, strict=True):
            target_row.samples.append(sample)


# ---- reporting ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(results: Results) -> str:
    header = [
        "case",
        "variant",
        "median",
        "unit",
        "min..max",
        "CPU µs/op",
        "GC %",
        "ratio",
        "target",
        "lost",
    ]
    lines = [header]
    for row in results.rows.values():
        if row.skipped:
            lines.append([row.case, row.variant, row.skipped, *[""] * (len(header) - 3)])
            continue
        values = row.values()
        spread = f"{_fmt(min(values), 1)}..{_fmt(max(values), 1)}" if values else "-"
        ratio = results.ratio(row)
        unit = row.unit
        rss = row.extra_median("rss_peak_kib_per_session")
        if rss is not None:
            idle = row.extra_median("rss_connected_kib_per_session") or 0.0
            unit += f"; RSS/session {idle:.0f} KiB WS open, {rss:.0f} KiB peak"
        tracked = row.extra_median("tracked_per_session")
        if tracked is not None:
            unit += f"; {tracked:.0f} GC-tracked objects/session"
        connect = row.extra_median("connect_s")
        if connect:
            unit += f"; connect {row.extra_median('sessions') / connect:,.0f}/s"
        gc_share = row.gc_share()
        lines.append(
            [
                row.case,
                row.variant,
                _fmt(row.median(), 1),
                unit,
                spread,
                _fmt(row.cpu_per_op(), 1),
                f"{gc_share * 100:.0f}" if gc_share is not None else "-",
                f"{ratio:.2f}×"
                if ratio is not None
                else "baseline"
                if row.baseline is None
                else "-",
                row.target,
                str(row.lost()),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def profile_table(results: Results) -> str:
    """Case 4: where the CPU goes, per session count (cProfile, own time by package)."""
    if not results.profiles:
        return ""
    names = sorted({n for shares in results.profiles.values() for n in shares})
    names.sort(key=lambda n: -sum(p.get(n, 0.0) for p in results.profiles.values()))
    cpu = {
        row.variant: row.cpu_per_op() for row in results.rows.values() if row.case.startswith("4 ")
    }
    lines = [["sessions", "CPU µs/msg", *names]]
    for label, shares in results.profiles.items():
        per_msg = cpu.get(label)
        lines.append(
            [label, _fmt(per_msg, 1), *[f"{shares.get(n, 0.0) * 100:.0f}%" for n in names]]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = [
        "case 4, where the CPU goes: share of profiled CPU time (cProfile tottime, own code) by "
        "package; C = built-ins called from Python (sockets, select, msgspec ...)"
    ]
    for line in lines:
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return "\n".join(out)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("aiolens", "websockets", "aiohttp", "msgspec"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": versions,
    }


def to_json(results: Results, info: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for row in results.rows.values():
        rows.append(
            {
                "case": row.case,
                "variant": row.variant,
                "metric": row.metric,
                "unit": row.unit,
                "median": row.median(),
                "values": row.values(),
                "cpu_us_per_op": row.cpu_per_op(),
                "gc_share": row.gc_share(),
                "baseline": row.baseline,
                "ratio": results.ratio(row),
                "target": row.target or None,
                "lost": row.lost(),
                "skipped": row.skipped,
                "samples": [asdict(s) for s in row.samples],
            }
        )
    return {"machine": info, "args": args, "rows": rows, "case4_profile": results.profiles}


# ---- the SDK --------------------------------------------------------------------------------


def find_sdk(option: str | None, disabled: bool) -> tuple[str | None, str]:
    """The interpreter that has ``archetypeai``, or ``None`` and why it is skipped."""
    if disabled:
        return None, "skipped: --no-sdk"
    candidates = (
        [option] if option else [sys.executable, str(ROOT / ".venv-sdk" / "bin" / "python")]
    )
    for python in candidates:
        if not python or not Path(python).exists():
            continue
        probe = subprocess.run(
            [python, str(SDK_WORKER), "version"], capture_output=True, timeout=60, cwd=ROOT
        )
        if probe.returncode == 0:
            return python, json.loads(probe.stdout)["version"]
    return None, (
        "skipped: archetypeai not installed (it pins websockets<16; install it in its own "
        "venv, .venv-sdk, and/or pass --sdk-python)"
    )


# ---- profiling ------------------------------------------------------------------------------


async def profile_case(case: int, sizes: dict[str, Any]) -> str:
    """cProfile the aiolens variant of ``case`` once; the hottest functions, as text."""
    with contextlib.ExitStack() as stack:
        if case == 5:
            emu = json.loads(stack.enter_context(server("benchmarks.emulator_server")))
            from aiolens.kynasmith.synthetic import generate_squats

            frames = generate_squats(sizes["kyna_reps"], seed=1)
            url, key = emu["kynasmith_url"], emu["kynasmith_api_key"]
            fn: Measure = partial(cases.kyna_stream, url, key, frames, window=8)
        else:
            port = int(stack.enter_context(server("benchmarks.standin")).split()[1])
            fns: dict[int, Measure] = {
                1: partial(cases.round_trips, port, sizes["rtt"], only_aiolens=True),
                2: partial(
                    cases.pipelined,
                    port,
                    sizes["pipelined"],
                    sizes["in_flight"],
                    only_aiolens=True,
                ),
                3: partial(cases.sse_aiolens, port, sizes["sse"]),
                4: partial(
                    cases.scale,
                    port,
                    sizes["scale"][-1],
                    sizes["scale_events"],
                    sizes["scale_requests"],
                ),
            }
            fn = fns[case]
        await fn()  # warm-up
        profiler = cProfile.Profile()
        profiler.enable()
        result = await fn()
        profiler.disable()
    sample = result[-1] if isinstance(result, tuple) else result
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(30)
    return f"case {case}: {sample}\n{text.getvalue()}"


# ---- entry point ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="aiolens side by side with its baselines"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per case (default 5)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cases", default="1,2,3,4,5,6", help="which cases, e.g. 1,3")
    parser.add_argument(
        "--rtt", metavar="MS", help="case 6: round-trip times in ms (default 20), e.g. 20,50,100"
    )
    parser.add_argument("--json", metavar="PATH", help="also write JSON ('-': stdout)")
    parser.add_argument("--sdk-python", metavar="PATH", help="interpreter with archetypeai")
    parser.add_argument("--no-sdk", action="store_true", help="skip the official SDK rows")
    parser.add_argument("--profile", type=int, metavar="CASE", help="cProfile one case")
    parser.add_argument(
        "--no-scale-profile", action="store_true", help="skip case 4's per-package profile"
    )
    args = parser.parse_args(argv)

    sizes = dict(SIZES["smoke" if args.smoke else "quick" if args.quick else "full"])
    if args.rtt:
        sizes["link_rtts"] = [int(ms) for ms in args.rtt.split(",") if ms.strip()]
    selected = {int(c) for c in args.cases.split(",") if c.strip()}
    raise_fd_limit()
    to_stdout = args.json == "-"
    out = sys.stderr if to_stdout else sys.stdout

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.profile:
        print(asyncio.run(profile_case(args.profile, sizes)), file=out)
        return 0

    info = machine()
    needs_sdk = bool(selected & {1, 3})
    sdk = find_sdk(args.sdk_python, args.no_sdk or not needs_sdk)
    if sdk[0]:
        info["versions"]["archetypeai"] = sdk[1]
    results = Results()
    asyncio.run(
        run_cases(selected, sizes, args.repeat, sdk, results, log, not args.no_scale_profile)
    )

    print(
        f"{info['date']}  {info['cpus']} CPUs  {info['cpu_model']}  "
        f"Python {info['python']}  repeat={args.repeat}"
        f"{'  (quick)' if args.quick else ''}",
        file=out,
    )
    print(table(results), file=out)
    if results.profiles:
        print("\n" + profile_table(results), file=out)
    if args.json:
        data = json.dumps(to_json(results, info, vars(args)), indent=2)
        if to_stdout:
            print(data)
        else:
            Path(args.json).write_text(data + "\n")
    lost = sum(row.lost() for row in results.rows.values())
    if lost:
        print(f"LOST: {lost} operations did not complete", file=out)
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
