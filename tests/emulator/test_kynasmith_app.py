"""The emulated Kynasmith API spoken to directly (raw HTTP and WebSocket), over loopback."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from aiolens import ConflictError
from aiolens.emulator import Emulator
from aiolens.kynasmith import AsyncKynasmithClient
from aiolens.kynasmith.models import encoder
from aiolens.kynasmith.synthetic import generate_squats


async def _squat_session(emu: Emulator) -> tuple[str, str]:
    """A new replay session of the seeded squat MoveSpec: (stream URL, runtime token)."""
    async with AsyncKynasmithClient(emu.kynasmith_api_key, base_url=emu.kynasmith_url) as client:
        specs = await client.movespecs.list(visibility="public")
        spec = next(s.movespec_id for s in specs if s.name == "squat")
        created = await client.sessions.create(movespec_id=spec)
    return created.stream_url, created.runtime_token


async def _until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await ws.receive_str(timeout=10))
        if message["type"] == kind:
            return message


async def test_frames_of_the_wrong_shape_are_rejected_one_by_one(emulator: Emulator) -> None:
    url, token = await _squat_session(emulator)
    good = [json.loads(encoder.encode(f)) for f in generate_squats(0)[:3]]
    no_landmarks = {k: v for k, v in good[1].items() if k != "landmarks"}
    text_coordinate = json.loads(json.dumps(good[2]))
    text_coordinate["landmarks"][0]["x"] = "left"
    frames = [good[0], no_landmarks, text_coordinate, "not a frame"]
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, params={"runtime_token": token}) as ws,
    ):
        await ws.send_json({"type": "frame_batch", "batch_seq": 1, "frames": frames})
        ack = await _until(ws, "frame_ack")
    assert ack["batch_seq"] == 1
    assert ack["rejected_frame_indexes"] == [1, 2, 3]
    assert ack["accepted_frame_count"] == 1 and ack["accepted_frames_total"] == 1


async def test_an_idempotency_key_is_bound_to_its_endpoint(emulator: Emulator) -> None:
    async with AsyncKynasmithClient(
        emulator.kynasmith_api_key, base_url=emulator.kynasmith_url
    ) as client:
        specs = {s.name: s.movespec_id for s in await client.movespecs.list(visibility="public")}
        fork = await client.movespecs.fork(specs["squat"], name="mine", idempotency_key="k")
        again = await client.movespecs.fork(specs["squat"], name="mine", idempotency_key="k")
        assert again.movespec_id == fork.movespec_id
        # the same key and body on another MoveSpec's fork is another request
        with pytest.raises(ConflictError) as err:
            await client.movespecs.fork(specs["lunge"], name="mine", idempotency_key="k")
    assert err.value.details == {"reason": "idempotency_key_reuse"}
    assert sum(s["name"] == "mine" for s in emulator.kynasmith.movespecs.values()) == 1


async def test_without_a_token_only_the_public_catalogue_shows(emulator: Emulator) -> None:
    async with AsyncKynasmithClient(
        emulator.kynasmith_api_key, base_url=emulator.kynasmith_url
    ) as client:
        private = await client.movespecs.create("mine")
    base = emulator.kynasmith_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/movespecs") as resp:
            names = {s["name"] for s in await resp.json()}
        async with http.get(f"{base}/api/movespecs/{private.movespec_id}") as resp:
            status = resp.status
    assert names == {"squat", "lunge"}
    assert status == 404


async def test_rest_finalize_passes_through_finalizing(emulator: Emulator) -> None:
    async with AsyncKynasmithClient(
        emulator.kynasmith_api_key, base_url=emulator.kynasmith_url
    ) as client:
        spec = next(i for i, s in emulator.kynasmith.movespecs.items() if s["name"] == "squat")
        created = await client.sessions.create(movespec_id=spec)
        finalizing = await client.sessions.finalize(created.session_id)
        record = await client.sessions.get(created.session_id)
        with pytest.raises(ConflictError) as err:
            await client.sessions.cancel(created.session_id)
    assert finalizing.status == "finalizing" and finalizing.ended_at is None
    assert record.status == "completed" and record.ended_at is not None
    assert err.value.code == "session_terminal"
