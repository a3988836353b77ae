"""The emulator's Files API file types, read from the protocol and checked on the wire."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import pytest

from aiolens.emulator import Emulator
from aiolens.emulator.lens_files import ACCEPTED_FILE_TYPES, MIME_BY_EXTENSION, mime_type_for

# PROTOCOL A.9.1, written out here a second time so that a slip in the emulator's table
# fails instead of passing.
PROTOCOL_ACCEPTED = {
    "image/jpeg",
    "image/png",
    "video/mp4",
    "text/plain",
    "text/csv",
    "application/json",
}
PROTOCOL_SDK_EXTENSIONS = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".mp4": "video/mp4",
    ".csv": "text/csv",
    ".json": "text/plain",
    ".jsonl": "text/plain",
    ".txt": "text/plain",
    ".text": "text/plain",
}


def test_the_tables_are_the_protocols() -> None:
    assert ACCEPTED_FILE_TYPES == PROTOCOL_ACCEPTED
    assert MIME_BY_EXTENSION == PROTOCOL_SDK_EXTENSIONS
    assert "application/x-ndjson" not in ACCEPTED_FILE_TYPES  # JSONL: direct uploads only


@pytest.mark.parametrize(
    ("filename", "mime"),
    [
        ("DIR/Clip.MP4", "video/mp4"),
        ("log.jsonl", "text/plain"),
        ("photo.jpeg", "image/jpeg"),
        ("notes.gif", "image/gif"),
        ("blob", "application/octet-stream"),
    ],
)
def test_mime_type_for(filename: str, mime: str) -> None:
    assert mime_type_for(filename) == mime


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


async def _upload_base64(emu: Emulator, filename: str, data: bytes) -> tuple[int, dict[str, str]]:
    form = aiohttp.FormData()
    form.add_field("file", base64.b64encode(data), filename=filename)
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emu.lens_url}/files/base64", data=form, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("filename", "stored_as"),
    [("readings.csv", "text/csv"), ("log.jsonl", "text/plain"), ("clip.mp4", "video/mp4")],
)
async def test_base64_uploads_take_their_type_from_the_filename(
    emu: Emulator, filename: str, stored_as: str
) -> None:
    status, body = await _upload_base64(emu, filename, b"a,b\n1,2\n")
    assert status == 200, body
    assert emu.lens.files[filename].file_type == stored_as


async def test_a_base64_upload_of_a_refused_type_is_400(emu: Emulator) -> None:
    status, body = await _upload_base64(emu, "anim.gif", b"GIF89a")
    assert status == 400
    assert body["errors"][0]["code"] == "invalid_file_type"
    assert "anim.gif" not in emu.lens.files
