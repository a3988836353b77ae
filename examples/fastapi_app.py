"""A FastAPI service that shows a lens session's live events in the browser.

Each page view opens one session (POST /sessions), the page follows its events
with an EventSource (GET /sessions/{id}/events, relayed over SSE) and the session
is destroyed when the page goes away (a beacon, or no browser for a few seconds).

Serve it against the emulator (``aiolens emulate`` in another shell, then paste
its ``export`` lines here) or the real API::

    uvicorn examples.fastapi_app:app --port 8000    # then open http://127.0.0.1:8000

Run as ``python examples/fastapi_app.py`` it checks itself: an emulator, the app
under uvicorn, one page view read like a browser would, then shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse

from aiolens.integrations.starlette import Aiolens

LINGER = float(os.environ.get("APP_LINGER", "5"))  # seconds a session waits for its page
ROWS = int(os.environ.get("APP_ROWS", "400"))  # readings per session, 10 per event
CSV = "t,ax\n" + "".join(f"{i},{i % 7}\n" for i in range(ROWS))
LENS = {"model_pipeline": [{"processor_name": "lens_sensor_logs_processor"}]}

aio = Aiolens(linger=LINGER)  # the Lens client comes from ATAI_API_KEY / ATAI_API_ENDPOINT


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
    async with aio.lifespan(app) as state:  # opens the client; closes sessions, then it
        await aio.archetype.files.upload(CSV.encode(), filename="readings.csv")
        app.state.lens_id = (await aio.archetype.lenses.register(LENS)).lens_id
        yield state


app = FastAPI(lifespan=lifespan)


@app.post("/sessions")
async def open_session(request: Request) -> dict[str, str]:
    session = await aio.open_session(request.app.state.lens_id)
    await session.set_output_stream("server_sent_events_writer")
    await session.set_input_stream(
        "csv_file_reader", file_id="readings.csv", window_size=10, step_size=10
    )
    return {"session_id": session.session_id}


@app.get("/sessions/{session_id}/events")
async def events(session_id: str, request: Request) -> Response:
    return aio.relay(session_id, request)


@app.post("/sessions/{session_id}/close")
async def close_session(session_id: str) -> dict[str, bool]:
    return {"closed": await aio.close_session(session_id)}


PAGE = """<!doctype html>
<title>aiolens live events</title>
<h1>Session <span id="session">…</span></h1>
<ol id="events"></ol>
<script>
(async () => {
  const { session_id } = await (await fetch("/sessions", { method: "POST" })).json();
  document.getElementById("session").textContent = session_id;
  const source = new EventSource(`/sessions/${session_id}/events`);
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const item = document.createElement("li");
    item.className = event.type;
    item.textContent = `${event.type} ${JSON.stringify(event.event_data ?? "")}`;
    document.getElementById("events").append(item);
  };
  addEventListener("pagehide", () => navigator.sendBeacon(`/sessions/${session_id}/close`));
})();
</script>
"""


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return PAGE


async def self_check() -> None:
    """The emulator, this app under uvicorn, one page view, shutdown: print what happened."""
    import aiohttp
    import uvicorn

    from aiolens.emulator import Emulator

    async with Emulator(event_interval=0.01) as emu:
        os.environ.update(ATAI_API_KEY=emu.api_key, ATAI_API_ENDPOINT=emu.lens_url)
        server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            async with http.post("/sessions") as r:
                session_id = (await r.json())["session_id"]
            received = 0
            async with http.get(f"/sessions/{session_id}/events") as stream:
                async for line in stream.content:
                    received += line.startswith(b"data: ")
        server.should_exit = True
        await serving
        print(f"events relayed: {received}; sessions left: {len(emu.lens.active_sessions())}")


if __name__ == "__main__":
    asyncio.run(self_check())
