"""WebSocketChannel sends: coalesced writes keep call order and frame types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from aiolens._transport.ws import WebSocketChannel
from aiolens.errors import ConnectionLostError


class Recorder:
    def __init__(self) -> None:
        self.frames: list[tuple[str, str | bytes]] = []
        self.reads = 0
        self.done = asyncio.Event()
        self.expected = 0

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            kind = "text" if msg.type == WSMsgType.TEXT else "binary"
            self.frames.append((kind, msg.data))
            if len(self.frames) >= self.expected:
                self.done.set()
        return ws


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    rec = Recorder()
    app = web.Application()
    app.router.add_get("/ws", rec.handler)
    async with TestServer(app, host="127.0.0.1") as server:
        yield rec, str(server.make_url("/ws")).replace("http", "ws", 1)


def channel_to(url: str) -> WebSocketChannel:
    async def target() -> tuple[str, Mapping[str, str]]:
        return url, {}

    return WebSocketChannel(target, on_message=lambda _m: None, on_lost=lambda _e: None)


async def test_concurrent_sends_arrive_in_call_order_with_their_frame_types(
    recorder: tuple[Recorder, str],
) -> None:
    rec, url = recorder
    rec.expected = 400
    channel = channel_to(url)
    await channel.connect()
    try:
        sends = []
        expected: list[tuple[str, str | bytes]] = []
        for i in range(100):
            sends.append(channel.send(f"s{i}"))  # str: text frame
            expected.append(("text", f"s{i}"))
            sends.append(channel.send(f"t{i}".encode(), text=True))  # bytes sent as text
            expected.append(("text", f"t{i}"))
            sends.append(channel.send(f"b{i}".encode()))  # bytes: binary frame
            expected.append(("binary", f"b{i}".encode()))
            sends.append(channel.send(f"x{i}", text=False))  # str sent as binary
            expected.append(("binary", f"x{i}".encode()))
        await asyncio.gather(*sends)  # all queued in one loop pass: one write
        await asyncio.wait_for(rec.done.wait(), 5)
        assert rec.frames == expected
    finally:
        await channel.aclose()


async def test_frames_queued_before_close_are_sent_before_the_close_frame(
    recorder: tuple[Recorder, str],
) -> None:
    rec, url = recorder
    rec.expected = 3
    channel = channel_to(url)
    await channel.connect()
    for i in range(3):
        await channel.send(f"last{i}")
    await channel.aclose()  # before the flush callback ran
    await asyncio.wait_for(rec.done.wait(), 5)
    assert [data for _, data in rec.frames] == ["last0", "last1", "last2"]
    with pytest.raises(ConnectionLostError):
        await channel.send("too late")


async def test_a_backed_up_socket_takes_the_waiting_path_and_keeps_the_order(
    recorder: tuple[Recorder, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, url = recorder
    rec.expected = 6
    channel = channel_to(url)
    await channel.connect()
    try:
        for i in range(3):
            await channel.send(f"queued{i}")  # queued for this loop pass's write
        ws = channel._ws
        assert ws is not None
        # A transport holding unsent bytes: send() goes through websockets' own send(),
        # which writes the frames queued before it first, then waits for the drain.
        monkeypatch.setattr(ws.transport, "get_write_buffer_size", lambda: 1)
        for i in range(3):
            await channel.send(f"waited{i}")
        monkeypatch.undo()
        await asyncio.wait_for(rec.done.wait(), 5)
        assert [data for _, data in rec.frames] == [
            "queued0",
            "queued1",
            "queued2",
            "waited0",
            "waited1",
            "waited2",
        ]
    finally:
        await channel.aclose()
