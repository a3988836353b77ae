"""``aiolens demo``: the whole Lens pipeline against the embedded emulator in seconds.

It uploads a bundled sensor CSV and three labelled example files, registers a
time-series lens with n-shot examples and an SSE writer, opens session(s),
binds the output then the input, consumes the results live, and destroys the
session(s). ``aiolens demo kynasmith`` streams generated squats instead and
reports the counted repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aiolens import AsyncArchetypeClient
from aiolens.archetype.events import InferenceResult
from aiolens.archetype.session import LensSession
from aiolens.errors import ConfigurationError

__all__ = ["add_parser", "run_kynasmith_demo", "run_lens_demo"]

console = Console()

DEMO_FILE = "sensor_demo.csv"
EXAMPLES = {
    "IDLE": "sensor_idle.csv",
    "NORMAL": "sensor_normal.csv",
    "WARNING": "sensor_warning.csv",
}
WINDOW = 100
STEP = 100


@dataclass
class DemoResult:
    """What one demo run measured."""

    sessions: int = 0
    events: int = 0
    seconds: float = 0.0
    round_trips_ms: list[float] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    timeline: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _progress(label: str, quiet: bool) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )


def _data(name: str) -> bytes:
    return resources.files("aiolens.data").joinpath(name).read_bytes()


def _expected_windows(csv_bytes: bytes) -> int:
    rows = max(0, csv_bytes.count(b"\n") - 1)
    return max(0, (rows - WINDOW) // STEP + 1)


@contextlib.asynccontextmanager
async def _target(live: bool) -> AsyncIterator[tuple[str, str]]:
    if live:
        key = os.environ.get("ATAI_API_KEY")
        if not key:
            raise ConfigurationError("--live needs ATAI_API_KEY (and optionally ATAI_API_ENDPOINT)")
        yield key, os.environ.get("ATAI_API_ENDPOINT", "")
        return
    from aiolens.emulator import Emulator

    async with Emulator(event_interval=0.002) as emu:
        yield emu.api_key, emu.lens_url


async def _one_session(
    client: AsyncArchetypeClient, lens_id: str, result: DemoResult, advance: Any
) -> None:
    async with client.session(lens_id) as session:
        result.round_trips_ms.extend(await _round_trips(session))
        events = session.events()
        events.start()
        await session.set_output_stream("server_sent_events_writer")
        await session.set_input_stream(
            "csv_file_reader", file_id=DEMO_FILE, window_size=WINDOW, step_size=STEP
        )
        async for event in events:
            if isinstance(event, InferenceResult):
                state = event.text or "?"
                result.events += 1
                result.states[state] += 1
                if not result.timeline or result.timeline[-1] != state:
                    result.timeline.append(state)
                advance()


async def _round_trips(session: LensSession, count: int = 20) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await session.validate()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def run_lens_demo(*, lenses: int = 1, live: bool = False, quiet: bool = False) -> DemoResult:
    """Run the Lens demo pipeline; returns what it measured."""
    result = DemoResult(sessions=lenses)
    demo_csv = _data(DEMO_FILE)
    total = _expected_windows(demo_csv) * lenses
    async with _target(live) as (key, url), AsyncArchetypeClient(key, url or None) as client:
        await client.files.upload(demo_csv, filename=DEMO_FILE)
        for name in EXAMPLES.values():
            await client.files.upload(_data(name), filename=name)
        lens = await client.lenses.register(
            {
                "model_pipeline": [
                    {
                        "processor_name": "lens_timeseries_state_processor",
                        "processor_config": {"input_n_shot": EXAMPLES},
                    }
                ],
                "model_parameters": {"window_size": WINDOW, "step_size": STEP},
                "output_streams": [{"stream_type": "server_sent_events_writer"}],
            },
            lens_name="aiolens demo: machine state",
        )
        try:
            with _progress("streaming", quiet) as progress:
                task = progress.add_task("events", total=total)
                started = time.perf_counter()
                await asyncio.gather(
                    *(
                        _one_session(client, lens.lens_id, result, lambda: progress.advance(task))
                        for _ in range(lenses)
                    )
                )
                result.seconds = time.perf_counter() - started
        finally:
            await client.lenses.delete(lens.lens_id)
    if not quiet:
        _print_summary(result)
    return result


def _print_summary(result: DemoResult) -> None:
    table = Table(title="aiolens demo — Lens API (emulated)", show_header=False)
    table.add_row("sessions", str(result.sessions))
    table.add_row("events", str(result.events))
    table.add_row("events/s", f"{result.events_per_second:,.0f}")
    rtt = statistics.median(result.round_trips_ms) if result.round_trips_ms else 0.0
    table.add_row("request round trip (median)", f"{rtt:.2f} ms")
    table.add_row("states found", ", ".join(f"{s} ×{n}" for s, n in result.states.most_common()))
    table.add_row("state timeline", " → ".join(result.timeline[:12]))
    console.print(table)


async def run_kynasmith_demo(
    *, reps: int = 10, window: int = 8, quiet: bool = False
) -> tuple[int, int, float]:
    """Stream ``reps`` generated squats to the emulated Kynasmith API.

    Returns:
        (repetitions counted by the server, frames accepted, frames per second).
    """
    from aiolens.emulator import Emulator
    from aiolens.kynasmith import AsyncKynasmithClient
    from aiolens.kynasmith.models import EventCompleted
    from aiolens.kynasmith.synthetic import generate_squats

    frames = generate_squats(reps, seed=7)
    batches = [frames[i : i + 15] for i in range(0, len(frames), 15)]
    async with (
        Emulator() as emu,
        AsyncKynasmithClient(emu.kynasmith_api_key, base_url=emu.kynasmith_url) as client,
    ):
        specs = await client.movespecs.list(visibility="public")
        squat = next(s.movespec_id for s in specs if s.name == "squat")
        async with client.detection_session(movespec_id=squat, window=window) as det:
            with _progress("streaming squats", quiet) as progress:
                task = progress.add_task("frames", total=len(frames))
                started = time.perf_counter()

                async def send(batch: list[Any]) -> None:
                    await det.send(batch)
                    progress.advance(task, len(batch))

                await asyncio.gather(*(send(b) for b in batches))
                done = await det.finalize()
                seconds = time.perf_counter() - started
            counted = [e async for e in det.events() if isinstance(e, EventCompleted)]
    rate = done.accepted_frames_total / seconds if seconds else 0.0
    if not quiet:
        table = Table(title="aiolens demo — Kynasmith Detection API (emulated)", show_header=False)
        table.add_row("squats generated", str(reps))
        table.add_row("repetitions counted", str(len(counted)))
        table.add_row("frames accepted", f"{done.accepted_frames_total} in {len(batches)} batches")
        table.add_row("frames/s (with acks)", f"{rate:,.0f}")
        table.add_row("session", f"{det.session_id} → {done.status}")
        console.print(table)
    return len(counted), done.accepted_frames_total, rate


async def _run(args: argparse.Namespace) -> int:
    if args.target == "kynasmith":
        await run_kynasmith_demo(reps=args.reps)
        return 0
    await run_lens_demo(lenses=args.lenses, live=args.live)
    return 0


def add_parser(sub: Any) -> None:
    """Register the ``demo`` subcommand on the CLI's subparsers."""
    demo = sub.add_parser("demo", help="run the pipeline end to end against the emulator")
    demo.add_argument("target", nargs="?", choices=["lens", "kynasmith"], default="lens")
    demo.add_argument("--reps", type=int, default=10, help="squats to stream (kynasmith)")
    demo.add_argument("--lenses", type=int, default=1, help="sessions to run concurrently")
    demo.add_argument("--live", action="store_true", help="use the real service (ATAI_API_KEY)")
    demo.set_defaults(run=_run)
