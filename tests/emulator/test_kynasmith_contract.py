"""Every Kynasmith flow of the emulator, each answer validated by the vendor's contract.

The suite-wide check (``tests/conftest.py``) validates whatever the other tests
make the emulator send; this test makes sure every route and every realtime
message type is among it, success and error answers alike.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from aiolens.emulator import Emulator, wire_tap
from aiolens.emulator.movespec_yaml import SQUAT_YAML
from aiolens.kynasmith.models import encoder
from aiolens.kynasmith.synthetic import generate_squats
from tests.kynasmith_contract import REST_MODELS, UNCOVERED, ContractCheck

SERVER_MESSAGES = {"frame_ack", "event_batch", "session_update", "session_done", "error", "pong"}
"""The emulator never sends ``ping`` (the seeds give clients, not servers, a keepalive)."""


class Raw:
    """The Kynasmith API spoken with plain aiohttp, answers kept as JSON."""

    def __init__(self, http: aiohttp.ClientSession, emu: Emulator) -> None:
        self.http, self.emu, self.base = http, emu, emu.kynasmith_url
        self.token = ""

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(kw.pop("headers", {}))
        async with self.http.request(
            method, f"{self.base}{path}", json=body, headers=headers, **kw
        ) as resp:
            return resp.status, await resp.json()


async def _receive(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await ws.receive_str(timeout=10))
        if message["type"] in (kind, "error"):
            return message


async def _every_flow(api: Raw, emu: Emulator) -> None:
    frames = [json.loads(encoder.encode(f)) for f in generate_squats(2, seed=5)]
    assert (await api.call("GET", "/api/health"))[0] == 200
    assert (await api.call("POST", "/api/auth/access-tokens", {"api_key": "k:nope"}))[0] == 401
    status, minted = await api.call(
        "POST", "/api/auth/access-tokens", {"api_key": emu.kynasmith_api_key}
    )
    assert status == 200
    project = minted["project_id"]
    assert (await api.call("GET", "/api/movespecs/x/draft"))[0] == 401  # no token
    api.token = minted["access_token"]
    # MoveSpecs: catalogue, authoring, versions, release, fork
    _, specs = await api.call("GET", "/api/movespecs", params={"visibility": "public"})
    squat = next(s["movespec_id"] for s in specs if s["name"] == "squat")
    status, spec = await api.call("POST", "/api/movespecs", {"project_id": project, "name": "m"})
    assert status == 201
    path = f"/api/movespecs/{spec['movespec_id']}"
    assert (await api.call("GET", path))[0] == 200
    assert (await api.call("PATCH", path, {"description": "d", "visibility": "public"}))[0] == 200
    assert (await api.call("PATCH", path, {"visibility": "delisted"}))[0] == 422
    assert (await api.call("PUT", f"{path}/draft", {"yaml_source": "name: [\n"}))[0] == 200
    status, bad = await api.call("POST", f"{path}/draft/validate")
    assert status == 200 and not bad["ok"]
    assert (await api.call("POST", f"{path}/versions"))[0] == 422
    assert (await api.call("PUT", f"{path}/draft", {"yaml_source": SQUAT_YAML}))[0] == 200
    assert (await api.call("GET", f"{path}/draft"))[0] == 200
    status, version = await api.call("POST", f"{path}/versions")
    assert status == 201
    version_id = version["movespec_version_id"]
    assert (await api.call("GET", f"{path}/versions"))[0] == 200
    assert (await api.call("GET", f"{path}/versions/{version_id}"))[0] == 200
    assert (await api.call("POST", f"{path}/versions/{version_id}/release"))[0] == 200
    assert (await api.call("GET", f"{path}/versions/nope"))[0] == 404
    fork = {"project_id": project, "name": "f"}
    headers = {"Idempotency-Key": "fork-1"}
    assert (await api.call("POST", f"/api/movespecs/{squat}/fork", fork, headers=headers))[0] == 201
    again = await api.call(
        "POST", f"/api/movespecs/{squat}/fork", {**fork, "name": "g"}, headers=headers
    )
    assert again[0] == 409
    # detection sessions: every refusal, then a streamed session and REST endings
    sessions = "/api/detection/sessions"
    create = {"mode": "replay", "project_id": project, "movespec_id": squat}
    assert (await api.call("POST", sessions, {**create, "mode": "x"}))[0] == 422
    assert (await api.call("POST", sessions, {**create, "project_id": "other"}))[0] == 403
    assert (await api.call("POST", sessions, {**create, "contract_major": 2}))[0] == 409
    assert (await api.call("POST", sessions, {**create, "movespec_version_id": version_id}))[
        0
    ] == 422
    status, created = await api.call("POST", sessions, create)
    assert status == 201
    async with api.http.ws_connect(
        created["stream_url"], params={"runtime_token": created["runtime_token"]}
    ) as ws:
        assert (await _receive(ws, "session_update"))["status"] == "created"
        await ws.send_json({"type": "ping"})
        await _receive(ws, "pong")
        await ws.send_json({"type": "frame_batch", "batch_seq": 1, "frames": frames})
        assert (await _receive(ws, "frame_ack"))["accepted_frames_total"] == len(frames)
        await ws.send_json({"type": "frame_batch", "batch_seq": 1, "frames": frames[:1]})
        await ws.send_json({"type": "frame_batch", "batch_seq": 0})
        assert (await _receive(ws, "none"))["error"]["code"] == "validation_error"
        await ws.send_str("not json")
        assert (await _receive(ws, "none"))["error"]["code"] == "validation_error"
        await ws.send_json({"type": "finalize"})
        assert (await _receive(ws, "session_done"))["status"] == "completed"
    one = f"{sessions}/{created['session_id']}"
    assert (await api.call("GET", one))[0] == 200
    assert (await api.call("POST", f"{one}/cancel"))[0] == 409
    assert (await api.call("POST", f"{one}/finalize"))[0] == 409
    for ending in ("finalize", "cancel"):
        status, other = await api.call(
            "POST", sessions, {**create, "movespec_id": None, "movespec_version_id": version_id}
        )
        assert status == 201
        assert (await api.call("POST", f"{sessions}/{other['session_id']}/{ending}"))[0] == 200
    async with api.http.ws_connect(created["stream_url"], params={"runtime_token": "x"}) as ws:
        assert (await _receive(ws, "none"))["error"]["code"] == "access_token_invalid"
    assert (await api.call("GET", f"{sessions}/nope"))[0] == 404
    assert (await api.call("GET", "/api/no/such/route"))[0] == 404
    emu.kynasmith.limits["movespecs"] = 0
    assert (await api.call("GET", path))[0] == 429


async def test_every_route_and_message_conforms_to_the_vendor_contract(emulator: Emulator) -> None:
    from tests.kynasmith_contract import load

    vendor = load()
    if isinstance(vendor, str):
        pytest.skip(vendor)
    check = ContractCheck(vendor)
    seen: list[wire_tap.WireItem] = []
    wire_tap.add_tap(check)
    wire_tap.add_tap(seen.append)
    try:
        async with aiohttp.ClientSession() as http:
            await _every_flow(Raw(http, emulator), emulator)
    finally:
        wire_tap.remove_tap(check)
        wire_tap.remove_tap(seen.append)
    assert check.failures == []
    routes = {i.route for i in seen if i.channel == "rest" and i.status < 400}
    assert routes == set(REST_MODELS) | UNCOVERED
    assert {i.status for i in seen if i.channel == "rest"} >= {401, 403, 404, 409, 422, 429}
    kinds = {json.loads(i.body)["type"] for i in seen if i.channel == "realtime"}
    assert kinds == SERVER_MESSAGES
    validated = check.validated["rest"] + check.validated["realtime"]
    assert validated + check.uncovered["GET /api/health"] == len(seen)
