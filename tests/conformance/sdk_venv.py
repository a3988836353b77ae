"""The official ``archetypeai`` SDK in a virtualenv of its own, made on demand.

The SDK pins ``websockets<16`` (aiolens needs 16), so it cannot live in the
project's environment. ``.venv-sdk/`` (gitignored; the benchmarks use the same
one) is created the first time it is needed, with the pinned version from
PyPI, and reused after. ``python -m tests.conformance.sdk_venv`` makes it
ahead of time (``.ci/run`` does) and exits non-zero when it cannot.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Final

from tests.vendor_venv import ensure_venv

ROOT: Final = Path(__file__).resolve().parents[2]
SDK_VENV: Final = ROOT / ".venv-sdk"
SDK_VERSION: Final = "26.10.14.0"
SDK_REQUIREMENT: Final = f"archetypeai=={SDK_VERSION}"


_PROBE: Final = (
    f"import archetypeai.api_client as c, sys; sys.exit(0 if c._VERSION == {SDK_VERSION!r} else 1)"
)


def sdk_python() -> tuple[Path | None, str]:
    """The SDK venv's interpreter, creating the venv if needed; or ``None`` and why not.

    Made by :func:`tests.vendor_venv.ensure_venv` (``python -m venv`` and ``pip
    install archetypeai==<pin>``, serialised by a file lock, bounded by timeouts).
    """
    return ensure_venv(SDK_VENV, base=[sys.executable], installs=[[SDK_REQUIREMENT]], probe=_PROBE)


async def run_driver(python: Path, driver: Path, *args: str) -> tuple[list[dict[str, Any]], str]:
    """Run a driver script in the SDK venv; its JSON lines (checks, then ``done``) and stderr.

    Bounded by a hang guard (300 s, not a speed assertion); the process is
    killed if it outlives it.
    """
    proc = await asyncio.create_subprocess_exec(
        str(python),
        str(driver),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(300):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    return lines, err.decode()


def assert_driver_passed(
    lines: list[dict[str, Any]], err: str, flows: set[str], min_checks: int
) -> None:
    """Print the driver's checks as a table; assert each passed and every flow ran."""
    checks = [line for line in lines if "check" in line]
    failed = [c for c in checks if not c["ok"]]
    sys.stdout.write("".join(f"{c['flow']:18} | {c['check']:50} | {c['ok']}\n" for c in checks))
    assert lines and lines[-1] == {"done": True, "failures": 0}, (failed, err[-2000:])
    assert {c["flow"] for c in checks} == flows
    assert len(checks) >= min_checks


if __name__ == "__main__":
    found, why = sdk_python()
    print(found or why)
    raise SystemExit(0 if found else 1)
