"""Every Python block in the README and every program in examples/ runs, as a user would."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


async def run(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATAI_", "KYNASMITH_"))}
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_readme_has_blocks() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
async def test_readme_block_runs(index: int, tmp_path: Path) -> None:
    code = BLOCKS[index]
    if "def test_" in code:  # a test module for the user's own suite: run it with pytest
        (tmp_path / "test_readme_example.py").write_text(code)
        args = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            str(tmp_path / "test_readme_example.py"),
        ]
    else:
        (tmp_path / "block.py").write_text(code)
        args = [sys.executable, str(tmp_path / "block.py")]
    code_, out, err = await run(*args, cwd=tmp_path)
    assert code_ == 0, f"README block {index} failed:\n{out}\n{err}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
async def test_example_runs(path: Path) -> None:
    code, out, err = await run(sys.executable, str(path))
    assert code == 0, err
    assert out.strip(), "an example should print what it did"


async def test_emulate_serves_until_interrupted() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiolens",
        "emulate",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any("Ctrl-C" in line for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "emulate exited early"
            lines.append(line.decode())
        text = "".join(lines)
        endpoint = re.search(r"ATAI_API_ENDPOINT=(\S+)", text)
        key = re.search(r"ATAI_API_KEY=(\S+)", text)
        kyna = re.search(r"KYNASMITH_BASE_URL=(\S+)", text)
        assert endpoint and key and kyna
        from aiolens import AsyncArchetypeClient

        async with AsyncArchetypeClient(key.group(1), endpoint.group(1)) as client:
            assert await client.lenses.metadata()
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
