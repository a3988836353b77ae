"""The emulated Lens API answers in the shapes the seed pages show.

One test per row of the deviation table in docs/protocol-notes.md, with raw
clients (aiohttp, websockets), running the seed pages' own reading code where
they give some.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from aiolens.emulator import Emulator
from tests.emulator.test_lens_realtime import (
    DESCRIBER,
    SSE_WRITER,
    Api,
    ask,
    csv_input,
    frames,
    lens_events,
    read_sse,
    small_csv,
)

EXAMPLE_LENS = "lns-fd669361822b07e2-237ab3ffd79199b0"  # seed 000's lens


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def api(http: aiohttp.ClientSession) -> AsyncIterator[Api]:
    async with Emulator(event_interval=0) as emu:
        yield Api(emu, http)


async def mailbox_session(api: Api, rows: int = 20) -> str:
    await api.upload("small.csv", small_csv(rows))
    return await api.session(await api.lens(DESCRIBER))


async def until(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 (server-side state has no event)
            await asyncio.sleep(0.005)


# ---- row 1: session.read -------------------------------------------------------------------


async def test_session_read_messages_are_timestamp_type_data_with_client_id(api: Api) -> None:
    session_id = await mailbox_session(api)
    async with api.ws(session_id) as ws:
        await ask(ws, "input_stream.set", csv_input())
        runtime = api.emu.lens.sessions[session_id].extra["runtime"]
        await until(lambda: not runtime.producing)
        response = await ask(ws, "session.read", {"client_id": "a1b2c3d4"})
        empty = await ask(ws, "session.read", {"client_id": "a1b2c3d4"})
    assert response["event_data"]["client_id"] == "a1b2c3d4"
    messages = (response.get("event_data") or {}).get("messages", [])
    # The seed's own reading code (seed 001, session.read):
    printed = [f"[{m['timestamp']}] {m['type']}: {m['data']}" for m in messages]
    assert len(printed) == len(messages) > 0
    results = [m for m in messages if m["type"] == "inference.result"]
    assert len(results) == 20 // 5
    assert all(isinstance(m["data"]["result"], str) and m["data"]["result"] for m in results)
    assert all(isinstance(m["timestamp"], float) for m in messages)
    # the examples' richer reading still works
    assert results[0]["event_data"]["response"] == [results[0]["data"]["result"]]
    assert empty == {"type": "session.read.response", "event_data": None}


# ---- row 2: model.query ----------------------------------------------------------------------


async def test_model_query_reply_carries_the_result(api: Api) -> None:
    session_id = await api.session(EXAMPLE_LENS)
    async with api.ws(session_id) as ws:
        response = await ask(
            ws,
            "model.query",
            {"focus": "Describe the safety equipment visible in the image.", "data": []},
        )
    assert response["type"] == "model.query.response"
    # The seed's code: response.get('event_data', {}).get('result')
    result = response.get("event_data", {}).get("result")
    assert isinstance(result, str) and result.startswith("[emulated] ")
    assert response["event_data"]["response"] == [result]


# ---- row 3: inference.result on SSE ------------------------------------------------------


async def test_sse_inference_results_have_a_timestamp_and_data_result(api: Api) -> None:
    session_id = await mailbox_session(api, rows=10)
    await api.event(session_id, "output_stream.set", SSE_WRITER)
    events = []
    async with asyncio.timeout(10), api.sse(session_id) as consumer:
        stream = frames(consumer)
        assert (await anext(stream))["data"]["type"] == "sse.stream.start"  # connected (live)
        await api.event(session_id, "input_stream.set", csv_input())
        async for frame in stream:
            events.append(frame["data"])
            if frame["data"]["type"] == "sse.stream.end":
                break
    results = [e for e in events if e["type"] == "inference.result"]
    assert len(results) == 2
    for event in results:
        assert set(event) >= {"type", "timestamp", "data"}
        assert isinstance(event["timestamp"], float)
        assert isinstance(event["data"]["result"], str) and event["data"]["result"]


# ---- row 4: session.status -----------------------------------------------------------------


async def test_session_status_is_the_create_record_with_its_prefix(api: Api) -> None:
    session_id = await api.session(EXAMPLE_LENS)
    over_rest = await api.event(session_id, "session.status")
    assert over_rest["type"] == "success"
    assert over_rest["event_data"]["session_status"] == "LensSessionStatus.SESSION_STATUS_RUNNING"
    assert over_rest["event_data"]["num_active_connections"] == 0
    async with api.ws(session_id) as ws:
        status = await ask(ws, "session.status")
    created_keys = set(await api.post("/lens/sessions/create", {"lens_id": EXAMPLE_LENS}))
    assert set(status) == created_keys
    assert status["session_status"] == "LensSessionStatus.SESSION_STATUS_RUNNING"
    assert status["num_active_connections"] == 0  # the asking socket is not counted


# ---- row 5: errors ---------------------------------------------------------------------------


async def test_401_carries_an_errors_array_and_the_legacy_detail(api: Api) -> None:
    url = api.emu.lens_url + "/lens/metadata"
    async with api.http.get(url, headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert body["errors"][0]["code"] == "unauthorized"
    assert body["errors"][0]["error_uid"].startswith("err-")
    assert body["detail"] == body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v0.5/lens/nothing-here", 404),
        ("GET", "/nowhere", 404),
        ("DELETE", "/v0.5/lens/register", 405),
    ],
)
async def test_unknown_routes_answer_json_errors(
    api: Api, method: str, path: str, status: int
) -> None:
    url = api.emu.base_url + path
    async with api.http.request(method, url, headers=api.auth) as resp:
        assert resp.status == status
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body["errors"][0]["code"] in ("not_found", "method_not_allowed")
    assert path in body["errors"][0]["message"]


# ---- row 6: live input streams ---------------------------------------------------------------


async def test_rtsp_and_sensor_streamers_are_accepted_with_synthetic_content(api: Api) -> None:
    camera = {"model_pipeline": [{"processor_name": "lens_camera_processor"}]}
    rtsp = {
        "stream_type": "rtsp_video_streamer",
        "stream_config": {
            "rtsp_url": "rtsp://camera.example.com:554/stream",
            "target_image_size": [360, 640],
            "target_frame_rate_hz": 0.2,
        },
    }
    for lens, stream in ((camera, rtsp), (DESCRIBER, {"stream_type": "sensor_streamer"})):
        session_id = await api.session(await api.lens(lens))
        async with api.ws(session_id) as ws:
            reply = await ask(ws, "input_stream.set", {"stream_config": {}, **stream})
            assert reply == {"type": "input_stream.set.response", "event_data": {"is_valid": True}}
            runtime = api.emu.lens.sessions[session_id].extra["runtime"]
            await until(lambda: not runtime.producing)  # noqa: B023
            read = await ask(ws, "session.read", {"client_id": "r"})
        kinds = [m["type"] for m in read["event_data"]["messages"]]
        assert kinds[0] == "stream.start" and kinds[-1] == "stream.end"
        assert kinds.count("inference.result") >= 4


async def test_a_bad_rtsp_url_is_refused_with_a_true_message(api: Api) -> None:
    session_id = await api.session(EXAMPLE_LENS)
    bad = {"stream_type": "rtsp_video_streamer", "stream_config": {"target_frame_rate_hz": 1}}
    reply = await api.event(session_id, "input_stream.set", bad)
    assert reply["type"] == "error"
    assert "rtsp_url" in reply["event_data"]["message"]


# ---- row 7: session_ttl_sec ------------------------------------------------------------------


async def test_idle_sessions_expire_after_session_ttl_sec(http: aiohttp.ClientSession) -> None:
    async with Emulator(session_ttl_sec=0.3) as emu:
        api = Api(emu, http)
        created = await api.post("/lens/sessions/create", {"lens_id": EXAMPLE_LENS})
        assert created["session_ttl_sec"] == 1  # an integer on the wire, rounded up
        idle = created["session_id"]
        busy = await api.session(EXAMPLE_LENS)
        async with api.sse(idle) as consumer:
            assert consumer.status == 200
            for _ in range(8):  # events keep the busy session alive
                await api.event(busy, "session.validate", {})
                await asyncio.sleep(0.1)
            async with asyncio.timeout(5):
                got = [f async for f in frames(consumer)]
        assert emu.lens.sessions[idle].status == "SESSION_STATUS_DESTROYED"
        assert got[-1]["data"]["type"] == "sse.stream.end"  # its consumer was ended
        assert emu.lens.sessions[busy].active


# ---- row 8: the example lens -----------------------------------------------------------------


async def test_the_seeds_example_lens_is_a_noop_pipeline(api: Api) -> None:
    async with api.http.get(
        api.emu.lens_url + "/lens/metadata", params={"lens_id": EXAMPLE_LENS}, headers=api.auth
    ) as resp:
        (lens,) = await resp.json()
    assert lens["lens_config"]["model_pipeline"] == [
        {"processor_name": "lens_noop_processor", "processor_config": {}}
    ]
    created = await api.post("/lens/sessions/create", {"lens_id": EXAMPLE_LENS})
    assert created["lens_config"] == lens["lens_config"]
    assert created["session_status"] == "LensSessionStatus.SESSION_STATUS_REGISTERED"


# ---- row 11: a consumer without Last-Event-ID ------------------------------------------------


async def finished_stream(api: Api) -> str:
    session_id = await mailbox_session(api, rows=20)
    await api.event(session_id, "output_stream.set", SSE_WRITER)
    await api.event(session_id, "input_stream.set", csv_input())
    runtime = api.emu.lens.sessions[session_id].extra["runtime"]
    await until(lambda: runtime.ended)
    return session_id


async def test_a_late_consumer_gets_only_live_events_by_default(api: Api) -> None:
    session_id = await finished_stream(api)
    late = await read_sse(api, session_id)
    assert [f["data"]["type"] for f in late] == ["sse.stream.start", "sse.stream.end"]
    # Last-Event-ID still resumes from the log
    resumed = lens_events(await read_sse(api, session_id, "0"))
    assert sum(f["data"]["type"] == "inference.result" for f in resumed) == 4


async def test_sse_replay_gives_a_late_consumer_the_whole_stream(
    http: aiohttp.ClientSession,
) -> None:
    async with Emulator(event_interval=0, sse_replay=True) as emu:
        api = Api(emu, http)
        session_id = await finished_stream(api)
        late = lens_events(await read_sse(api, session_id))
    assert sum(f["data"]["type"] == "inference.result" for f in late) == 4
    assert late[0]["id"] == 1


def test_a_session_ttl_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="session_ttl_sec"):
        Emulator(session_ttl_sec=0)
