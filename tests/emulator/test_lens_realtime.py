"""The emulator's Lens WebSocket and SSE routes, tested over loopback with raw clients.

These pin the SERVER against docs/protocol-notes.md: raw ``websockets`` and raw
aiohttp, never the aiolens client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from aiolens.emulator import Emulator

IMAGE_QA = "lns-fd669361822b07e2-237ab3ffd79199b1"  # has a model-query processor
DATA = resources.files("aiolens.data")
N_SHOT = {"IDLE": "sensor_idle.csv", "NORMAL": "sensor_normal.csv", "WARNING": "sensor_warning.csv"}
DESCRIBER = {"model_pipeline": [{"processor_name": "lens_sensor_logs_processor"}]}
SSE_WRITER = {"stream_type": "server_sent_events_writer", "stream_config": {}}


def small_csv(rows: int) -> bytes:
    lines = ["timestamp,ax,ay"] + [
        f"{i / 100:.2f},{(i % 7) * 0.1:.2f},{(i % 5) * 0.2:.2f}" for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def csv_input(file_id: str = "small.csv", window: int = 5) -> dict[str, Any]:
    return {
        "stream_type": "csv_file_reader",
        "stream_config": {"file_id": file_id, "window_size": window, "step_size": window},
    }


# ---- raw clients -------------------------------------------------------------------------


class Api:
    """Raw REST calls with the emulator's key."""

    def __init__(self, emu: Emulator, http: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.http = http
        self.auth = {"Authorization": f"Bearer {emu.api_key}"}

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with self.http.post(self.emu.lens_url + path, json=body, headers=self.auth) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def upload(self, name: str, data: bytes) -> None:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type="text/csv")
        async with self.http.post(self.emu.lens_url + "/files", data=form, headers=self.auth) as r:
            assert r.status == 200, await r.text()

    async def lens(self, config: dict[str, Any]) -> str:
        lens = await self.post("/lens/register", {"lens_config": {"lens_name": "t", **config}})
        return str(lens["lens_id"])

    async def session(self, lens_id: str) -> str:
        created = await self.post("/lens/sessions/create", {"lens_id": lens_id})
        return str(created["session_id"])

    async def event(self, session_id: str, type_: str, data: Any = None) -> Any:
        body = {"session_id": session_id, "event": {"type": type_, "event_data": data}}
        return await self.post("/lens/sessions/events/process", body)

    def ws_url(self, session_id: str) -> str:
        return self.emu.lens_url.replace("http://", "ws://") + f"/lens/sessions/{session_id}"

    def ws(self, session_id: str, **kwargs: Any) -> Any:
        kwargs.setdefault("additional_headers", self.auth)
        return connect(self.ws_url(session_id), proxy=None, compression=None, **kwargs)

    def sse(self, session_id: str, last_event_id: str | None = None) -> Any:
        headers = {**self.auth, "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        url = f"{self.emu.lens_url}/lens/sessions/consumer/{session_id}"
        return self.http.get(url, headers=headers)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    # sse_replay: these tests read a finished stream from its start (ids, resume,
    # computation); the live default has tests of its own below.
    async with Emulator(event_interval=0, sse_replay=True) as emulator:
        yield emulator


@pytest.fixture
def api(emu: Emulator, http: aiohttp.ClientSession) -> Api:
    return Api(emu, http)


async def ask(ws: ClientConnection, type_: str, data: Any = None, *, binary: bool = False) -> Any:
    message = json.dumps({"type": type_, "event_data": data})
    await ws.send(message.encode() if binary else message)
    reply = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(reply, str), "replies are text frames"
    return json.loads(reply)


async def frames(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """Frames of an event stream as {"event", "id" (int or None), "data" (parsed or raw)}."""
    buffer = b""
    async for chunk in resp.content.iter_any():
        buffer += chunk
        while b"\n\n" in buffer:
            raw, buffer = buffer.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in raw.decode().split("\n"))
            try:
                data: Any = json.loads(fields["data"])
            except json.JSONDecodeError:
                data = fields["data"]
            ident = fields.get("id")
            yield {"event": fields.get("event"), "id": int(ident) if ident else None, "data": data}


async def read_sse(api: Api, session_id: str, last_event_id: str | None = None) -> list[Any]:
    """Every frame up to and including sse.stream.end (heartbeats included)."""
    out = []
    async with asyncio.timeout(10), api.sse(session_id, last_event_id) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        async for frame in frames(resp):
            out.append(frame)
            if isinstance(frame["data"], dict) and frame["data"]["type"] == "sse.stream.end":
                break
    return out


def lens_events(sse: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in sse if f["id"] is not None]


# ---- WebSocket: envelopes ----------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
async def test_every_session_event_round_trips_with_its_envelope(
    api: Api, emu: Emulator, binary: bool
) -> None:
    session_id = await api.session(IMAGE_QA)
    async with api.ws(session_id) as ws:
        status = await ask(ws, "session.status", binary=binary)
        assert "type" not in status  # the bare session record
        assert status["session_id"] == session_id
        # The create record's shape (seed 001): prefix included; the asking socket
        # is not counted.
        assert status["session_status"] == "LensSessionStatus.SESSION_STATUS_RUNNING"
        assert status["num_active_connections"] == 0

        validate = await ask(ws, "session.validate", {}, binary=binary)
        assert validate == {
            "type": "session.validate.response",
            "event_data": {"is_valid": True, "error_messages": []},
        }
        got = await ask(ws, "session.get", {}, binary=binary)
        assert got["type"] == "session.get.response"
        assert got["event_data"]["focus"] == "Describe the image."
        modified = await ask(ws, "session.modify", {"focus": "Count the cars."}, binary=binary)
        assert modified["type"] == "session.modify.response"
        assert (await ask(ws, "session.get", binary=binary))["event_data"]["focus"] == (
            "Count the cars."
        )
        beat = await ask(ws, "session.heartbeat", binary=binary)
        assert beat == {"type": "session.heartbeat.response", "event_data": None}
        read = await ask(ws, "session.read", {"client_id": "c1"}, binary=binary)
        assert read == {"type": "session.read.response", "event_data": None}
        query = await ask(ws, "model.query", {"focus": "What is it?", "data": []}, binary=binary)
        assert query["type"] == "model.query.response"
        assert query["event_data"]["response"] and query["event_data"]["focus"] == "What is it?"
        update = await ask(
            ws,
            "session.update",
            {"type": "data.json", "event_data": {"sensor_id": "s1", "value": 3}},
            binary=binary,
        )
        assert update["type"] == "session.update.response"
        out = await ask(ws, "output_stream.set", SSE_WRITER, binary=binary)
        assert out == {"type": "output_stream.set.response", "event_data": {"is_valid": True}}
        bad_input = await ask(ws, "input_stream.set", csv_input("nope.csv"), binary=binary)
        assert bad_input["type"] == "error" and "nope.csv" in bad_input["message"]
        unknown = await ask(ws, "no.such.event", {}, binary=binary)
        assert unknown["type"] == "error" and "no.such.event" in unknown["message"]

        destroyed = await ask(ws, "session.destroy", {}, binary=binary)
        assert destroyed["type"] == "session.destroy.response"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1000
    record = emu.lens.sessions[session_id]
    assert record.status == "SESSION_STATUS_DESTROYED"
    assert record.num_active_connections == 0


async def test_two_hundred_pipelined_requests_are_answered_once_each_in_order(api: Api) -> None:
    session_id = await api.session(IMAGE_QA)
    async with api.ws(session_id) as ws:
        for i in range(200):
            kind = ("model.query", "session.status", "session.validate")[i % 3]
            await ws.send(json.dumps({"type": kind, "event_data": {"focus": f"q{i}"}}))
        replies = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(200)]
        for i, reply in enumerate(replies):
            if i % 3 == 0:
                assert reply["event_data"]["focus"] == f"q{i}"
            elif i % 3 == 1:
                assert reply["session_id"] == session_id
            else:
                assert reply["type"] == "session.validate.response"
        # exactly once: nothing else is pending
        assert (await ask(ws, "session.heartbeat"))["type"] == "session.heartbeat.response"


async def test_malformed_requests_get_error_replies_and_the_socket_lives(api: Api) -> None:
    session_id = await api.session(IMAGE_QA)
    async with api.ws(session_id) as ws:
        bad_data = '{"type": "session.modify", "event_data": "focus: x"}'
        for bad in (
            "{not json",
            "[1, 2]",
            '{"type": 5}',
            '{"event_data": {}}',
            b"\xff\xfe",
            bad_data,
        ):
            await ws.send(bad)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["type"] == "error" and reply["message"]
        assert (await ask(ws, "session.validate"))["event_data"]["is_valid"] is True


async def test_unknown_session_answers_the_documented_error_to_each_request(api: Api) -> None:
    async with api.ws("lsn-000000doesnotexist") as ws:
        for kind in ("session.status", "session.validate"):
            assert await ask(ws, kind) == {
                "type": "error",
                "message": "Unknown session id: lsn-000000doesnotexist",
            }


async def test_connections_are_counted_and_mark_the_session_running(
    api: Api, emu: Emulator
) -> None:
    session_id = await api.session(IMAGE_QA)
    record = emu.lens.sessions[session_id]
    assert record.status == "SESSION_STATUS_REGISTERED"
    async with api.ws(session_id) as one, api.ws(session_id) as two:
        # the other socket counts, the asking one does not (seed 001)
        assert (await ask(one, "session.status"))["num_active_connections"] == 1
        assert emu.lens.sessions[session_id].num_active_connections == 2
        assert record.status == "SESSION_STATUS_RUNNING"
        await two.close()
        await asyncio.sleep(0.05)
        assert (await ask(one, "session.status"))["num_active_connections"] == 0
        assert record.num_active_connections == 1


# ---- WebSocket: auth ---------------------------------------------------------------------


async def test_subprotocol_auth_selects_event_protocol(api: Api, emu: Emulator) -> None:
    session_id = await api.session(IMAGE_QA)
    offer = [f"authenticationauthorization.bearer.{emu.api_key}", "event-protocol-v1"]
    async with api.ws(session_id, additional_headers={}, subprotocols=offer) as ws:
        assert ws.subprotocol == "event-protocol-v1"
        assert (await ask(ws, "session.validate"))["event_data"]["is_valid"] is True
    # A browser offering only the bearer protocol gets it echoed (it must get one back).
    only = [f"authenticationauthorization.bearer.{emu.api_key}"]
    async with api.ws(session_id, additional_headers={}, subprotocols=only) as ws:
        assert ws.subprotocol == only[0]
    async with api.ws(session_id, subprotocols=["event-protocol-v1"]) as ws:  # header auth
        assert ws.subprotocol == "event-protocol-v1"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"additional_headers": {"Authorization": "Bearer wrong-key"}},
        {"additional_headers": {}},
        {"additional_headers": {}, "subprotocols": ["x.bearer.wrong-key", "event-protocol-v1"]},
    ],
    ids=["bad-header", "no-auth", "bad-subprotocol"],
)
async def test_bad_key_is_rejected_before_the_upgrade(api: Api, kwargs: dict[str, Any]) -> None:
    session_id = await api.session(IMAGE_QA)
    with pytest.raises(InvalidStatus) as err:
        async with api.ws(session_id, **kwargs):
            pass
    assert err.value.response.status_code == 401


# ---- SSE ---------------------------------------------------------------------------------


async def csv_session(api: Api, rows: int = 40, *, sse: bool = True) -> str:
    await api.upload("small.csv", small_csv(rows))
    session_id = await api.session(await api.lens(DESCRIBER))
    if sse:
        await api.event(session_id, "output_stream.set", SSE_WRITER)
    return session_id


async def test_sse_start_events_and_end_with_integer_ids(api: Api, emu: Emulator) -> None:
    session_id = await csv_session(api, rows=40)
    await api.event(session_id, "input_stream.set", csv_input())
    sse = await read_sse(api, session_id)
    assert all(f["event"] == "message" for f in sse)
    start = sse[0]
    assert start["id"] is None
    assert start["data"]["type"] == "sse.stream.start"
    assert start["data"]["event_data"]["session_id"] == session_id
    assert start["data"]["event_data"]["reader_id"]
    events = lens_events(sse)
    assert [f["id"] for f in events] == list(range(1, len(events) + 1))
    types = [f["data"]["type"] for f in events]
    assert types[:2] == ["stream.start", "log.info"]
    assert types[-2:] == ["stream.end", "sse.stream.end"]
    assert types.count("inference.result") == 40 // 5
    record = emu.lens.sessions[session_id]
    assert record.num_inputs == 8
    assert record.num_outputs == len(events) - 1  # every lens event, not sse.stream.end
    # The mailbox got nothing: outputs go to SSE or the mailbox, never both.
    assert (await api.event(session_id, "session.read", {"client_id": "x"}))["event_data"] is None


async def test_resume_with_last_event_id_delivers_exactly_the_remaining_events(
    api: Api,
) -> None:
    session_id = await csv_session(api, rows=40)
    await api.event(session_id, "input_stream.set", csv_input())
    everything = lens_events(await read_sse(api, session_id))
    last = everything[-1]["id"]
    for cursor in (0, 1, 5, last - 1):
        resumed = await read_sse(api, session_id, str(cursor))
        assert resumed[0]["data"]["type"] == "sse.stream.start"
        assert lens_events(resumed) == everything[cursor:]
    # after the end event: the start frame, then EOF
    async with asyncio.timeout(5), api.sse(session_id, str(last)) as resp:
        got = [f async for f in frames(resp)]
    assert [f["data"]["type"] for f in got] == ["sse.stream.start"]


@pytest.mark.parametrize("cursor", ["999", "abc", "-1"])
async def test_resume_from_an_unknown_id_is_409_resume_unavailable(api: Api, cursor: str) -> None:
    session_id = await csv_session(api, rows=10)
    await api.event(session_id, "input_stream.set", csv_input())
    await read_sse(api, session_id)
    async with api.sse(session_id, cursor) as resp:
        assert resp.status == 409
        body = await resp.json()
    assert body["errors"][0]["code"] == "resume_unavailable"


async def test_evicted_ids_cannot_be_resumed(http: aiohttp.ClientSession) -> None:
    async with Emulator(event_interval=0, max_session_events=16, sse_replay=True) as emu:
        api = Api(emu, http)
        session_id = await csv_session(api, rows=200)  # 40 results + 4 stream events
        await api.event(session_id, "input_stream.set", csv_input())
        runtime = emu.lens.sessions[session_id].extra["runtime"]
        await asyncio.wait_for(_until(lambda: runtime.ended), 5)
        assert len(runtime.frames) <= 16 and runtime.base > 0
        async with api.sse(session_id, "1") as resp:
            assert resp.status == 409
            assert (await resp.json())["errors"][0]["code"] == "resume_unavailable"
        kept = lens_events(await read_sse(api, session_id))  # from the oldest kept
        assert kept[0]["id"] == runtime.base + 1
        assert kept[-1]["data"]["type"] == "sse.stream.end"
        resumed = lens_events(await read_sse(api, session_id, str(runtime.base)))
        assert resumed == kept


async def _until(condition: Any) -> None:
    """Poll server-side state (the emulator exposes no event for it)."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def test_concurrent_consumers_each_get_every_event(api: Api) -> None:
    session_id = await csv_session(api, rows=100)
    readers = [asyncio.create_task(read_sse(api, session_id)) for _ in range(3)]
    await asyncio.sleep(0.05)  # consumers connected before the input starts
    await api.event(session_id, "input_stream.set", csv_input())
    results = [lens_events(r) for r in await asyncio.gather(*readers)]
    assert results[0] == results[1] == results[2]
    assert sum(f["data"]["type"] == "inference.result" for f in results[0]) == 20


async def test_idle_stream_sends_heartbeats_without_ids(http: aiohttp.ClientSession) -> None:
    async with Emulator(sse_heartbeat_interval=0.05) as emu:
        api = Api(emu, http)
        session_id = await api.session(IMAGE_QA)
        got = []
        async with asyncio.timeout(5), api.sse(session_id) as resp:
            async for frame in frames(resp):
                got.append(frame)
                if len(got) == 4:
                    break
    assert got[0]["data"]["type"] == "sse.stream.start"
    beats = got[1:]
    assert all(b["data"]["type"] == "sse.stream.heartbeat" and b["id"] is None for b in beats)
    data = [b["data"]["event_data"] for b in beats]
    assert set(data[0]) == {
        "session_id",
        "session_status",
        "num_messages",
        "num_bytes",
        "message_timeout",
    }
    assert data[0]["session_id"] == session_id
    assert data[0]["session_status"] == "SESSION_STATUS_RUNNING"
    timeouts = [d["message_timeout"] for d in data]
    assert timeouts == sorted(timeouts) and timeouts[0] < timeouts[-1]


async def test_unknown_session_consumer_is_404(api: Api) -> None:
    async with api.sse("lsn-000000doesnotexist") as resp:
        assert resp.status == 404


# ---- lens computation through the routes ---------------------------------------------------


async def upload_samples(api: Api) -> None:
    for name in ("sensor_demo.csv", *N_SHOT.values()):
        await api.upload(name, DATA.joinpath(name).read_bytes())


async def test_timeseries_lens_states_come_from_the_data(api: Api) -> None:
    await upload_samples(api)
    config = {
        "model_pipeline": [
            {
                "processor_name": "lens_timeseries_state_processor",
                "processor_config": {"input_n_shot": N_SHOT},
            }
        ]
    }
    session_id = await api.session(await api.lens(config))
    async with api.ws(session_id) as ws:
        assert (await ask(ws, "output_stream.set", SSE_WRITER))["event_data"]["is_valid"]
        reply = await ask(ws, "input_stream.set", csv_input("sensor_demo.csv", window=100))
        assert reply["type"] == "input_stream.set.response"
    results = [
        f["data"]["event_data"]
        for f in await read_sse(api, session_id)
        if f["id"] is not None and f["data"]["type"] == "inference.result"
    ]
    states = [r["response"][0] for r in results]
    # sensor_demo.csv holds 600-row regimes: idle, normal, warning, normal, idle.
    regimes = ["IDLE", "NORMAL", "WARNING", "NORMAL", "IDLE"]
    assert states == [s for s in regimes for _ in range(6)]
    assert [r["query_metadata"]["query_metadata"]["read_index"] for r in results] == list(
        range(0, 3000, 100)
    )


async def test_session_modify_sets_the_n_shot_examples_for_the_next_input(api: Api) -> None:
    await upload_samples(api)
    config = {"model_pipeline": [{"processor_name": "lens_timeseries_state_processor"}]}
    session_id = await api.session(await api.lens(config))
    async with api.ws(session_id) as ws:
        missing = await ask(ws, "input_stream.set", csv_input("sensor_demo.csv", window=600))
        assert missing["type"] == "error" and "input_n_shot" in missing["message"]
        await ask(ws, "session.modify", {"input_n_shot": N_SHOT})
        await ask(ws, "output_stream.set", SSE_WRITER)
        await ask(ws, "input_stream.set", csv_input("sensor_demo.csv", window=600))
    results = [f["data"] for f in lens_events(await read_sse(api, session_id))]
    states = [r["event_data"]["state"] for r in results if r["type"] == "inference.result"]
    assert states == ["IDLE", "NORMAL", "WARNING", "NORMAL", "IDLE"]


async def test_input_and_output_streams_in_the_lens_config_start_with_the_session(
    api: Api,
) -> None:
    await api.upload("small.csv", small_csv(20))
    lens_id = await api.lens(
        {
            "lens_config": {
                **DESCRIBER,
                "input_streams": [csv_input()],
                "output_streams": [SSE_WRITER],
            }
        }
    )
    session_id = await api.session(lens_id)
    events = [f["data"]["type"] for f in lens_events(await read_sse(api, session_id))]
    assert events.count("inference.result") == 4
    assert events[-1] == "sse.stream.end"


async def test_without_an_sse_writer_events_go_to_the_mailbox(api: Api, emu: Emulator) -> None:
    session_id = await csv_session(api, rows=30, sse=False)
    async with api.ws(session_id) as ws:
        await ask(ws, "input_stream.set", csv_input())
        runtime = emu.lens.sessions[session_id].extra["runtime"]
        await asyncio.wait_for(_until(lambda: _done(runtime.mailbox)), 5)
        first = await ask(ws, "session.read", {"client_id": "a"})
        assert first["type"] == "session.read.response"
        messages = first["event_data"]["messages"]
        assert [m["type"] for m in messages].count("inference.result") == 6
        assert messages[-1]["type"] == "stream.end"
        assert await ask(ws, "session.read", {"client_id": "a"}) == {
            "type": "session.read.response",
            "event_data": None,
        }
        # a new client id replays from the beginning
        again = await ask(ws, "session.read", {"client_id": "b"})
        assert again["event_data"]["messages"] == messages
        # inline data over session.update produces an output too
        await ask(ws, "session.update", {"type": "data.json", "event_data": {"temp": 21.5}})
        update = await ask(ws, "session.read", {"client_id": "a"})
        (result,) = update["event_data"]["messages"]
        assert result["type"] == "inference.result"
        assert "temp" in result["event_data"]["response"][0]
        missing = await ask(ws, "session.read", {})
        assert missing["type"] == "error"


def _done(mailbox: list[dict[str, Any]]) -> bool:
    return bool(mailbox) and mailbox[-1]["type"] == "stream.end"


# ---- destroy -----------------------------------------------------------------------------


async def test_destroy_over_websocket_ends_sse_and_closes_other_sockets(api: Api) -> None:
    session_id = await csv_session(api)
    reader = asyncio.create_task(read_sse(api, session_id))
    async with api.ws(session_id) as other, api.ws(session_id) as ws:
        await asyncio.sleep(0.05)
        reply = await ask(ws, "session.destroy", {})
        assert reply["type"] == "session.destroy.response"
        for sock in (ws, other):
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(sock.recv(), 5)
            assert sock.close_code == 1000
    sse = await reader
    assert [f["data"]["type"] for f in sse] == ["sse.stream.start", "sse.stream.end"]
    assert sse[-1]["id"] == 1
    # afterwards: REST says destroyed, a new socket answers the documented error
    async with api.ws(session_id) as late:
        assert (await ask(late, "session.validate"))["type"] == "error"


async def test_rest_destroy_closes_the_sockets_and_ends_the_streams(api: Api) -> None:
    session_id = await csv_session(api)
    reader = asyncio.create_task(read_sse(api, session_id))
    async with api.ws(session_id) as ws:
        await ask(ws, "session.validate")
        await api.post("/lens/sessions/destroy", {"session_id": session_id})
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1000
    assert (await reader)[-1]["data"]["type"] == "sse.stream.end"


# ---- faults ------------------------------------------------------------------------------


async def test_ws_drop_after_aborts_without_a_close_frame(api: Api, emu: Emulator) -> None:
    session_id = await api.session(IMAGE_QA)
    emu.faults.ws_drop_after = 3
    async with api.ws(session_id) as ws:
        for _ in range(3):
            assert (await ask(ws, "session.validate"))["event_data"]["is_valid"]
        with pytest.raises(ConnectionClosedError) as err:
            await ask(ws, "session.validate")
        assert err.value.rcvd is None  # no close frame: the TCP connection was cut


async def test_reply_delay_applies_to_every_reply(api: Api, emu: Emulator) -> None:
    session_id = await api.session(IMAGE_QA)
    async with api.ws(session_id) as ws:
        emu.faults.reply_delay = 0.05
        loop = asyncio.get_running_loop()
        began = loop.time()
        for _ in range(3):
            await ws.send('{"type": "session.validate"}')
        for _ in range(3):
            await asyncio.wait_for(ws.recv(), 5)
        assert loop.time() - began >= 0.15  # delays are sequential: one reader, in order


async def test_ws_malformed_after_sends_one_bad_frame_then_goes_on(api: Api, emu: Emulator) -> None:
    session_id = await api.session(IMAGE_QA)
    emu.faults.malformed_after = 2
    async with api.ws(session_id) as ws:
        for i in range(5):
            await ws.send(json.dumps({"type": "model.query", "event_data": {"focus": str(i)}}))
        raw = [await asyncio.wait_for(ws.recv(), 5) for _ in range(6)]
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw[2])
    good = [json.loads(r) for i, r in enumerate(raw) if i != 2]
    assert [g["event_data"]["focus"] for g in good] == ["0", "1", "2", "3", "4"]


async def test_sse_drop_after_aborts_and_resume_continues(api: Api, emu: Emulator) -> None:
    session_id = await csv_session(api, rows=40)
    await api.event(session_id, "input_stream.set", csv_input())
    everything = lens_events(await read_sse(api, session_id))
    emu.faults.sse_drop_after = 5
    got: list[dict[str, Any]] = []
    with pytest.raises(aiohttp.ClientError):  # cut mid-body: the chunked body never ends
        async with asyncio.timeout(5), api.sse(session_id) as resp:
            async for frame in frames(resp):
                got.append(frame)
    assert got[0]["data"]["type"] == "sse.stream.start"
    assert lens_events(got) == everything[:5]  # dropped, no sse.stream.end
    emu.faults.sse_drop_after = None
    assert lens_events(await read_sse(api, session_id, "5")) == everything[5:]


async def test_sse_malformed_after_sends_one_bad_data_line(api: Api, emu: Emulator) -> None:
    session_id = await csv_session(api, rows=40)
    await api.event(session_id, "input_stream.set", csv_input())
    everything = lens_events(await read_sse(api, session_id))
    emu.faults.malformed_after = 3
    got = await read_sse(api, session_id)
    bad = [f for f in got if not isinstance(f["data"], dict)]
    assert len(bad) == 1 and bad[0]["id"] is None
    assert got.index(bad[0]) == 4  # start frame, 3 events, then the bad one
    assert lens_events(got) == everything


# ---- shutdown ----------------------------------------------------------------------------


async def test_stop_with_open_websockets_and_streams_returns_promptly(
    http: aiohttp.ClientSession,
) -> None:
    emu = Emulator(event_interval=0.01)
    await emu.start()
    api = Api(emu, http)
    session_id = await csv_session(api, rows=5000)
    await api.event(session_id, "input_stream.set", csv_input(window=1))  # a long input
    idle_session = await api.session(IMAGE_QA)
    async with api.ws(session_id) as busy, api.ws(idle_session) as idle:
        emu.faults.reply_delay = 0.5
        await busy.send('{"type": "session.validate"}')  # in flight during the stop
        async with api.sse(session_id) as live, api.sse(idle_session) as silent:
            await live.content.readuntil(b"\n\n")
            await silent.content.readuntil(b"\n\n")
            async with asyncio.timeout(5):  # a hang guard, not a speed assertion
                await emu.stop()
            for stream in (live, silent):  # EOF (or a cut, had it not finished in time)
                with contextlib.suppress(aiohttp.ClientError):
                    while await stream.content.read(65536):
                        pass
                assert stream.content.at_eof() or stream.content.exception()
        for sock in (busy, idle):
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(sock.recv(), 5)
        assert idle.close_code == 1001
