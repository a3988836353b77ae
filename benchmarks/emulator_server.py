"""The aiolens emulator, configured for benchmarking, in its own process.

``python -m benchmarks.emulator_server --port 0`` starts
:class:`aiolens.emulator.Emulator` with events as fast as possible
(``event_interval=0``), rare SSE heartbeats and Kynasmith rate limits out of
the way, prints one JSON line (``lens_url``, ``api_key``, ``kynasmith_url``,
``kynasmith_api_key``) once it listens, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiolens.emulator import Emulator
from benchmarks.standin import raise_fd_limit

UNLIMITED = 10**9


async def _serve(port: int) -> None:
    emulator = Emulator(
        port=port,
        event_interval=0,
        sse_heartbeat_interval=60.0,
        kynasmith_limits={
            "project": UNLIMITED,
            "organization": UNLIMITED,
            "sessions": UNLIMITED,
            "movespecs": UNLIMITED,
        },
    )
    async with emulator:
        info = {
            "lens_url": emulator.lens_url,
            "api_key": emulator.api_key,
            "kynasmith_url": emulator.kynasmith_url,
            "kynasmith_api_key": emulator.kynasmith_api_key,
        }
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emulator_server")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    raise_fd_limit()
    asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
