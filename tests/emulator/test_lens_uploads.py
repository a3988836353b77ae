"""The emulator's direct-upload routes and storage, driven with raw aiohttp."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from aiolens.emulator import Emulator

PART = 1024


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        emulator.lens.upload_part_size = PART
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Uploads:
    def __init__(self, emu: Emulator, http: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.http = http
        self.auth = {"Authorization": f"Bearer {emu.api_key}"}

    async def call(self, path: str, body: dict[str, Any], status: int = 200) -> Any:
        url = f"{self.emu.lens_url}/files/uploads{path}"
        async with self.http.post(url, json=body, headers=self.auth) as resp:
            payload = await resp.json()
            assert resp.status == status, payload
            return payload

    async def initiate(self, data: bytes, name: str = "log.jsonl", **extra: Any) -> Any:
        body = {"filename": name, "file_type": "application/x-ndjson", "num_bytes": len(data)}
        return await self.call("/initiate", {**body, **extra})

    async def put(self, part: dict[str, Any], data: bytes) -> tuple[int, str]:
        chunk = data[part["offset"] : part["offset"] + part["length"]]
        async with self.http.put(part["url"], data=chunk) as resp:  # no auth header
            return resp.status, resp.headers.get("ETag", "") or await resp.text()

    async def put_all(self, init: Any, data: bytes) -> list[dict[str, Any]]:
        tokens = []
        for part in init["parts"]:
            status, token = await self.put(part, data)
            assert status == 200, token
            tokens.append({"part_number": part["part_number"], "part_token": token})
        return tokens


@pytest.fixture
def up(emu: Emulator, http: aiohttp.ClientSession) -> Uploads:
    return Uploads(emu, http)


DATA = bytes(range(256)) * 13  # 3328 bytes: parts of 1024, 1024, 1024, 256


async def test_the_whole_flow_with_zero_based_parts_and_a_checksum(up: Uploads) -> None:
    init = await up.initiate(DATA)
    assert init["num_parts"] == 4 and init["total_bytes"] == len(DATA)
    assert [p["part_number"] for p in init["parts"]] == [0, 1, 2, 3]
    assert [(p["offset"], p["length"]) for p in init["parts"]][-1] == (3072, 256)
    assert init["is_resume"] is False and init["integrity_algorithm"] == "sha256"
    tokens = await up.put_all(init, DATA)
    assert all(t["part_token"].startswith('"') for t in tokens)  # ETag, quotes included
    checksum = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
    done = await up.call(
        f"/{init['upload_id']}/complete", {"parts": tokens, "integrity_checksum": checksum}
    )
    assert done["file_name"] == "log.jsonl" and done["file_status"] == "Registered"
    assert up.emu.lens.files["log.jsonl"].data == DATA
    again = await up.call(f"/{init['upload_id']}/complete", {"parts": tokens}, 409)
    assert again["errors"][0]["code"] == "upload_already_completed"


async def test_a_checksum_mismatch_stores_the_file_as_corrupt(up: Uploads) -> None:
    init = await up.initiate(DATA)
    tokens = await up.put_all(init, DATA)
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    failed = await up.call(
        f"/{init['upload_id']}/complete", {"parts": tokens, "integrity_checksum": wrong}, 400
    )
    assert failed["errors"][0]["code"] == "integrity_check_failed"
    assert up.emu.lens.files["log.jsonl"].file_status == "FILE_STATUS_CORRUPT"
    url = f"{up.emu.lens_url}/files/download/log.jsonl"
    async with up.http.get(url, headers=up.auth) as resp:
        assert resp.status == 400


async def test_complete_checks_every_part_and_its_token(up: Uploads) -> None:
    init = await up.initiate(DATA)
    tokens = await up.put_all(init, DATA)
    missing = await up.call(f"/{init['upload_id']}/complete", {"parts": tokens[:3]}, 400)
    assert missing["errors"][0]["code"] == "missing_parts"
    bad = [{**tokens[0], "part_token": '"nope"'}, *tokens[1:]]
    wrong = await up.call(f"/{init['upload_id']}/complete", {"parts": bad}, 400)
    assert wrong["errors"][0]["code"] == "invalid_part_token"
    # checkpointed parts may be left out of complete
    await up.call(f"/{init['upload_id']}/parts/checkpoint", {"parts": tokens[:2]})
    await up.call(f"/{init['upload_id']}/complete", {"parts": tokens[2:]})


async def test_resume_lists_only_the_parts_not_checkpointed(up: Uploads) -> None:
    init = await up.initiate(DATA)
    tokens = await up.put_all(init, DATA)
    checkpointed = await up.call(f"/{init['upload_id']}/parts/checkpoint", {"parts": tokens[:3]})
    assert checkpointed == {"num_checkpointed": 3}
    again = await up.initiate(DATA, resume_if_started=True)
    assert again["upload_id"] == init["upload_id"] and again["is_resume"] is True
    assert [p["part_number"] for p in again["parts"]] == [3]
    fresh = await up.initiate(DATA)  # without resume_if_started: a new upload
    assert fresh["upload_id"] != init["upload_id"] and len(fresh["parts"]) == 4


async def test_refreshed_urls_come_in_the_order_asked(up: Uploads) -> None:
    init = await up.initiate(DATA)
    urls = await up.call(f"/{init['upload_id']}/parts/urls", {"part_numbers": [2, 0, 2]})
    assert [p["part_number"] for p in urls["parts"]] == [2, 0, 2]
    status, _ = await up.put(urls["parts"][0], DATA)
    assert status == 200
    await up.call(f"/{init['upload_id']}/parts/urls", {"part_numbers": [4]}, 400)


async def test_expired_and_tampered_urls_are_403(up: Uploads) -> None:
    up.emu.lens.upload_url_ttl = -5
    init = await up.initiate(DATA)
    status, body = await up.put(init["parts"][0], DATA)
    assert status == 403 and "Request has expired" in body
    part = {**init["parts"][0], "url": init["parts"][0]["url"].replace("signature=", "signature=0")}
    status, body = await up.put(part, DATA)
    assert status == 403 and "SignatureDoesNotMatch" in body


async def test_a_part_of_the_wrong_length_is_refused(up: Uploads) -> None:
    init = await up.initiate(DATA)
    async with up.http.put(init["parts"][0]["url"], data=DATA[:100]) as resp:
        assert resp.status == 400
        assert "IncompleteBody" in await resp.text()


async def test_abort_ends_the_upload(up: Uploads) -> None:
    init = await up.initiate(DATA)
    await up.call(f"/{init['upload_id']}/abort", {})
    status, body = await up.put(init["parts"][0], DATA)
    assert status == 404 and "NoSuchUpload" in body
    await up.call(f"/{init['upload_id']}/abort", {}, 409)
    await up.call("/upl-unknown/complete", {"parts": []}, 404)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"filename": "a.bin", "file_type": "application/octet-stream", "num_bytes": 5},
            400,
            "invalid_file_type",
        ),
        ({"filename": "a.csv", "file_type": "text/csv", "num_bytes": 0}, 400, "invalid_file_size"),
        ({"file_type": "text/csv", "num_bytes": 5}, 400, "missing_parameter"),
        (
            {"filename": "a.csv", "file_type": "text/csv", "num_bytes": 1 << 40},
            413,
            "invalid_file_size",
        ),
    ],
)
async def test_initiate_checks_its_body(
    up: Uploads, body: dict[str, Any], status: int, code: str
) -> None:
    answer = await up.call("/initiate", body, status)
    assert answer["errors"][0]["code"] == code


async def test_the_upload_routes_need_the_key(up: Uploads) -> None:
    url = f"{up.emu.lens_url}/files/uploads/initiate"
    async with up.http.post(url, json={}) as resp:
        assert resp.status == 401
