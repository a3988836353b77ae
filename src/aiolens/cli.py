"""The ``aiolens`` command: ``demo``, ``emulate``, ``sessions``, ``agents``, ``fleet``.

Errors print as one line on stderr (what failed, what to do) and exit with
status 1; ``--debug`` shows the traceback and DEBUG logs instead. Bad
arguments exit with status 2 (argparse). Ctrl-C cancels the running command,
which closes what it opened (sessions are destroyed), prints ``interrupted``
and exits with status 130.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn

import msgspec

from aiolens._extras import require_extra

require_extra("cli", "the aiolens command", "rich", "yaml")

from rich.markup import escape  # noqa: E402
from rich.table import Table  # noqa: E402

from aiolens import AiolensError, __version__  # noqa: E402
from aiolens.cli_shared import (  # noqa: E402
    _client,
    _connection_options,
    _json_option,
    _print_json,
    console,
    err_console,
    parse_duration,
)
from aiolens.errors import (  # noqa: E402
    APIConnectionError,
    AuthenticationError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

__all__ = ["main"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0..65535; 0 picks a free one)")
    return value


def _kynasmith_key(text: str) -> str:
    key_id, sep, secret = text.partition(":")
    if not (sep and key_id.strip() and secret.strip()):
        raise argparse.ArgumentTypeError("a Kynasmith key looks like <key_id>:<key_secret>")
    return text


# ---- emulate -----------------------------------------------------------------------------


async def _emulate(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM, then stop the server (closing its connections)."""
    from aiolens.emulator import Emulator

    emu = Emulator(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        kynasmith_api_key=args.kynasmith_key,
        sse_replay=args.sse_replay,
        session_ttl_sec=args.session_ttl,
    )
    await emu.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        console.print(f"[bold green]aiolens emulator[/] listening on {emu.base_url}")
        console.print("In another shell, export these (Lens API, then Kynasmith API):")
        for line in (
            f"export ATAI_API_ENDPOINT={emu.lens_url}",
            f"export ATAI_API_KEY={emu.api_key}",
            f"export KYNASMITH_BASE_URL={emu.kynasmith_url}",
            f"export KYNASMITH_API_KEY={emu.kynasmith_api_key}",
            f"export KYNASMITH_PROJECT_ID={emu.kynasmith.project_id}",
        ):
            # one line each, never folded: they are copied into a shell
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
        console.print(
            f"The Agents API is at {emu.base_url}/agents (found from ATAI_API_ENDPOINT); "
            f"the platform layout (Lens, files, agents) at {emu.platform_url}.",
            highlight=False,
            soft_wrap=True,
        )
        console.print("Press Ctrl-C to stop.")
        await stop.wait()
    finally:
        await emu.stop()
    console.print("emulator stopped")
    return 0


# ---- sessions ----------------------------------------------------------------------------


def _age(summary: Any, now: float) -> float:
    if summary.session_duration_sec is not None:
        return float(summary.session_duration_sec)
    if summary.last_update_timestamp is not None:
        return now - float(summary.last_update_timestamp)
    return 0.0


def _status(summary: Any) -> str:
    return str(summary.session_status).removeprefix("SESSION_STATUS_")


def _sessions_table(rows: Sequence[Any], now: float) -> Table:
    # Ids are never truncated: they are what `show` and `destroy` take.
    longest = max(len(s.session_id) for s in rows)
    table = Table(title=f"{len(rows)} active session(s)")
    table.add_column("session_id", no_wrap=True, min_width=longest)
    table.add_column("lens_id", overflow="fold")
    table.add_column("status", overflow="fold")
    table.add_column("age", no_wrap=True)
    for s in rows:
        table.add_row(s.session_id, s.lens_id or "", _status(s), _fmt_age(_age(s, now)))
    return table


def _session_details(summary: Any, now: float) -> Table:
    table = Table(show_header=False, title=summary.session_id)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("session_id", summary.session_id)
    table.add_row("lens_id", summary.lens_id or "")
    table.add_row("status", summary.session_status)
    table.add_row("age", _fmt_age(_age(summary, now)))
    table.add_row("endpoint", summary.session_endpoint or "")
    return table


def _session_json(summary: Any, now: float) -> dict[str, Any]:
    return {**msgspec.to_builtins(summary, enc_hook=str), "age_sec": round(_age(summary, now), 3)}


def _fmt_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


async def _sessions(args: argparse.Namespace) -> int:
    """Run one ``sessions`` action; the client (and its connections) close on exit or cancel."""
    async with _client(args) as client:
        now = time.time()
        if args.action == "list":
            rows = await client.sessions.metadata()
            if args.json:
                _print_json([_session_json(s, now) for s in rows])
            elif not rows:
                console.print("no active sessions")
            else:
                console.print(_sessions_table(rows, now))
            return 0
        if args.action == "show":
            found = await client.sessions.metadata(args.session_id)
            if not found:
                raise AiolensError(
                    f"session {args.session_id} is not active"
                    " — `aiolens sessions list` shows the active sessions"
                )
            if args.json:
                _print_json(_session_json(found[0], now))
            else:
                console.print(_session_details(found[0], now))
            return 0
        if args.action == "destroy":
            done = await client.sessions.destroy(args.session_id)
            console.print(f"destroyed {done.session_id} ({done.session_status})")
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
            err_console.print(f"[red]could not destroy {s.session_id}:[/] {escape(_describe(r))}")
        console.print(f"destroyed {len(rows) - len(failed)} of {len(rows)} session(s)")
        return 1 if failed else 0


# ---- entry point -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aiolens`` command."""
    parser = argparse.ArgumentParser(
        prog="aiolens",
        description="asyncio client, demo and local emulator for real-time inference APIs",
    )
    parser.add_argument("--version", action="version", version=f"aiolens {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and DEBUG logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    emulate = sub.add_parser("emulate", help="serve the emulated Lens and Kynasmith APIs")
    emulate.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    emulate.add_argument("--port", type=_port, default=8765, help="0 picks a free one")
    emulate.add_argument("--api-key", default=None, help="Lens API key to accept (random)")
    emulate.add_argument(
        "--kynasmith-key",
        type=_kynasmith_key,
        default=None,
        metavar="KEY_ID:SECRET",
        help="Kynasmith API key to accept (random); the project id derives from its key id",
    )
    emulate.add_argument(
        "--sse-replay",
        action="store_true",
        help="SSE consumers without Last-Event-ID also get past events (default: live only)",
    )
    emulate.add_argument(
        "--session-ttl",
        type=parse_duration,
        default=86400.0,
        metavar="DURATION",
        help="destroy Lens sessions idle this long (default 24h)",
    )
    emulate.set_defaults(run=_emulate)

    sessions = sub.add_parser("sessions", help="list, show, destroy or reap Lens sessions")
    _connection_options(sessions)
    actions = sessions.add_subparsers(dest="action", required=True, metavar="ACTION")
    # The connection options are accepted after the action too (`sessions list --api-key K`).
    after = argparse.ArgumentParser(add_help=False)
    _connection_options(after, suppress=True)
    listing = actions.add_parser("list", help="active sessions", parents=[after])
    _json_option(listing)
    show = actions.add_parser("show", help="one session", parents=[after])
    _json_option(show)
    show.add_argument("session_id")
    destroy = actions.add_parser("destroy", help="destroy one session", parents=[after])
    destroy.add_argument("session_id")
    reap = actions.add_parser(
        "reap", help="destroy sessions older than a duration", parents=[after]
    )
    reap.add_argument("--older-than", type=parse_duration, required=True, metavar="DURATION")
    reap.add_argument("--dry-run", action="store_true", help="only list what would go")
    sessions.set_defaults(run=_sessions)

    _add_files(sub)
    _add_demo(sub)
    _add_agents(sub)
    _add_fleet(sub)
    return parser


def _add_files(sub: Any) -> None:
    from aiolens.cli_files import add_parser

    add_parser(sub)


def _add_demo(sub: Any) -> None:
    from aiolens.demo import add_parser

    add_parser(sub)


def _add_agents(sub: Any) -> None:
    from aiolens.agents_cli import add_parser

    add_parser(sub)


def _add_fleet(sub: Any) -> None:
    try:
        from aiolens.fleet.cli import add_parser
    except ImportError as exc:  # the optional extra is not installed (MissingExtraError)
        missing_extra = exc

        async def missing(args: argparse.Namespace) -> int:
            raise missing_extra

        fleet = sub.add_parser("fleet", help="fleet of workers (needs aiolens[fleet])")
        fleet.add_argument("rest", nargs=argparse.REMAINDER)
        fleet.set_defaults(run=missing)
        return
    add_parser(sub)


def _hint(exc: BaseException, command: str) -> str:
    """What to do about ``exc``, as `` — ...`` (empty when the message says it)."""
    endpoint = "--base-url / ATAI_API_ENDPOINT" if command == "sessions" else "ATAI_API_ENDPOINT"
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return " — check the API key (ATAI_API_KEY or --api-key)"
    if isinstance(exc, NotFoundError) and command == "sessions":
        return " — `aiolens sessions list` shows the active sessions"
    if isinstance(exc, RateLimitError):
        return " — too many requests or sessions; wait, or reap old sessions"
    if isinstance(exc, InternalServerError):
        return " — the service failed; try again later"
    if isinstance(exc, APIConnectionError):
        return f" — check {endpoint} and your network"
    if isinstance(exc, AiolensError):
        return ""
    if isinstance(exc, OSError) and command == "emulate":
        return " — try another --port (0 picks a free one) or --host"
    return " — run with --debug for the traceback"


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # one line, whatever the message holds
    if isinstance(exc, AiolensError | OSError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}")
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
        err_console.print("interrupted")
        return 130
    except Exception as exc:
        if args.debug:
            raise
        _fail(f"{args.command}: {_describe(exc)}{_hint(exc, args.command)}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
