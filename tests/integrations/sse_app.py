"""The app of test_shutdown.py: one relay in three SSE response styles (``?style=``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse

from aiolens.integrations.starlette import Aiolens

ROWS = int(os.environ.get("APP_ROWS", "100000"))
CSV = "t,ax\n" + "".join(f"{i},{i % 7}\n" for i in range(ROWS))
LENS = {"model_pipeline": [{"processor_name": "lens_sensor_logs_processor"}]}
HANDLE_SIGNALS = os.environ.get("APP_HANDLE_SIGNALS", "1") == "1"

aio = Aiolens(linger=30, heartbeat=1, handle_signals=HANDLE_SIGNALS)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
    async with aio.lifespan(app) as state:
        await aio.archetype.files.upload(CSV.encode(), filename="rows.csv")
        app.state.lens_id = (await aio.archetype.lenses.register(LENS)).lens_id
        yield state


app = FastAPI(lifespan=lifespan)


@app.post("/sessions")
async def open_session(request: Request) -> dict[str, str]:
    session = await aio.open_session(request.app.state.lens_id)
    await session.set_output_stream("server_sent_events_writer")
    await session.set_input_stream(
        "csv_file_reader", file_id="rows.csv", window_size=10, step_size=10
    )
    return {"session_id": session.session_id}


@app.get("/sessions/{session_id}/events")
async def events(session_id: str, request: Request, style: str = "relay") -> Response:
    if style != "relay" and aio.get_session(session_id) is None:
        return Response(status_code=204)  # EventSource: stop reconnecting
    if style == "streaming":
        return StreamingResponse(
            aio.sse_frames(session_id, request), media_type="text/event-stream"
        )
    if style == "sse_starlette":
        return EventSourceResponse(aio.sse_events(session_id, request))
    return aio.relay(session_id, request)
