"""Observers and captured raw responses, against the emulator."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aiolens import AsyncArchetypeClient, NotFoundError
from aiolens.emulator import Emulator
from aiolens.observe import Observer, RequestSample, capture_responses
from tests.conftest import FAST_BACKOFF


class Recorder(Observer):
    def __init__(self) -> None:
        self.samples: list[RequestSample] = []

    def request_finished(self, sample: RequestSample) -> None:
        self.samples.append(sample)


def _client(emulator: Emulator, observer: Observer | None = None) -> AsyncArchetypeClient:
    return AsyncArchetypeClient(
        emulator.api_key, emulator.lens_url, backoff=FAST_BACKOFF, observer=observer
    )


async def test_every_rest_call_reaches_the_observer_with_its_answer(emulator: Emulator) -> None:
    recorder = Recorder()
    emulator.faults.fail_next(503, path="/lens/metadata", count=1)
    async with _client(emulator, recorder) as client:
        await client.lenses.metadata()
        with pytest.raises(NotFoundError):
            await client.sessions.destroy("lsn-nope")
    ok, failed = recorder.samples
    assert ok.transport == "http" and ok.name.startswith("GET ") and ok.error is None
    assert ok.name.endswith("/lens/metadata") and ok.duration > 0
    assert ok.response is not None
    assert ok.response.status == 200 and ok.response.attempts == 2  # the 503 was retried
    assert ok.response.headers["Content-Type"].startswith("application/json")
    assert isinstance(failed.error, NotFoundError)
    assert failed.response is not None and failed.response.status == 404
    assert emulator.api_key not in repr(recorder.samples)


async def test_capture_responses_sees_only_its_own_tasks_calls(emulator: Emulator) -> None:
    async with _client(emulator) as client:

        async def elsewhere() -> None:
            for _ in range(3):
                await client.lenses.info()

        other = asyncio.create_task(elsewhere())  # made outside the block: not captured
        with capture_responses() as outer:
            await client.lenses.metadata()
            with capture_responses() as inner:
                await client.files.info()
            await asyncio.gather(client.sessions.info(), client.sessions.info())
        await other
    assert [r.url.rsplit("/", 2)[-2:] for r in inner] == [["files", "info"]]
    paths = [r.url.split("/v0.5", 1)[1].split("?")[0] for r in outer]
    assert paths[:2] == ["/lens/metadata", "/files/info"]
    assert sorted(paths[2:]) == ["/lens/sessions/info", "/lens/sessions/info"]
    assert all(r.status == 200 and r.attempts == 1 and r.method == "GET" for r in outer)


async def test_an_observer_that_raises_is_logged_and_changes_nothing(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Observer):
        def request_finished(self, sample: RequestSample) -> None:
            raise RuntimeError("observer bug")

    async with _client(emulator, Broken()) as client:
        with caplog.at_level(logging.ERROR, logger="aiolens"):
            lenses = await client.lenses.metadata()
    assert lenses
    assert any("observer" in r.getMessage() and r.exc_info for r in caplog.records)
