"""FastAPI's TestClient (sync, the app on a loop of its own) with the plugin's sync fixtures."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from aiolens.archetype.models import SessionSummary
from aiolens.emulator import EmulatorThread
from aiolens.integrations.starlette import Aiolens

IMAGE_QA = "lns-fd669361822b07e2-237ab3ffd79199b0"


def make_app() -> tuple[FastAPI, Aiolens]:
    aio = Aiolens(linger=60)
    app = FastAPI(lifespan=aio.lifespan)

    @app.post("/sessions")
    async def open_session() -> dict[str, str]:
        session = await aio.open_session(IMAGE_QA)
        return {"session_id": session.session_id}

    @app.get("/sessions")
    async def sessions(request: Request) -> list[SessionSummary]:
        return await request.state.aiolens.archetype.sessions.metadata()  # type: ignore[no-any-return]

    @app.get("/lenses/{lens_id}")
    async def lens(lens_id: str):  # type: ignore[no-untyped-def]  # unannotated works too
        return (await aio.archetype.lenses.metadata(lens_id))[0]

    return app, aio


def active(emu: EmulatorThread) -> list[str]:
    return emu.call(lambda: [s.session_id for s in emu.emulator.lens.active_sessions()])


def test_testclient_drives_the_app_against_the_threaded_emulator(
    aiolens_env: EmulatorThread,
) -> None:
    app, aio = make_app()
    with TestClient(app) as http:
        session_id = http.post("/sessions").json()["session_id"]
        listed = http.get("/sessions")
        assert listed.status_code == 200
        assert [s["session_id"] for s in listed.json()] == [session_id]
        assert listed.json()[0]["session_status"].startswith("SESSION_STATUS_")
        lens = http.get(f"/lenses/{IMAGE_QA}")
        assert lens.status_code == 200 and lens.json()["lens_id"] == IMAGE_QA
        assert active(aiolens_env) == [session_id]
    # Leaving the TestClient runs the lifespan's shutdown: the held session is destroyed.
    assert active(aiolens_env) == []
    assert aio.sessions == []


def test_emulator_thread_serves_plain_sync_code() -> None:
    import json
    import urllib.request

    with EmulatorThread() as emu:
        request = urllib.request.Request(
            f"{emu.lens_url}/lens/metadata",
            headers={"Authorization": f"Bearer {emu.api_key}"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert any(lens["lens_id"] == IMAGE_QA for lens in json.load(answer))
    emu.stop()  # idempotent
