"""``aiolens fleet``: ``worker``, ``submit``, ``cancel``, ``status``, ``results``.

Every subcommand takes ``--redis URL`` (default ``$AIOLENS_REDIS_URL``, then
``redis://127.0.0.1:6379/0``) and ``--prefix``. ``worker`` also needs the Lens
API key and endpoint (``ATAI_API_KEY``, ``ATAI_API_ENDPOINT`` or ``--api-key``,
``--base-url``). SIGTERM or Ctrl-C makes a worker hand its feeds back and exit 0
(each step of the stop bounded, however many feeds it runs; if closing its
connections afterwards takes longer than :data:`CLOSE_TIMEOUT`, it prints its
tasks to stderr and exits 0 anyway: its feeds are handed back by then). ``kill
-USR1`` prints every task's await chain to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from aiolens.cli_shared import _seconds as _positive_float
from aiolens.cli_shared import positive_int as _positive_int
from aiolens.errors import ConfigurationError
from aiolens.fleet.spec import FleetError

__all__ = ["add_parser"]

console: Console = Console()
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CLOSE_TIMEOUT = 30.0
"""Seconds a stopped worker waits for its Lens and Redis connections to close."""


def _redis_errors(run: Callable[[argparse.Namespace], Awaitable[int]]) -> Any:
    """Turn "Redis unreachable" into one clear error line (what to check)."""

    @functools.wraps(run)
    async def wrapped(args: argparse.Namespace) -> int:
        import redis.exceptions

        try:
            return await run(args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise FleetError(
                f"cannot reach Redis at {args.redis}: {exc} — check --redis or $AIOLENS_REDIS_URL"
            ) from exc

    return wrapped


def add_parser(sub: Any) -> None:
    """Add ``fleet`` and its subcommands to the ``aiolens`` parser."""
    fleet = sub.add_parser("fleet", help="run Lens feeds on a fleet of workers through Redis")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--redis",
        default=os.environ.get("AIOLENS_REDIS_URL", DEFAULT_REDIS_URL),
        metavar="URL",
        help="Redis URL (default: $AIOLENS_REDIS_URL, then redis://127.0.0.1:6379/0)",
    )
    common.add_argument("--prefix", default="aiolens:fleet", help="key prefix of the fleet")
    actions = fleet.add_subparsers(dest="action", required=True, metavar="ACTION")

    worker = actions.add_parser("worker", help="run feeds until SIGTERM", parents=[common])
    worker.add_argument("--capacity", type=_positive_int, default=100, help="feeds at once")
    worker.add_argument(
        "--lease", type=_positive_float, default=30.0, help="lease seconds (default 30)"
    )
    worker.add_argument("--name", default=None, help="consumer name (default host-pid)")
    worker.add_argument("--api-key", default=None, help="default: $ATAI_API_KEY")
    worker.add_argument("--base-url", default=None, help="default: $ATAI_API_ENDPOINT")
    worker.set_defaults(run=_redis_errors(_worker))

    submit = actions.add_parser(
        "submit", help="queue feeds from a JSON spec (or a list)", parents=[common]
    )
    submit.add_argument("spec", help="a JSON file, or - for stdin")
    submit.add_argument("--replace", action="store_true", help="replace a feed that is over")
    submit.set_defaults(run=_redis_errors(_submit))

    cancel = actions.add_parser("cancel", help="destroy a feed's session, end it", parents=[common])
    cancel.add_argument("feed_id")
    cancel.add_argument(
        "--wait", type=_positive_float, default=None, metavar="SECONDS", help="wait until over"
    )
    cancel.set_defaults(run=_redis_errors(_cancel))

    status = actions.add_parser("status", help="the feeds and who runs them", parents=[common])
    status.add_argument("feed_id", nargs="?", help="one feed (default: all)")
    status.add_argument("--json", action="store_true", help="JSON instead of a table")
    status.set_defaults(run=_redis_errors(_status))

    results = actions.add_parser("results", help="a feed's results as JSON lines", parents=[common])
    results.add_argument("feed_id")
    results.add_argument("--follow", action="store_true", help="wait for more until it ends")
    results.add_argument("--after", default="0", help="results entry id to continue after")
    results.set_defaults(run=_redis_errors(_results))


async def _worker(args: argparse.Namespace) -> int:
    import redis.asyncio as aioredis

    from aiolens import AsyncArchetypeClient
    from aiolens.fleet import FleetWorker

    if not (args.api_key or os.environ.get("ATAI_API_KEY")):
        raise ConfigurationError("no Lens API key: set ATAI_API_KEY or pass --api-key")
    lens = AsyncArchetypeClient(args.api_key, args.base_url)
    # Callers wait for one of 64 connections rather than opening one per feed.
    pool = aioredis.BlockingConnectionPool.from_url(args.redis, max_connections=64, timeout=None)
    redis = aioredis.Redis.from_pool(pool)  # closing the client closes the pool
    try:
        worker = FleetWorker(
            redis,
            lens,
            name=args.name,
            capacity=args.capacity,
            lease=args.lease,
            prefix=args.prefix,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, worker.stop)
        with contextlib.suppress(NotImplementedError, AttributeError):
            loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)  # what is it waiting on?
        print(f"fleet worker {worker.name} running (capacity {worker.capacity})", flush=True)
        await worker.run()
        print(
            f"fleet worker {worker.name} stopped: events_written="
            f"{worker.writer.events_written} round_trips={worker.store.round_trips} "
            f"batches={worker.writer.batches} takeovers={worker.takeovers}",
            flush=True,
        )
    finally:
        await _close_or_exit(lens.aclose, redis.aclose)
    return 0


async def _close_or_exit(*closes: Callable[[], Awaitable[None]]) -> None:
    """Close the worker's connections; past :data:`CLOSE_TIMEOUT`, dump the tasks and
    exit the process (status 0: the stop itself is done). Cancel: the closes go on."""
    closing = asyncio.ensure_future(_in_order(closes))
    done, _ = await asyncio.wait((closing,), timeout=CLOSE_TIMEOUT)
    if not done:
        print(f"fleet worker: connections not closed after {CLOSE_TIMEOUT:g}s", file=sys.stderr)
        _dump_tasks()
        sys.stdout.flush()
        os._exit(0)  # asyncio.run would wait for the stuck tasks
    closing.result()


async def _in_order(closes: tuple[Callable[[], Awaitable[None]], ...]) -> None:
    for close in closes:
        await close()


def _dump_tasks() -> None:
    """Print every task's await chain to stderr (``kill -USR1`` a worker that seems stuck).

    One line per task (its name), then one line per coroutine it awaits, innermost last:
    ``Task.print_stack`` shows a suspended task's outermost frame only.
    """
    out = sys.stderr
    for task in asyncio.all_tasks():
        print(f"task {task.get_name()!r}:", file=out)
        for where in _await_chain(task.get_coro()):
            print(f"    {where}", file=out)
    out.flush()


def _await_chain(coro: Any) -> list[str]:
    chain: list[str] = []
    while coro is not None and len(chain) < 40:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        frame = frame or getattr(coro, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            chain.append(f"{code.co_filename}:{frame.f_lineno} {code.co_name}")
        following = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
        coro = following or getattr(coro, "gi_yieldfrom", None)
    if coro is not None:  # a future or an awaitable object
        chain.append(repr(coro)[:200])
    return chain


def _fleet(args: argparse.Namespace) -> Any:
    from aiolens.fleet import Fleet

    return Fleet(args.redis, prefix=args.prefix)


async def _submit(args: argparse.Namespace) -> int:
    from aiolens.fleet import decode_spec

    text = sys.stdin.read() if args.spec == "-" else _read(args.spec)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{args.spec}: not JSON: {exc}") from None
    items = parsed if isinstance(parsed, list) else [parsed]
    specs = [decode_spec(json.dumps(item)) for item in items]
    async with _fleet(args) as fleet:
        for spec in specs:
            await fleet.submit(spec, replace=args.replace)
            console.print(f"submitted {spec.feed_id}", markup=False, highlight=False)
    return 0


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None


async def _cancel(args: argparse.Namespace) -> int:
    async with _fleet(args) as fleet:
        status = await fleet.cancel(args.feed_id, wait=args.wait)
    console.print(f"{status.feed_id}: {status.status}", markup=False, highlight=False)
    return 0


async def _status(args: argparse.Namespace) -> int:
    async with _fleet(args) as fleet:
        rows = [await fleet.status_of(args.feed_id)] if args.feed_id else await fleet.status()
    if args.json:
        sys.stdout.write(msgspec.json.encode(rows).decode() + "\n")
        return 0
    if not rows:
        console.print("no feeds")
        return 0
    table = Table(title=f"{len(rows)} feed(s)")
    for column in ("feed_id", "status", "owner", "epoch", "delivered", "last id", "session"):
        table.add_column(column, overflow="fold")
    for s in rows:
        table.add_row(
            s.feed_id,
            s.status + (f" ({s.error})" if s.error else ""),
            s.owner,
            str(s.epoch),
            str(s.delivered),
            s.last_event_id,
            s.session_id,
        )
    console.print(table)
    return 0


async def _results(args: argparse.Namespace) -> int:
    out = sys.stdout
    async with _fleet(args) as fleet:
        async for r in fleet.results(args.feed_id, after=args.after, follow=args.follow):
            head = json.dumps({"entry_id": r.entry_id, "event_id": r.event_id, "epoch": r.epoch})[
                :-1
            ]
            out.write(f'{head}, "event": {r.data}}}\n')
            out.flush()
    return 0
