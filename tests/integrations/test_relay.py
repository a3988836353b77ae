"""The SSE relay under a real uvicorn on 127.0.0.1, against the emulator.

Framing, heartbeats, resume after a browser's reconnect (``Last-Event-ID``),
disconnect detection, the linger window, and a browser that accepts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse

from aiolens import AsyncArchetypeClient
from aiolens.emulator import Emulator
from aiolens.integrations.starlette import Aiolens
from tests.integrations.test_browser import until

LENS = {"model_pipeline": [{"processor_name": "lens_sensor_logs_processor"}]}
WINDOWS = 60  # events per session (one per 10 rows)


def make_app(aio: Aiolens) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with aio.lifespan(app) as state:
            csv = "t,ax\n" + "".join(f"{i},{i % 7}\n" for i in range(WINDOWS * 10))
            await aio.archetype.files.upload(csv.encode(), filename="rows.csv")
            app.state.lens_id = (await aio.archetype.lenses.register(LENS)).lens_id
            yield state

    app = FastAPI(lifespan=lifespan)

    @app.post("/sessions")
    async def open_session(request: Request, stream: bool = True) -> dict[str, str]:
        session = await aio.open_session(request.app.state.lens_id)
        if stream:
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
            frames = aio.sse_frames(session_id, request)
            return StreamingResponse(frames, media_type="text/event-stream")
        if style == "sse_starlette":
            return EventSourceResponse(aio.sse_events(session_id, request))
        return aio.relay(session_id, request)

    return app


@contextlib.asynccontextmanager
async def serving(emu: Emulator, **options: Any) -> AsyncIterator[tuple[str, Aiolens]]:
    """The app under uvicorn in this process (port 0); stopped after the block."""
    aio = Aiolens(
        archetype=lambda: AsyncArchetypeClient(emu.api_key, emu.lens_url),
        handle_signals=False,
        **options,
    )
    server = uvicorn.Server(
        uvicorn.Config(make_app(aio), host="127.0.0.1", port=0, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done(), "uvicorn started")
    assert not task.done(), task
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", aio
    finally:
        server.should_exit = True
        await task


async def read_frames(
    response: aiohttp.ClientResponse, stop: int | None = None
) -> list[dict[str, str]]:
    """Parse SSE frames (id, data, comment) until EOF or ``stop`` data frames."""
    frames: list[dict[str, str]] = []
    frame: dict[str, str] = {}
    data = 0
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if frame:
                frames.append(frame)
                data += "data" in frame
                frame = {}
                if stop is not None and data >= stop:
                    break
            continue
        field, _, value = line.partition(":")
        frame[field or "comment"] = value.removeprefix(" ")
    return frames


@pytest.mark.parametrize("style", ["relay", "streaming", "sse_starlette"])
async def test_reconnect_with_last_event_id_resumes_without_gaps_or_repeats(style: str) -> None:
    async with Emulator(event_interval=0.005) as emu, serving(emu, linger=30) as (url, aio):
        async with aiohttp.ClientSession(url) as http:
            async with http.post("/sessions") as answer:
                session_id = (await answer.json())["session_id"]
            path = f"/sessions/{session_id}/events?style={style}"
            async with http.get(path) as first:
                assert first.headers["Content-Type"].startswith("text/event-stream")
                before = [f for f in await read_frames(first, stop=12) if "data" in f]
            last_id = [f["id"] for f in before if "id" in f][-1]
            async with http.get(path, headers={"Last-Event-ID": last_id}) as second:
                after = [f for f in await read_frames(second) if "data" in f]
            # The session ended with its stream: an EventSource's next reconnect is told to stop.
            async with http.get(path) as third:
                assert third.status == 204
        await until(lambda: not emu.lens.active_sessions(), "the ended session destroyed")
    ids = [int(f["id"]) for f in before + after if "id" in f]
    assert ids == sorted(set(ids)), "an event was repeated or reordered"
    results = [f for f in before + after if f["data"].startswith('{"type":"inference.result"')]
    assert len(results) == WINDOWS, [f["data"][:60] for f in before + after]
    assert after[-1]["data"].replace(" ", "").startswith('{"type":"sse.stream.end"')
    assert aio.sessions == []


async def test_heartbeats_are_comment_lines_while_nothing_happens() -> None:
    async with (
        Emulator(sse_heartbeat_interval=60) as emu,
        serving(emu, heartbeat=0.05) as (url, _),
        aiohttp.ClientSession(url) as http,
    ):
        async with http.post("/sessions", params={"stream": "false"}) as answer:
            session_id = (await answer.json())["session_id"]
        async with http.get(f"/sessions/{session_id}/events") as events:
            frames = await read_frames(events, stop=1)  # the stream start
            more: list[dict[str, str]] = []
            while len([f for f in more if f.get("comment") == "keepalive"]) < 3:
                line = await events.content.readline()
                more.append({"comment": "keepalive"} if line == b": keepalive\n" else {})
    assert frames[0] == {"retry": "1000"} and "data" in frames[1]


async def test_a_browser_that_leaves_releases_the_stream_then_the_session() -> None:
    async with (
        Emulator(event_interval=0.05) as emu,
        serving(emu, linger=0.5) as (url, aio),
        aiohttp.ClientSession(url) as http,
    ):
        async with http.post("/sessions") as answer:
            session_id = (await answer.json())["session_id"]
        async with http.get(f"/sessions/{session_id}/events") as events:
            await read_frames(events, stop=3)
            assert aio._relays == 1
            held = aio.get_session(session_id)
            assert held is not None and len(held._streams) == 1
        # The connection is gone: the relay stops reading and closes its upstream stream,
        # then the session waits `linger` for the browser to come back, and is destroyed.
        await until(lambda: aio._relays == 0, "the relay ended")
        assert all(stream.finished for stream in held._streams)
        await until(lambda: not emu.lens.active_sessions(), "the session destroyed")
        assert aio.get_session(session_id) is None


async def test_a_browser_that_accepts_nothing_is_dropped_after_send_timeout() -> None:
    async with Emulator(event_interval=0.01) as emu, serving(emu, send_timeout=0.2) as (_, aio):
        lens = (await aio.archetype.lenses.metadata())[0].lens_id
        session = await aio.open_session(lens)
        stuck = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()  # no disconnect: the browser is there, only slow
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                stuck.set()
                await asyncio.Event().wait()  # its buffer is full: this write never ends

        scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
        response = aio.relay(session, Request(scope))
        await asyncio.wait_for(response(scope, receive, send), 60)  # type: ignore[arg-type]
        assert stuck.is_set()
        assert aio._relays == 0
        assert all(stream.finished for stream in session._streams)
