"""Every code block in the README and every program in examples/ runs, as a user would.

Python blocks run as scripts (or with pytest when they hold tests); shell blocks
run in bash with this virtualenv's ``bin`` first on ``PATH``, the emulator
walkthrough against a real ``aiolens emulate`` with the variables it printed.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import sys
import tomllib
from pathlib import Path

import pytest

from aiolens import AsyncArchetypeClient
from aiolens.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
SHELL = re.findall(r"```bash\n(.*?)```", README, re.S)
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# What each example must print: proof it did its job, not just that it exited.
EXAMPLE_OUTPUT = {
    "agents_flow.py": "socket: 10 answers, in order: True",
    "csv_stream.py": "'WARNING'",
    "fastapi_app.py": "sessions left: 0",
    "image_qa.py": "answer: ",
    "kynasmith_replay.py": "completed: 390 frames, 5 squats",
    "mailbox_lens.py": "result: 50 rows",
    "many_sessions.py": "sessions left running: 0",
    "quickstart.py": "SESSION_STATUS_REGISTERED",
}

SETUP = next(b for b in SHELL if "pip install" in b)
EMULATE = next(b for b in SHELL if b.startswith("aiolens emulate"))
SESSIONS = next(b for b in SHELL if b.startswith("aiolens sessions"))
PLAIN_SHELL = [b for b in SHELL if b not in (SETUP, EMULATE, SESSIONS, "python -m pytest\n")]


def user_env(**extra: str) -> dict[str, str]:
    """This environment minus any credentials, with the venv's ``bin`` first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATAI_", "KYNASMITH_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "100"
    env.update(extra)
    return env


async def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=env or user_env(),
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
            str(tmp_path / "test_readme_example.py"),
        ]
    else:
        (tmp_path / "block.py").write_text(code)
        args = [sys.executable, str(tmp_path / "block.py")]
    code_, out, err = await run(*args, cwd=tmp_path)
    assert code_ == 0, f"README block {index} failed:\n{out}\n{err}"


def test_every_example_is_checked() -> None:
    assert sorted(EXAMPLE_OUTPUT) == [p.name for p in EXAMPLES]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
async def test_example_runs(path: Path) -> None:
    code, out, err = await run(sys.executable, str(path))
    assert code == 0, err
    assert EXAMPLE_OUTPUT[path.name] in out, out


def test_readme_setup_block() -> None:
    """The first command: a venv, an editable install with the dev extra, then the demo.

    The install needs the network, so it is checked against pyproject.toml; the
    demo it ends with runs in the next test.
    """
    steps = [step.strip() for step in SETUP.strip().split("&&")]
    assert steps[0].startswith("python3 -m venv .venv")
    assert steps[-1] == "aiolens demo"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "dev" in pyproject["project"]["optional-dependencies"]
    assert pyproject["project"]["scripts"]["aiolens"] == "aiolens.__main__:run"
    # the demo and the tests need the emulator and the command: dev brings every extra
    assert any(
        dep.startswith("aiolens[all")
        for dep in pyproject["project"]["optional-dependencies"]["dev"]
    )
    assert "python -m pytest\n" in SHELL  # the second command: this suite


async def test_readme_setup_block_demo_runs() -> None:
    demo = SETUP.strip().split("&&")[-1]
    code, out, err = await run("bash", "-e", "-c", demo)
    assert code == 0, err
    assert "events/s" in out and "WARNING" in out


@pytest.mark.parametrize("index", range(len(PLAIN_SHELL)))
async def test_readme_shell_block_runs(index: int, tmp_path: Path) -> None:
    code, out, err = await run("bash", "-e", "-c", PLAIN_SHELL[index], cwd=tmp_path)
    assert code == 0, f"README shell block failed:\n{PLAIN_SHELL[index]}\n{out}\n{err}"


async def test_readme_emulator_walkthrough() -> None:
    """`aiolens emulate` in one shell; its export lines and `aiolens sessions` in another."""
    # The README's command, on a free port so that the test never collides.
    args = [*shlex.split(EMULATE.strip()), "--port", "0"]
    proc = await asyncio.create_subprocess_exec(
        *args, env=user_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any("Ctrl-C" in line for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "emulate exited early"
            lines.append(line.decode())
        exports = "".join(line for line in lines if line.strip().startswith("export "))
        for name in ("ATAI_API_ENDPOINT", "ATAI_API_KEY", "KYNASMITH_BASE_URL"):
            assert f"export {name}=" in exports
        endpoint = re.search(r"ATAI_API_ENDPOINT=(\S+)", exports)
        key = re.search(r"ATAI_API_KEY=(\S+)", exports)
        assert endpoint and key
        async with AsyncArchetypeClient(key.group(1), endpoint.group(1)) as client:
            lens = (await client.lenses.metadata())[0].lens_id
            session = await client.sessions.create(lens)
            await client.sessions.create(lens)  # too young for `reap`
            script = f"{exports}\nSESSION_ID={session.session_id}\n{SESSIONS}"
            code, out, err = await run("bash", "-e", "-c", script)
            assert code == 0, f"{out}\n{err}"
            assert f"destroyed {session.session_id}" in out
            assert len(await client.sessions.metadata()) == 1  # younger than 30m: kept
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err


async def test_readme_sessions_block_reaps_old_sessions(emulator: Emulator) -> None:
    async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url) as client:
        lens = (await client.lenses.metadata())[0].lens_id
        shown, old, young = [await client.sessions.create(lens) for _ in range(3)]
    emulator.lens.sessions[old.session_id].registration_timestamp -= 3600
    env = user_env(
        ATAI_API_KEY=emulator.api_key,
        ATAI_API_ENDPOINT=emulator.lens_url,
        SESSION_ID=shown.session_id,
    )
    code, out, err = await run("bash", "-e", "-c", SESSIONS, env=env)
    assert code == 0, f"{out}\n{err}"
    assert "1 session(s) would be destroyed (dry run)" in out and "destroyed 1 of 1" in out
    assert [s.session_id for s in emulator.lens.active_sessions()] == [young.session_id]
