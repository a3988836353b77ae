"""The newcomer path through the ``aiolens`` command: Ctrl-C, narrow terminals, bad input."""

from __future__ import annotations

import asyncio
import signal
import uuid

from aiolens import AsyncArchetypeClient
from aiolens.demo import run_lens_demo
from aiolens.emulator import Emulator
from aiolens.emulator.kynasmith_store import KynasmithState
from tests.test_cli import IMAGE_QA, start_cli

LIVE_ENV = ("ATAI_API_KEY", "ATAI_API_ENDPOINT")


async def run_cli(*args: str, columns: int = 80, **env: str) -> tuple[int, str, str]:
    """Run ``python -m aiolens ARGS`` as in an 80-column terminal (or ``columns``)."""
    proc = await start_cli(*args, env={"COLUMNS": str(columns), **env})
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


async def test_ctrl_c_mid_demo_destroys_every_session_and_the_lens() -> None:
    # The --live path against our own emulator, slowed down so the demo is mid-stream.
    async with Emulator(event_interval=0.5) as emu:
        builtin = set(emu.lens.lenses)
        env = {"ATAI_API_KEY": emu.api_key, "ATAI_API_ENDPOINT": emu.lens_url, "COLUMNS": "80"}
        proc = await start_cli("demo", "--live", "--lenses", "5", env=env)
        try:
            while sum(s.input_data_stream_id is not None for s in emu.lens.active_sessions()) < 5:
                assert proc.returncode is None, "the demo exited early"
                await asyncio.sleep(0.01)
            # One destroy answers at once, four stall and need a retry: the demo must
            # wait for them all before it closes its client.
            emu.faults.fail_next(503, path="/lens/sessions/destroy", count=4, delay=0.2)
        finally:
            proc.send_signal(signal.SIGINT)
            _out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 130
        assert one_line(err.decode()) == "interrupted"
        assert emu.lens.active_sessions() == []
        assert set(emu.lens.lenses) == builtin  # the demo lens was deleted


async def test_demo_live_runs_against_the_endpoint_in_the_environment(emulator: Emulator) -> None:
    code, out, err = await run_cli(
        "demo", "--live", ATAI_API_KEY=emulator.api_key, ATAI_API_ENDPOINT=emulator.lens_url
    )
    assert code == 0, err
    assert "Lens API (live)" in out
    assert len(emulator.lens.sessions) == 1 and emulator.lens.active_sessions() == []


async def test_demo_reports_what_it_measured() -> None:
    one = await run_lens_demo(quiet=True)
    three = await run_lens_demo(lenses=3, quiet=True)
    assert one.events == 30 and three.events == 90  # 3000 rows, windows of 100
    assert sum(three.states.values()) == three.events
    assert set(three.states) == {"IDLE", "NORMAL", "WARNING"}
    assert len(three.round_trips_ms) == 3 * 20 and min(three.round_trips_ms) > 0
    assert three.seconds > 0 and three.events_per_second == three.events / three.seconds
    # the timeline follows one session, not an interleaving of all of them
    assert three.timeline == one.timeline


async def test_errors_stay_one_line_in_a_narrow_terminal() -> None:
    code, _, err = await run_cli(
        "sessions", "--base-url", "http://127.0.0.1:1/v0.5", "list", columns=40, ATAI_API_KEY="k"
    )
    assert code == 1
    line = one_line(err)
    assert line.startswith("error: sessions: Cannot connect") and "ATAI_API_ENDPOINT" in line


async def test_missing_key_says_what_to_set() -> None:
    code, _, err = await run_cli("demo", "--live")
    assert code == 1
    line = one_line(err)
    assert "ATAI_API_KEY" in line and "--api-key" not in line  # demo has no --api-key
    code, _, err = await run_cli("sessions", "list")
    assert code == 1
    assert "ATAI_API_KEY" in one_line(err) and "api_key=..." not in err


async def test_kynasmith_demo_refuses_live() -> None:
    code, _, err = await run_cli("demo", "kynasmith", "--live")
    assert code == 1 and "Lens demo only" in one_line(err)


async def test_counts_and_ports_are_checked_by_the_parser() -> None:
    for args in (("demo", "--lenses", "0"), ("demo", "kynasmith", "--reps", "-1")):
        code, _, err = await run_cli(*args)
        assert code == 2 and "must be at least 1" in err and "Traceback" not in err
    code, _, err = await run_cli("emulate", "--port", "99999")
    assert code == 2 and "not a port" in err and "Traceback" not in err
    code, _, err = await run_cli("sessions", "--timeout", "0", "list")
    assert code == 2 and "not a finite number of seconds > 0" in err


async def test_emulate_on_a_busy_port_is_one_line(emulator: Emulator) -> None:
    code, _, err = await run_cli("emulate", "--port", str(emulator.port))
    assert code == 1
    assert "another --port" in one_line(err)


async def emulate_exports(*args: str) -> dict[str, str]:
    """Start ``aiolens emulate ARGS`` in a 40-column terminal; its export lines; stop it."""
    proc = await start_cli("emulate", "--port", "0", *args, env={"COLUMNS": "40"})
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not lines or "Ctrl-C" not in lines[-1]:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "emulate exited early"
            lines.append(line.decode().strip())
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0 and not err
    return dict(
        line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export ")
    )


async def test_emulate_prints_export_lines_that_are_never_folded() -> None:
    exports = await emulate_exports()
    assert set(exports) == {
        "ATAI_API_ENDPOINT",
        "ATAI_API_KEY",
        "KYNASMITH_BASE_URL",
        "KYNASMITH_API_KEY",
        "KYNASMITH_PROJECT_ID",
    }
    assert ":" in exports["KYNASMITH_API_KEY"] and exports["ATAI_API_ENDPOINT"].endswith("/v0.5")
    assert str(uuid.UUID(exports["KYNASMITH_PROJECT_ID"])) == exports["KYNASMITH_PROJECT_ID"]


async def test_a_pinned_kynasmith_key_keeps_its_project_id() -> None:
    key = "kid_pinned:0123456789abcdef"
    exports = await emulate_exports("--kynasmith-key", key)
    assert exports["KYNASMITH_API_KEY"] == key
    assert exports["KYNASMITH_PROJECT_ID"] == KynasmithState(api_key=key).project_id
    code, _, err = await run_cli("emulate", "--kynasmith-key", "no-colon")
    assert code == 2 and "<key_id>:<key_secret>" in err and "Traceback" not in err


async def test_sessions_list_and_show_print_whole_ids(emulator: Emulator) -> None:
    env = {"ATAI_API_KEY": emulator.api_key, "ATAI_API_ENDPOINT": emulator.lens_url}
    async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url) as client:
        a = await client.sessions.create(IMAGE_QA)
    code, out, _ = await run_cli("sessions", "list", columns=60, **env)
    assert code == 0 and a.session_id in out
    code, out, _ = await run_cli("sessions", "show", a.session_id, columns=60, **env)
    assert code == 0 and a.session_id in out and "SESSION_STATUS_REGISTERED" in out


async def test_unknown_session_says_where_to_look(emulator: Emulator) -> None:
    env = {"ATAI_API_KEY": emulator.api_key, "ATAI_API_ENDPOINT": emulator.lens_url}
    for action in ("show", "destroy"):
        code, _, err = await run_cli("sessions", action, "lsn-nope", columns=60, **env)
        assert code == 1
        assert "aiolens sessions list" in one_line(err)


async def test_version() -> None:
    code, out, _ = await run_cli("--version")
    assert code == 0 and out.startswith("aiolens ")


async def test_sessions_timeout_bounds_a_stalled_endpoint(emulator: Emulator) -> None:
    emulator.faults.fail_next(503, path="/lens/sessions/metadata", count=3, delay=0.5)
    code, _, err = await run_cli(
        "sessions",
        "--timeout",
        "0.1",
        "list",
        ATAI_API_KEY=emulator.api_key,
        ATAI_API_ENDPOINT=emulator.lens_url,
    )
    assert code == 1
    assert "timed out" in one_line(err)


async def test_connection_options_work_after_the_action(emulator: Emulator) -> None:
    async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url) as client:
        a = await client.sessions.create(IMAGE_QA)
    args = ("--api-key", emulator.api_key, "--base-url", emulator.lens_url)
    code, out, err = await run_cli("sessions", "list", *args)
    assert code == 0 and a.session_id in out, err
    code, out, err = await run_cli("sessions", "destroy", a.session_id, *args, "--timeout", "5")
    assert code == 0 and "destroyed" in out, err
    assert emulator.lens.active_sessions() == []
