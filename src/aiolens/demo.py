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
from collections.abc import AsyncIterator, Callable
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

console: Console = Console()

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
    live: bool = False

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
async def _target(live: bool) -> AsyncIterator[tuple[str, str | None]]:
    """The API key and base URL to use: the real service's, or an embedded emulator's."""
    if live:
        key = os.environ.get("ATAI_API_KEY")
        if not key:
            raise ConfigurationError(
                "--live needs an API key: set ATAI_API_KEY (and ATAI_API_ENDPOINT for "
                "another endpoint), or drop --live to use the embedded emulator"
            )
        yield key, None  # the client reads ATAI_API_ENDPOINT itself
        return
    from aiolens.emulator import Emulator

    async with Emulator(event_interval=0.002) as emu:
        yield emu.api_key, emu.lens_url


async def _one_session(
    client: AsyncArchetypeClient,
    lens_id: str,
    file_id: str,
    result: DemoResult,
    advance: Callable[[], None],
    *,
    windows: int,
    timeline: bool,
) -> None:
    """One session: measure round trips, bind output then input, consume until the end.

    It stops at the end of the SSE stream or after ``windows`` results. Leaving
    (also by cancel) destroys the session.
    """
    async with client.session(lens_id) as session:
        result.round_trips_ms.extend(await _round_trips(session))
        events = session.events()
        events.start()
        await session.set_output_stream("server_sent_events_writer")
        await session.set_input_stream(
            "csv_file_reader", file_id=file_id, window_size=WINDOW, step_size=STEP
        )
        seen = 0
        async for event in events:
            if isinstance(event, InferenceResult):
                state = event.text or "?"
                seen += 1
                result.events += 1
                result.states[state] += 1
                if timeline and (not result.timeline or result.timeline[-1] != state):
                    result.timeline.append(state)
                advance()
                if seen >= windows:
                    break


async def _round_trips(session: LensSession, count: int = 20) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await session.validate()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def run_lens_demo(*, lenses: int = 1, live: bool = False, quiet: bool = False) -> DemoResult:
    """Run the Lens demo pipeline with ``lenses`` concurrent sessions; returns what it measured.

    Against the embedded emulator unless ``live`` (then ``ATAI_API_KEY`` and
    ``ATAI_API_ENDPOINT`` say where; the CSVs are uploaded to your files).

    Cancel (Ctrl-C): every session is closed and destroyed and the demo lens
    deleted before the cancellation propagates.

    Raises:
        ConfigurationError: ``live`` without ``ATAI_API_KEY``.
    """
    if lenses < 1:
        raise ValueError("lenses must be at least 1")
    result = DemoResult(sessions=lenses, live=live)
    demo_csv = _data(DEMO_FILE)
    windows = _expected_windows(demo_csv)
    async with _target(live) as (key, url), AsyncArchetypeClient(key, url) as client:
        demo = await client.files.upload(demo_csv, filename=DEMO_FILE)
        n_shot = {}
        for state, name in EXAMPLES.items():
            n_shot[state] = (await client.files.upload(_data(name), filename=name)).file_id
        lens = await client.lenses.register(
            {
                "model_pipeline": [
                    {
                        "processor_name": "lens_timeseries_state_processor",
                        "processor_config": {"input_n_shot": n_shot},
                    }
                ],
                "model_parameters": {"window_size": WINDOW, "step_size": STEP},
                "output_streams": [{"stream_type": "server_sent_events_writer"}],
            },
            lens_name="aiolens demo: machine state",
        )
        try:
            with _progress("streaming", quiet) as progress:
                task = progress.add_task("events", total=windows * lenses)
                started = time.perf_counter()
                # A TaskGroup, not gather: on a cancel or an error it waits until every
                # session has been destroyed before the client closes.
                async with asyncio.TaskGroup() as group:
                    for n in range(lenses):
                        group.create_task(
                            _one_session(
                                client,
                                lens.lens_id,
                                demo.file_id,
                                result,
                                lambda: progress.advance(task),
                                windows=windows,
                                timeline=n == 0,
                            )
                        )
                result.seconds = time.perf_counter() - started
        finally:
            await client.lenses.delete(lens.lens_id)
    if not quiet:
        _print_summary(result)
    return result


def _print_summary(result: DemoResult) -> None:
    where = "live" if result.live else "emulated"
    table = Table(title=f"aiolens demo — Lens API ({where})", show_header=False)
    table.add_row("sessions", str(result.sessions))
    table.add_row("events", str(result.events))
    table.add_row("events/s", f"{result.events_per_second:,.0f}")
    rtt = statistics.median(result.round_trips_ms) if result.round_trips_ms else 0.0
    table.add_row("request round trip (median)", f"{rtt:.2f} ms")
    table.add_row("states found", ", ".join(f"{s} ×{n}" for s, n in result.states.most_common()))
    table.add_row("state timeline (session 1)", " → ".join(result.timeline[:12]))
    console.print(table)


async def run_kynasmith_demo(
    *, reps: int = 10, window: int = 8, quiet: bool = False
) -> tuple[int, int, float]:
    """Stream ``reps`` generated squats to the emulated Kynasmith API.

    Batches are pipelined, ``window`` awaiting acks at once. Cancel (Ctrl-C):
    the pending sends are cancelled and the detection session is cancelled
    server-side before the cancellation propagates.

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

                async with asyncio.TaskGroup() as group:  # pipelined, `window` in flight
                    for batch in batches:
                        group.create_task(send(batch))
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
        if args.live:
            raise ConfigurationError(
                "--live runs the Lens demo only; `aiolens demo kynasmith` uses the emulator"
            )
        await run_kynasmith_demo(reps=args.reps)
        return 0
    await run_lens_demo(lenses=args.lenses, live=args.live)
    return 0


def add_parser(sub: Any) -> None:
    """Register the ``demo`` subcommand on the CLI's subparsers."""
    from aiolens.cli_shared import positive_int

    demo = sub.add_parser("demo", help="run the pipeline end to end against the emulator")
    demo.add_argument("target", nargs="?", choices=["lens", "kynasmith"], default="lens")
    demo.add_argument(
        "--reps", type=positive_int, default=10, help="squats to stream (kynasmith; 10)"
    )
    demo.add_argument(
        "--lenses", type=positive_int, default=1, help="sessions to run concurrently (1)"
    )
    demo.add_argument(
        "--live", action="store_true", help="run against the real service (needs ATAI_API_KEY)"
    )
    demo.set_defaults(run=_run)
