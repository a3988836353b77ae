"""The ``aiolens`` command: ``demo``, ``emulate``, ``sessions``.

Errors print as one line (what failed, what to do) and exit with status 1;
``--debug`` shows the traceback and DEBUG logs instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from aiolens import AiolensError, AsyncArchetypeClient
from aiolens.errors import APIConnectionError, AuthenticationError, ConfigurationError

__all__ = ["main"]

console = Console()
err_console = Console(stderr=True)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``"30m"`` → 1800.0; units s, m, h, d (seconds when omitted)."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30m, 2h, 90s)")
    return float(match.group(1)) * _UNIT[match.group(2)]


# ---- emulate -----------------------------------------------------------------------------


async def _emulate(args: argparse.Namespace) -> int:
    from aiolens.emulator import Emulator

    emu = Emulator(host=args.host, port=args.port, api_key=args.api_key)
    await emu.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    console.print(f"[bold green]aiolens emulator[/] listening on {emu.base_url}")
    console.print(f"  Lens API        ATAI_API_ENDPOINT={emu.lens_url}")
    console.print(f"  Lens API key    ATAI_API_KEY={emu.api_key}")
    console.print(f"  Kynasmith API   KYNASMITH_BASE_URL={emu.kynasmith_url}")
    console.print(f"  Kynasmith key   KYNASMITH_API_KEY={emu.kynasmith_api_key}")
    console.print("Press Ctrl-C to stop.")
    try:
        await stop.wait()
    finally:
        await emu.stop()
    console.print("emulator stopped")
    return 0


# ---- sessions ----------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> AsyncArchetypeClient:
    return AsyncArchetypeClient(api_key=args.api_key, base_url=args.base_url)


def _age(summary: Any, now: float) -> float:
    if summary.session_duration_sec is not None:
        return float(summary.session_duration_sec)
    if summary.last_update_timestamp is not None:
        return now - float(summary.last_update_timestamp)
    return 0.0


def _sessions_table(rows: Sequence[Any], now: float) -> Table:
    table = Table("session_id", "lens_id", "status", "age")
    for s in rows:
        table.add_row(s.session_id, s.lens_id or "", s.status.value, _fmt_age(_age(s, now)))
    return table


def _fmt_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


async def _sessions(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        now = time.time()
        if args.action == "list":
            rows = await client.sessions.metadata()
            if not rows:
                console.print("no active sessions")
            else:
                console.print(_sessions_table(rows, now))
            return 0
        if args.action == "show":
            found = await client.sessions.metadata(args.session_id)
            if not found:
                raise AiolensError(f"session {args.session_id} not found")
            console.print(_sessions_table(found, now))
            return 0
        if args.action == "destroy":
            done = await client.sessions.destroy(args.session_id)
            console.print(f"destroyed {done.session_id} ({done.status.value})")
            return 0
        # reap
        rows = [s for s in await client.sessions.metadata() if _age(s, now) >= args.older_than]
        if not rows:
            console.print(f"no sessions older than {_fmt_age(args.older_than)}")
            return 0
        console.print(_sessions_table(rows, now))
        if args.dry_run:
            console.print(f"{len(rows)} session(s) would be destroyed (dry run)")
            return 0
        results = await asyncio.gather(
            *(client.sessions.destroy(s.session_id) for s in rows), return_exceptions=True
        )
        failed = [(s, r) for s, r in zip(rows, results, strict=True) if isinstance(r, Exception)]
        for s, r in failed:
            err_console.print(f"[red]could not destroy {s.session_id}:[/] {r}")
        console.print(f"destroyed {len(rows) - len(failed)} of {len(rows)} session(s)")
        return 1 if failed else 0


# ---- entry point -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aiolens`` command."""
    parser = argparse.ArgumentParser(
        prog="aiolens",
        description="asyncio client, demo and local emulator for real-time inference APIs",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and DEBUG logs")
    sub = parser.add_subparsers(dest="command", required=True)

    emulate = sub.add_parser("emulate", help="serve the emulated Lens and Kynasmith APIs")
    emulate.add_argument("--host", default="127.0.0.1")
    emulate.add_argument("--port", type=int, default=8765)
    emulate.add_argument("--api-key", default=None, help="Lens API key to accept (random)")
    emulate.set_defaults(run=_emulate)

    sessions = sub.add_parser("sessions", help="list, show, destroy or reap Lens sessions")
    sessions.add_argument("--api-key", default=None, help="default: $ATAI_API_KEY")
    sessions.add_argument("--base-url", default=None, help="default: $ATAI_API_ENDPOINT")
    actions = sessions.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="active sessions")
    show = actions.add_parser("show", help="one session")
    show.add_argument("session_id")
    destroy = actions.add_parser("destroy", help="destroy one session")
    destroy.add_argument("session_id")
    reap = actions.add_parser("reap", help="destroy sessions older than a duration")
    reap.add_argument("--older-than", type=parse_duration, required=True, metavar="DURATION")
    reap.add_argument("--dry-run", action="store_true", help="only list what would go")
    sessions.set_defaults(run=_sessions)

    _add_demo(sub)
    return parser


def _add_demo(sub: Any) -> None:
    from aiolens.demo import add_parser

    add_parser(sub)


def _hint(exc: BaseException) -> str:
    if isinstance(exc, ConfigurationError):
        return " — set ATAI_API_KEY or pass --api-key"
    if isinstance(exc, AuthenticationError):
        return " — check the API key"
    if isinstance(exc, APIConnectionError):
        return " — check --base-url / ATAI_API_ENDPOINT and your network"
    return ""


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]] = args.run
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
    except (AiolensError, OSError, ValueError) as exc:
        if args.debug:
            raise
        _fail(f"{args.command}: {exc}{_hint(exc)}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
