"""uvicorn shutting down with open SSE relays, in each response style: no session is left.

The app (``sse_app.py``) relays held sessions in three styles: ``aio.relay`` (its own
response), FastAPI's ``StreamingResponse`` over ``aio.sse_frames`` and sse-starlette's
``EventSourceResponse`` over ``aio.sse_events``. Each case opens two relays that are
mid-stream, stops uvicorn as an operator would, and counts the sessions left on the
emulator.
"""

from __future__ import annotations

import signal

import aiohttp
import pytest

from aiolens.emulator import Emulator
from tests.integrations.serving import Uvicorn, uvicorn_app

STYLES = ["relay", "streaming", "sse_starlette"]
MODES = {
    "sigterm": ((signal.SIGTERM,), ()),
    "ctrl_c": ((signal.SIGINT,), ()),
    "ctrl_c_twice": ((signal.SIGINT, signal.SIGINT), ()),
    "graceful_timeout": ((signal.SIGTERM,), ("--timeout-graceful-shutdown", "1")),
}
# uvicorn re-raises the signal it stopped for once it is done: that is its clean exit.
CLEAN_EXITS = {0, -signal.SIGTERM, -signal.SIGINT}


async def open_relays(server: Uvicorn, http: aiohttp.ClientSession, style: str) -> list[str]:
    """Open two sessions and a relay for each; return once each relayed three events."""
    ids = []
    for _ in range(2):
        async with http.post("/sessions") as answer:
            session_id = (await answer.json())["session_id"]
        stream = await http.get(f"/sessions/{session_id}/events", params={"style": style})
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        data = 0
        while data < 3:
            line = await stream.content.readline()
            assert line, server.output
            data += line.startswith(b"data: ")
        ids.append(session_id)
    return ids


async def stop_with_open_relays(style: str, mode: str, env: dict[str, str]) -> tuple[int, int, str]:
    """Run the scenario; (exit status, sessions left, uvicorn's output)."""
    signals, args = MODES[mode]
    async with Emulator(event_interval=0.3) as emu:
        env = {"ATAI_API_KEY": emu.api_key, "ATAI_API_ENDPOINT": emu.lens_url, **env}
        async with (
            uvicorn_app("tests.integrations.sse_app:app", env, *args) as server,
            aiohttp.ClientSession(server.url) as http,
        ):
            ids = await open_relays(server, http, style)
            assert {s.session_id for s in emu.lens.active_sessions()} == set(ids)
            code = await server.stop(*signals)
        return code, len(emu.lens.active_sessions()), server.output


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("style", STYLES)
async def test_shutdown_with_open_relays_leaves_no_session(style: str, mode: str) -> None:
    code, left, output = await stop_with_open_relays(style, mode, {})
    assert code in CLEAN_EXITS, output
    assert left == 0, output
    assert "Application shutdown complete" in output or mode == "ctrl_c_twice", output


@pytest.mark.parametrize("style", STYLES)
async def test_forced_exit_still_destroys_the_sessions(style: str) -> None:
    # No signal handler of ours: a StreamingResponse keeps uvicorn waiting, the second
    # Ctrl-C forces it out and skips the lifespan's shutdown. The loop's final
    # cancellation still runs it.
    code, left, output = await stop_with_open_relays(
        style, "ctrl_c_twice", {"APP_HANDLE_SIGNALS": "0"}
    )
    assert code in CLEAN_EXITS, output
    assert left == 0, output


async def test_a_session_that_cannot_be_destroyed_is_one_log_line() -> None:
    async with Emulator(event_interval=0.3) as emu:
        env = {"ATAI_API_KEY": emu.api_key, "ATAI_API_ENDPOINT": emu.lens_url}
        async with (
            uvicorn_app("tests.integrations.sse_app:app", env) as server,
            aiohttp.ClientSession(server.url) as http,
        ):
            ids = await open_relays(server, http, "relay")
            emu.faults.fail_next(400, path="/lens/sessions/destroy", count=1000)
            code = await server.stop(signal.SIGTERM)
        assert code in CLEAN_EXITS, server.output
        assert len(emu.lens.active_sessions()) == 2
        for session_id in ids:
            lines = [line for line in server.lines if session_id in line and "destroy" in line]
            assert len(lines) == 1, server.output
