"""The aiolens command, run as a user would, against the emulator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from aiolens import AsyncArchetypeClient
from aiolens.emulator import Emulator

IMAGE_QA = "lns-fd669361822b07e2-237ab3ffd79199b0"


async def start_cli(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """``python -m aiolens *args`` with the caller's ``ATAI_*`` / ``KYNASMITH_*`` unset."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ATAI_", "KYNASMITH_"))}
    full_env["COLUMNS"] = "200"
    full_env.update(env or {})
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiolens",
        *args,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await start_cli(*args, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_sessions_list_show_destroy_reap(emulator: Emulator) -> None:
    env = {"ATAI_API_KEY": emulator.api_key, "ATAI_API_ENDPOINT": emulator.lens_url}
    async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url) as client:
        a = await client.sessions.create(IMAGE_QA)
        b = await client.sessions.create(IMAGE_QA)
        c = await client.sessions.create(IMAGE_QA)
    code, out, _ = await run_cli("sessions", "list", env=env)
    assert code == 0 and a.session_id in out and b.session_id in out
    code, out, _ = await run_cli("sessions", "show", a.session_id, env=env)
    assert code == 0 and a.session_id in out and b.session_id not in out
    code, out, _ = await run_cli("sessions", "destroy", a.session_id, env=env)
    assert code == 0 and "destroyed" in out
    assert emulator.lens.sessions[a.session_id].status == "SESSION_STATUS_DESTROYED"
    emulator.lens.sessions[b.session_id].registration_timestamp -= 3600
    code, out, _ = await run_cli("sessions", "reap", "--older-than", "30m", "--dry-run", env=env)
    assert code == 0 and "would be destroyed" in out
    assert emulator.lens.sessions[b.session_id].active
    code, out, _ = await run_cli("sessions", "reap", "--older-than", "30m", env=env)
    assert code == 0 and "destroyed 1 of 1" in out
    assert not emulator.lens.sessions[b.session_id].active
    assert emulator.lens.sessions[c.session_id].active


async def test_errors_are_one_line_without_traceback() -> None:
    code, _out, err = await run_cli("sessions", "list")
    assert code == 1
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "ATAI_API_KEY" in lines[0]


async def test_bad_key_is_one_line(emulator: Emulator) -> None:
    env = {"ATAI_API_KEY": "wrong-key-0000", "ATAI_API_ENDPOINT": emulator.lens_url}
    code, _, err = await run_cli("sessions", "list", env=env)
    assert code == 1 and "401" in err and "check the API key" in err
    assert "Traceback" not in err


async def test_demo_runs_the_pipeline() -> None:
    code, out, err = await run_cli("demo", "--lenses", "2")
    assert code == 0, err
    assert "events" in out and "IDLE" in out and "WARNING" in out
    assert "60" in out  # 2 sessions × 30 windows


async def test_sessions_list_and_show_print_json(emulator: Emulator) -> None:
    env = {"ATAI_API_KEY": emulator.api_key, "ATAI_API_ENDPOINT": emulator.lens_url}
    async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url) as client:
        a = await client.sessions.create(IMAGE_QA)
        b = await client.sessions.create(IMAGE_QA)
    code, out, _ = await run_cli("sessions", "list", "--json", env=env)
    assert code == 0
    rows = json.loads(out)
    assert {r["session_id"] for r in rows} == {a.session_id, b.session_id}
    assert all(r["lens_id"] == IMAGE_QA and r["age_sec"] >= 0 for r in rows)
    code, out, _ = await run_cli("sessions", "show", a.session_id, "--json", env=env)
    assert code == 0 and json.loads(out)["session_id"] == a.session_id
    assert emulator.api_key not in out


async def test_sessions_table_is_one_row_a_line_when_piped(emulator: Emulator) -> None:
    env = {
        "ATAI_API_KEY": emulator.api_key,
        "ATAI_API_ENDPOINT": emulator.lens_url,
        "COLUMNS": "40",
    }
    async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url) as client:
        ids = [(await client.sessions.create(IMAGE_QA)).session_id for _ in range(2)]
    code, out, _ = await run_cli("sessions", "list", env=env)
    assert code == 0
    for session_id in ids:
        (line,) = [line for line in out.splitlines() if session_id in line]
        assert IMAGE_QA in line and line.rstrip().endswith("│")


async def test_agents_run_wait_results_list(emulator: Emulator, tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    env = {"ATAI_API_KEY": emulator.api_key, "ATAI_API_ENDPOINT": emulator.lens_url}
    async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url) as client:
        bundle = await client.agents.bundles.create("osm", "cli bundle")
    recording = folder / "recording.csv"
    recording.write_text("t,ax,ay,az\n" + "".join(f"{i},0.0,0.01,1.0\n" for i in range(250)))
    code, out, err = await run_cli("agents", "run", bundle.id, str(recording), "--wait", env=env)
    assert code == 0, err
    assert "uploaded" in out and "completed: 3 windows" in out
    instance_id = out.split("started ", 1)[1].split()[0]
    code, out, _ = await run_cli("agents", "wait", instance_id, env=env)
    assert code == 0 and f"{instance_id} completed" in out
    code, out, _ = await run_cli(
        "agents", "results", instance_id, "--download", str(folder / "out"), env=env
    )
    assert code == 0 and "from recording.csv" in out and "saved 1 file(s)" in out
    saved = next((folder / "out").iterdir()).read_text().splitlines()
    assert [json.loads(line)["state"] for line in saved] == ["IDLE"] * 3
    code, out, _ = await run_cli("agents", "list", "--json", env=env)
    assert code == 0 and json.loads(out)[0]["id"] == instance_id
    code, out, _ = await run_cli("agents", "list", "blueprints", env=env)
    assert code == 0 and "osm" in out
    emulator.faults.agent_fail_after = 1
    code, out, _ = await run_cli("agents", "run", bundle.id, "recording.csv", "--wait", env=env)
    assert code == 1 and "failed" in out and "Injected fault" in out


async def test_files_upload_direct_and_list(emulator: Emulator, tmp_path: Path) -> None:
    emulator.lens.upload_part_size = 64 * 1024
    env = {"ATAI_API_KEY": emulator.api_key, "ATAI_API_ENDPOINT": emulator.lens_url}
    data = os.urandom(5 * 64 * 1024 + 1)
    (tmp_path / "clip.txt").write_bytes(data)
    code, out, err = await run_cli(
        "files", "upload", str(tmp_path / "clip.txt"), "--direct", env=env
    )
    assert code == 0, err
    assert "uploaded clip.txt" in out
    assert emulator.lens.files["clip.txt"].data == data
    (upload,) = emulator.lens.uploads.values()
    assert upload.num_parts == 6 and upload.state == "completed"
    code, out, _ = await run_cli(
        "files", "upload", str(tmp_path / "clip.txt"), "--proxy", "--name", "b.txt", env=env
    )
    assert code == 0 and "uploaded b.txt" in out and len(emulator.lens.uploads) == 1
    code, out, _ = await run_cli("files", "list", "--json", env=env)
    assert code == 0
    assert [f["file_id"] for f in json.loads(out)] == ["b.txt", "clip.txt"]
    code, _, err = await run_cli("files", "upload", str(tmp_path / "missing.txt"), env=env)
    assert code == 1 and "missing.txt" in err
