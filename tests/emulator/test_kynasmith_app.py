"""The emulated Kynasmith API spoken to directly (raw HTTP and WebSocket), over loopback."""

from __future__ import annotations

import base64
import json
import string
import time
import uuid
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
    assert sum(s.name == "mine" for s in emulator.kynasmith.movespecs.values()) == 1


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
        spec = next(i for i, s in emulator.kynasmith.movespecs.items() if s.name == "squat")
        created = await client.sessions.create(movespec_id=spec)
        finalizing = await client.sessions.finalize(created.session_id)
        record = await client.sessions.get(created.session_id)
        with pytest.raises(ConflictError) as err:
            await client.sessions.cancel(created.session_id)
    assert finalizing.status == "finalizing" and finalizing.ended_at is None
    assert record.status == "completed" and record.ended_at is not None
    assert err.value.code == "session_terminal"


# ---- ids, tokens and scopes as the seed pages give them (issue 12, deviations 9-10) --------


def _jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWT (``header.payload.signature``, unpadded base64url)."""
    parts = token.split(".")
    assert len(parts) == 3 and all(parts)
    assert all(set(p) <= set(string.ascii_letters + string.digits + "-_") for p in parts)
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    assert header["typ"] == "JWT"
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
    )
    return claims


def _is_uuid(value: str) -> bool:
    return str(uuid.UUID(value)) == value


async def test_ids_are_uuids_and_tokens_are_jwts_with_exp(emulator: Emulator) -> None:
    base = emulator.kynasmith_url
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/api/auth/access-tokens", json={"api_key": emulator.kynasmith_api_key}
        ) as resp:
            minted = await resp.json()
        auth = {"Authorization": f"Bearer {minted['access_token']}"}
        async with http.get(f"{base}/api/movespecs", headers=auth) as resp:
            spec = next(s for s in await resp.json() if s["name"] == "squat")
        body = {
            "mode": "replay",
            "project_id": minted["project_id"],
            "movespec_id": spec["movespec_id"],
        }
        async with http.post(f"{base}/api/detection/sessions", json=body, headers=auth) as resp:
            created = await resp.json()
    assert type(minted["expires_in_seconds"]) is int and minted["expires_in_seconds"] == 900
    access = _jwt_claims(minted["access_token"])
    assert access["exp"] - access["iat"] == 900 and abs(access["iat"] - time.time()) < 60
    runtime = _jwt_claims(created["runtime_token"])
    assert runtime["sub"] == created["session_id"] and runtime["exp"] > time.time()
    for value in (
        minted["project_id"],
        minted["organization_id"],
        spec["movespec_id"],
        spec["current_released_version_id"],
        created["session_id"],
        created["resolved_movespec_version_id"],
    ):
        assert _is_uuid(value), value


async def test_a_short_token_lifetime_is_answered_in_whole_seconds_never_longer() -> None:
    async with (
        Emulator(kynasmith_token_ttl=2.5) as emu,
        aiohttp.ClientSession() as http,
        http.post(
            f"{emu.kynasmith_url}/api/auth/access-tokens", json={"api_key": emu.kynasmith_api_key}
        ) as resp,
    ):
        minted = await resp.json()
    assert minted["expires_in_seconds"] == 2


async def test_the_vendor_sdk_scope_for_reading_a_session_is_accepted(emulator: Emulator) -> None:
    """SDK 0.1.0 reads a session with a token scoped ``projects:read`` (docs: ``sessions:read``)."""
    base = emulator.kynasmith_url
    url, _ = await _squat_session(emulator)
    session_id = url.rsplit("/", 2)[-2]

    async def read_with(scope: str) -> int:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/api/auth/access-tokens",
                json={"api_key": emulator.kynasmith_api_key, "scopes": [scope]},
            ) as resp:
                token = (await resp.json())["access_token"]
            async with http.get(
                f"{base}/api/detection/sessions/{session_id}",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                return resp.status

    assert await read_with("projects:read") == 200
    assert await read_with("sessions:read") == 200
    assert await read_with("movespecs:read") == 403


async def test_unknown_routes_answer_the_error_envelope(emulator: Emulator) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emulator.kynasmith_url}/api/no/such/route") as resp,
    ):
        body = await resp.json()
    assert resp.status == 404 and resp.headers["X-Request-ID"]
    assert body["error"]["code"] == "not_found" and body["error"]["retryable"] is False


async def test_frames_breaking_the_contract_are_rejected(emulator: Emulator) -> None:
    """Missing ``confidence`` / ``pose_schema`` / ``frame_seq`` or ``source.kind: webcam``."""
    url, token = await _squat_session(emulator)
    good = [json.loads(encoder.encode(f)) for f in generate_squats(0)[:5]]
    no_confidence = {k: v for k, v in good[1].items() if k != "confidence"}
    no_schema = {k: v for k, v in good[2].items() if k != "pose_schema"}
    webcam = {**good[3], "source": {"kind": "webcam", "frame_width": 640, "frame_height": 480}}
    no_seq = {k: v for k, v in good[4].items() if k != "frame_seq"}
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, params={"runtime_token": token}) as ws,
    ):
        await ws.send_json(
            {
                "type": "frame_batch",
                "batch_seq": 1,
                "frames": [good[0], no_confidence, no_schema, webcam, no_seq],
            }
        )
        ack = await _until(ws, "frame_ack")
        await ws.send_json({"type": "frame_batch", "batch_seq": 2})  # no frames: valid, empty
        empty = await _until(ws, "frame_ack")
    assert ack["rejected_frame_indexes"] == [1, 2, 3, 4] and ack["accepted_frames_total"] == 1
    assert empty == {
        "type": "frame_ack",
        "batch_seq": 2,
        "accepted_frame_count": 0,
        "accepted_frames_total": 1,
        "rejected_frame_indexes": [],
    }


async def test_a_failed_session_records_its_error(emulator: Emulator) -> None:
    url, token = await _squat_session(emulator)
    emulator.faults.detection_fail_after = 1
    frames = [json.loads(encoder.encode(f)) for f in generate_squats(0)[:2]]
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, params={"runtime_token": token}) as ws,
    ):
        await ws.send_json({"type": "frame_batch", "batch_seq": 1, "frames": frames})
        done = await _until(ws, "session_done")
    session = emulator.kynasmith.sessions[done["session_id"]]
    assert done["status"] == "failed" and done["error"]["code"] == "internal_error"
    record = session.record(emulator.kynasmith.organization_id)
    assert record.error_code == "internal_error" and record.error_message
