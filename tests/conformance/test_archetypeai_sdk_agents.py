"""The official ``archetypeai`` SDK drives the emulated Agents API through its real flows.

As ``test_archetypeai_sdk.py``, in the SDK's own virtualenv: develop (blueprints
with YAML and versions, bundles, the node registry, a refused bad value),
execute (run with a bare file id, ``wait_until_done``, results, events, logs,
pause / resume / cancel, delete's 204), evaluate (macro-F1 report, examples),
optimize (trials, promote, delete), serving as the vendor's example repo drives
it (query and the connect socket), and the 26.8 layout (agents at the host root).
"""

from __future__ import annotations

from pathlib import Path

from aiolens.emulator import Emulator
from tests.conformance.sdk_venv import assert_driver_passed, run_driver

DRIVER = Path(__file__).with_name("agents_driver.py")
EXPECTED_FLOWS = {
    "agents develop",
    "agents execute",
    "agents evaluate",
    "agents optimize",
    "agents serving",
    "agents 26.8 layout",
}


async def test_the_official_sdk_drives_the_agents_api(sdk: Path, tmp_path: Path) -> None:
    async with Emulator() as emu:
        lines, err = await run_driver(sdk, DRIVER, emu.base_url, emu.api_key, str(tmp_path))
    assert_driver_passed(lines, err, EXPECTED_FLOWS, 30)
