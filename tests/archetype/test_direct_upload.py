"""Direct multipart uploads: the client against the emulator's routes and storage."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from aiolens import AsyncArchetypeClient, BadRequestError, NotFoundError, PermissionDeniedError
from aiolens.archetype import files
from aiolens.archetype.uploads import UploadProgress
from aiolens.emulator import Emulator
from aiolens.emulator.lens_uploads import Upload

PART = 64 * 1024


@pytest.fixture
def small_parts(emulator: Emulator) -> Emulator:
    emulator.lens.upload_part_size = PART
    return emulator


def make_file(tmp_path: Path, size: int, name: str = "big.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


def uploads(emulator: Emulator) -> list[Upload]:
    return [u for u in emulator.lens.uploads.values() if isinstance(u, Upload)]


async def test_a_file_goes_up_in_parts_and_comes_back_identical(
    client: AsyncArchetypeClient, small_parts: Emulator, tmp_path: Path
) -> None:
    path = make_file(tmp_path, 17 * PART + 7)
    seen: list[UploadProgress] = []
    uploaded = await client.files.upload(path, direct=True, progress=seen.append)
    assert uploaded.file_id == "big.csv" and uploaded.file_uid
    assert await client.files.read("big.csv") == path.read_bytes()
    (upload,) = uploads(small_parts)
    assert upload.state == "completed" and upload.num_parts == 18
    assert upload.parts_received == 18
    assert len(upload.checkpointed) == 18
    assert seen[-1] == UploadProgress(18, 18, path.stat().st_size, path.stat().st_size)
    meta = await client.files.metadata("big.csv")
    assert meta.file_uid == uploaded.file_uid and meta.file_status == "FILE_STATUS_INGESTED"


async def test_bytes_go_direct_too(client: AsyncArchetypeClient, small_parts: Emulator) -> None:
    data = os.urandom(3 * PART)
    await client.files.upload(data, filename="b.txt", direct=True)
    assert await client.files.read("b.txt") == data


async def test_upload_chooses_direct_above_the_threshold(
    client: AsyncArchetypeClient,
    small_parts: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(files, "DIRECT_UPLOAD_THRESHOLD", 2 * PART)
    await client.files.upload(make_file(tmp_path, PART, "small.csv"))
    assert uploads(small_parts) == []  # one proxy POST
    await client.files.upload(make_file(tmp_path, 3 * PART, "large.csv"))
    assert [u.filename for u in uploads(small_parts)] == ["large.csv"]


async def test_failed_parts_are_retried(
    client: AsyncArchetypeClient, small_parts: Emulator, tmp_path: Path
) -> None:
    path = make_file(tmp_path, 4 * PART)
    fault = small_parts.faults.fail_next(503, count=3, path="/_storage/", retry_after="0.01")
    await client.files.upload(path, direct=True, part_concurrency=2)
    assert fault.count == 0
    assert await client.files.read("big.csv") == path.read_bytes()


async def test_an_expired_url_is_refreshed(
    client: AsyncArchetypeClient, small_parts: Emulator, tmp_path: Path
) -> None:
    path = make_file(tmp_path, 4 * PART)
    small_parts.faults.part_urls_expired = 2
    await client.files.upload(path, direct=True)
    assert small_parts.faults.part_urls_expired == 0
    assert await client.files.read("big.csv") == path.read_bytes()


async def test_a_connection_dropped_mid_part_is_resent(
    client: AsyncArchetypeClient, small_parts: Emulator, tmp_path: Path
) -> None:
    path = make_file(tmp_path, 4 * PART)
    small_parts.faults.part_drop_after = PART // 2
    seen: list[UploadProgress] = []
    await client.files.upload(path, direct=True, part_concurrency=1, progress=seen.append)
    assert small_parts.faults.part_drop_after is None
    assert await client.files.read("big.csv") == path.read_bytes()
    (upload,) = uploads(small_parts)
    assert upload.parts_received == 4  # the dropped PUT stored nothing
    assert seen[-1].bytes_done == 4 * PART  # the dropped bytes were taken back


async def test_giving_up_aborts_the_upload(
    client: AsyncArchetypeClient, small_parts: Emulator, tmp_path: Path
) -> None:
    small_parts.lens.upload_url_ttl = -10  # every URL is born expired
    with pytest.raises(PermissionDeniedError):
        await client.files.upload(make_file(tmp_path, 2 * PART), direct=True)
    (upload,) = uploads(small_parts)
    assert upload.state == "aborted"
    with pytest.raises(NotFoundError):
        await client.files.metadata("big.csv")


async def test_a_part_refused_for_good_aborts_at_once(
    client: AsyncArchetypeClient, small_parts: Emulator, tmp_path: Path
) -> None:
    fault = small_parts.faults.fail_next(400, count=1, path="/_storage/")
    with pytest.raises(BadRequestError):
        await client.files.upload(make_file(tmp_path, 2 * PART), direct=True)
    assert fault.count == 0
    assert [u.state for u in uploads(small_parts)] == ["aborted"]


async def test_a_cancelled_resumable_upload_resumes_with_only_the_missing_parts(
    client: AsyncArchetypeClient, small_parts: Emulator, tmp_path: Path
) -> None:
    path = make_file(tmp_path, 10 * PART)
    halfway = asyncio.Event()

    def watch(p: UploadProgress) -> None:
        if p.parts_done >= 4:
            halfway.set()

    first = asyncio.create_task(
        client.files.upload(path, direct=True, resume=True, part_concurrency=1, progress=watch)
    )
    await halfway.wait()
    await asyncio.sleep(0)  # let the 4th part's checkpoint go out
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    (upload,) = uploads(small_parts)
    assert upload.state == "uploading"  # kept for the resume
    done_before = len(upload.checkpointed)
    assert 4 <= done_before < 10
    received_before = upload.parts_received

    seen: list[UploadProgress] = []
    await client.files.upload(path, direct=True, resume=True, progress=seen.append)
    assert upload.state == "completed"
    assert upload.parts_received - received_before == 10 - done_before
    assert seen[0].parts_done == done_before  # progress starts where the first run stopped
    assert await client.files.read("big.csv") == path.read_bytes()


async def test_a_cancelled_upload_without_resume_is_aborted(
    client: AsyncArchetypeClient, small_parts: Emulator, tmp_path: Path
) -> None:
    started = asyncio.Event()
    task = asyncio.create_task(
        client.files.upload(
            make_file(tmp_path, 8 * PART),
            direct=True,
            part_concurrency=1,
            progress=lambda p: started.set(),
        )
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [u.state for u in uploads(small_parts)] == ["aborted"]


async def test_options_are_checked_before_anything_is_sent(
    client: AsyncArchetypeClient, small_parts: Emulator, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="part_concurrency"):
        await client.files.upload(b"x", filename="x.txt", direct=True, part_concurrency=0)
    assert uploads(small_parts) == []


async def test_the_key_never_goes_to_storage(
    client: AsyncArchetypeClient,
    small_parts: Emulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    small_parts.faults.fail_next(503, count=1, path="/_storage/")
    await client.files.upload(make_file(tmp_path, 2 * PART), direct=True)
    assert small_parts.api_key not in caplog.text
