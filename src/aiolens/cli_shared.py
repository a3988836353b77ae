"""What the ``aiolens`` command's parts share: consoles, argument types, common options.

``cli`` and its subcommand modules (``cli_files``, ``agents_cli``, ``demo``,
``fleet.cli``) import from here, never from each other's entry point, so no
import cycle runs through :mod:`aiolens.cli`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

import msgspec

from aiolens._extras import require_extra

require_extra("cli", "the aiolens command", "rich", "yaml")

from rich.console import Console  # noqa: E402

from aiolens import AsyncArchetypeClient  # noqa: E402
from aiolens._core.options import check_seconds  # noqa: E402
from aiolens.errors import ConfigurationError  # noqa: E402

__all__ = [
    "_client",
    "_connection_options",
    "_json_option",
    "_print_json",
    "_seconds",
    "console",
    "err_console",
    "parse_duration",
    "positive_int",
]

# Piped, a table keeps its natural width (one row a line, whatever $COLUMNS says), so
# scripts can grep it; `--json` is the format meant for them.
console: Console = Console(width=None if sys.stdout.isatty() else 100_000)
# soft_wrap: an error stays one line, never folded at the terminal width.
err_console: Console = Console(stderr=True, soft_wrap=True, highlight=False)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``"30m"`` → 1800.0; units s, m, h, d (seconds when omitted)."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30m, 2h, 90s)")
    return float(match.group(1)) * _UNIT[match.group(2)]


def positive_int(text: str) -> int:
    """An argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        return check_seconds("seconds", float(text))
    except ValueError:  # not a number, or ConfigurationError: 0, negative, nan, inf
        raise argparse.ArgumentTypeError(f"not a finite number of seconds > 0: {text!r}") from None


def _client(args: argparse.Namespace) -> AsyncArchetypeClient:
    if not (args.api_key or os.environ.get("ATAI_API_KEY")):
        raise ConfigurationError(
            "no API key: set ATAI_API_KEY (`aiolens emulate` prints one) or pass --api-key"
        )
    return AsyncArchetypeClient(api_key=args.api_key, base_url=args.base_url, timeout=args.timeout)


def _print_json(value: Any) -> None:
    """``value`` (models, lists, dicts) as one JSON document on stdout, secrets masked."""
    sys.stdout.write(msgspec.json.encode(value, enc_hook=str).decode() + "\n")


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON (for scripts) instead of a table"
    )


def _connection_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """``--api-key``, ``--base-url``, ``--timeout``; with ``suppress``, absent ones set nothing."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--api-key", default=default(None), help="default: $ATAI_API_KEY")
    parser.add_argument("--base-url", default=default(None), help="default: $ATAI_API_ENDPOINT")
    parser.add_argument(
        "--timeout", type=_seconds, default=default(30.0), help="seconds per HTTP attempt (30)"
    )
