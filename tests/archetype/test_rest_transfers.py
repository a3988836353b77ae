"""Failures while a REST answer's body is arriving, against crafted servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import yarl
from aiohttp import web
from aiohttp.test_utils import TestServer

from aiolens import APIConnectionError, APITimeoutError, AsyncArchetypeClient
from aiolens.emulator import Emulator
from tests.conftest import FAST_BACKOFF

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION = (
    b'{"session_id": "lsn-1", "session_status": "LensSessionStatus.SESSION_STATUS_REGISTERED"}'
)


async def _truncated(request: web.Request, body: bytes) -> web.StreamResponse:
    """Promise ``body`` but send half of it, then drop the connection."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    assert request.transport is not None
    request.transport.close()
    return resp


class Crafted:
    """A server whose handlers the test sets; it counts the requests per path."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.hits: dict[str, int] = {}
        self.release = asyncio.Event()
        self.url = ""

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        self.hits[path] = self.hits.get(path, 0) + 1
        return await self.handlers[path](request)


@pytest.fixture
async def crafted() -> AsyncIterator[Crafted]:
    state = Crafted()
    app = web.Application()
    app.router.add_route("*", "/v0.5/{tail:.*}", state.dispatch)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url("/v0.5"))
        try:
            yield state
        finally:
            state.release.set()  # let stalled handlers finish


async def test_body_cut_off_after_headers_is_retried_for_a_get(crafted: Crafted) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = b'{"num_lenses": 3, "last_updated": 1.5}'
        if crafted.hits["lens/info"] == 1:
            return await _truncated(request, body)
        return web.Response(body=body, content_type="application/json")

    crafted.handlers["lens/info"] = handler
    async with AsyncArchetypeClient("k" * 12, crafted.url, backoff=FAST_BACKOFF) as client:
        info = await client.lenses.info()
    assert info.num_lenses == 3
    assert crafted.hits["lens/info"] == 2


async def test_body_cut_off_after_create_is_typed_and_not_retried(crafted: Crafted) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _truncated(request, SESSION)

    crafted.handlers["lens/sessions/create"] = handler
    async with AsyncArchetypeClient("k" * 12, crafted.url, backoff=FAST_BACKOFF) as client:
        with pytest.raises(APIConnectionError) as err:
            await client.sessions.create("lns-x")
    assert err.value.sent  # the server had answered: it made the session
    assert crafted.hits["lens/sessions/create"] == 1


async def test_body_stalled_after_headers_is_a_typed_timeout(crafted: Crafted) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(b'{"num_lenses": ')
        await crafted.release.wait()
        return resp

    crafted.handlers["lens/info"] = handler
    async with AsyncArchetypeClient("k" * 12, crafted.url, timeout=0.2, max_retries=0) as client:
        with pytest.raises(APITimeoutError):
            await client.lenses.info()


async def test_download_cut_off_is_typed_and_leaves_no_file(
    crafted: Crafted, tmp_path: Path
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _truncated(request, b"x" * 100_000)

    crafted.handlers["files/download/big.bin"] = handler
    async with AsyncArchetypeClient("k" * 12, crafted.url) as client:
        with pytest.raises(APIConnectionError):
            await client.files.download("big.bin", tmp_path / "big.bin")
    assert list(tmp_path.iterdir()) == []


async def test_download_timeout_is_per_silence_not_per_transfer(
    crafted: Crafted, tmp_path: Path
) -> None:
    """A download that keeps making progress outlives the timeout."""
    chunks = 5

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = chunks * 1000
        await resp.prepare(request)
        for _ in range(chunks):
            await resp.write(b"y" * 1000)
            await asyncio.sleep(0.1)  # five gaps: the whole transfer exceeds the timeout
        return resp

    crafted.handlers["files/download/slow.bin"] = handler
    async with AsyncArchetypeClient("k" * 12, crafted.url, timeout=0.35) as client:
        out = await client.files.download("slow.bin", tmp_path / "slow.bin")
    assert out.read_bytes() == b"y" * (chunks * 1000)


async def test_download_stalled_is_a_typed_timeout(crafted: Crafted, tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = 2000
        await resp.prepare(request)
        await resp.write(b"z" * 1000)
        await crafted.release.wait()
        return resp

    crafted.handlers["files/download/stuck.bin"] = handler
    async with AsyncArchetypeClient("k" * 12, crafted.url, timeout=0.2) as client:
        with pytest.raises(APITimeoutError):
            await client.files.download("stuck.bin", tmp_path / "stuck.bin")
    assert list(tmp_path.iterdir()) == []


async def test_an_upload_abandoned_mid_body_is_quiet_on_the_emulator(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    # A client that goes away mid-upload (cancelled, crashed) used to make the
    # emulator log an ERROR with a traceback.
    url = yarl.URL(emulator.lens_url)
    assert url.host is not None and url.port is not None
    head = (
        f"POST {url.path}/files HTTP/1.1\r\nHost: {url.host}\r\n"
        f"Authorization: Bearer {emulator.api_key}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="file"; filename="x.csv"\r\n'
        "Content-Type: text/csv\r\n\r\na,b\r\n1,2\r\n"
    )
    with caplog.at_level(logging.INFO):
        _, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(head.encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        # Until the emulator has dealt with it: quietly (INFO) or not (ERROR).
        while not any(  # noqa: ASYNC110
            "abandoned" in r.getMessage() or r.levelno >= logging.ERROR for r in caplog.records
        ):
            await asyncio.sleep(0.01)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "x.csv" not in emulator.lens.files
