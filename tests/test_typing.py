"""What a type checker sees: typed options (a misspelt one is an error), typed result shapes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
from aiolens import AsyncArchetypeClient, AsyncKynasmithClient
from aiolens.integrations.starlette import Aiolens

async def main(client: AsyncArchetypeClient, kyna: AsyncKynasmithClient, aio: Aiolens) -> None:
    async with client.session("lns", max_in_flight=4, request_timeout=5.0) as session:
        reply = await session.query(focus="What is it?")
        text: list[str] = reply["response"]
        bound: bool = (await session.set_input_stream("csv_file_reader"))["is_valid"]
        print(text, bound)
    await client.open_session("lns", heartbeat_interval=None)
    async with client.attach("lsn", destroy_timeout=3.0):
        pass
    async with kyna.detection_session(movespec_id="m", window=4, ack_timeout=2.0):
        pass
    await aio.open_session("lns", reconnect=False)
"""

BAD = """
from aiolens import AsyncArchetypeClient, AsyncKynasmithClient
from aiolens.integrations.starlette import Aiolens

async def main(client: AsyncArchetypeClient, kyna: AsyncKynasmithClient, aio: Aiolens) -> None:
    async with client.session("lns", max_inflight=4) as session:
        reply = await session.query(focus="What is it?")
        wrong: int = reply["response"]
    await client.open_session("lns", request_timeout="5")
    async with kyna.detection_session(movespec_id="m", windows=4):
        pass
    await aio.open_session("lns", reconect=False)
"""


def mypy(source: str, tmp_path: Path) -> str:
    path = tmp_path / "user_code.py"
    path.write_text(source)
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return run.stdout + run.stderr


def test_correct_options_and_result_shapes_type_check(tmp_path: Path) -> None:
    assert mypy(GOOD, tmp_path) == ""


def test_misspelt_options_and_wrong_result_types_fail_type_checking(tmp_path: Path) -> None:
    out = mypy(BAD, tmp_path)
    assert 'Unexpected keyword argument "max_inflight"' in out, out
    assert 'Unexpected keyword argument "windows"' in out, out
    assert 'Unexpected keyword argument "reconect"' in out, out
    assert '"request_timeout"' in out and '"str"' in out, out
    assert 'has type "list[str]", variable has type "int"' in out, out
