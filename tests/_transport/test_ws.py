"""WebSocketChannel sends: coalesced writes keep call order and frame types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from aiolens._core.backoff import Backoff
from aiolens._transport.ws import WRITE_AT_ONCE, WebSocketChannel
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


def channel_to(url: str, **options: Any) -> WebSocketChannel:
    async def target() -> tuple[str, Mapping[str, str]]:
        return url, {}

    options.setdefault("on_message", lambda _m: None)
    options.setdefault("on_lost", lambda _e: None)
    return WebSocketChannel(target, **options)


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


# ---- receiving: messages go to on_message from the connection itself -----------------------


async def test_every_message_reaches_on_message_in_order_fragmented_or_not() -> None:
    """Text and binary, whole and fragmented, and one sent before connect() returns."""
    from websockets.asyncio.server import ServerConnection, serve

    async def handler(ws: ServerConnection) -> None:
        await ws.send("first, right after the handshake")
        await ws.send(["frag", "mented ", "text ✓"])  # an iterable: one fragmented message
        await ws.send(b"\x00\x01binary")
        await ws.send([b"frag", b"mented binary"])
        await ws.send("last")
        await ws.wait_closed()

    received: list[str | bytes] = []
    done = asyncio.Event()

    def on_message(message: str | bytes) -> None:
        received.append(message)
        if message == "last":
            done.set()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]

        async def target() -> tuple[str, Mapping[str, str]]:
            return f"ws://127.0.0.1:{port}", {}

        channel = WebSocketChannel(target, on_message=on_message, on_lost=lambda _e: None)
        await channel.connect()
        try:
            await asyncio.wait_for(done.wait(), 5)
        finally:
            await channel.aclose()
    assert received == [
        "first, right after the handshake",
        "fragmented text ✓",
        b"\x00\x01binary",
        b"fragmented binary",
        "last",
    ]


async def test_messages_after_a_reconnect_wait_until_on_reconnect_returns() -> None:
    """As documented: no message is handled before ``on_reconnect`` has run."""
    from websockets.asyncio.server import ServerConnection, serve

    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            ws.transport.abort()  # dropped: 1006, recoverable
            return
        await ws.send("hello again")  # at once, while on_reconnect still runs
        await ws.wait_closed()

    events: list[str] = []
    done = asyncio.Event()

    async def on_reconnect() -> None:
        await asyncio.sleep(0.05)
        events.append("on_reconnect done")

    def on_message(message: str | bytes) -> None:
        events.append(f"message {message!r}")
        done.set()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        channel = channel_to(
            f"ws://127.0.0.1:{port}",
            on_message=on_message,
            on_lost=lambda _e: None,
            on_reconnect=on_reconnect,
            backoff=Backoff(initial=0.01, maximum=0.01),
        )
        await channel.connect()
        try:
            await asyncio.wait_for(done.wait(), 5)
        finally:
            await channel.aclose()
    assert events == ["on_reconnect done", "message 'hello again'"]


async def test_a_text_message_that_is_not_utf8_fails_the_connection_with_1007() -> None:
    """As websockets' own recv(): the connection is failed, the owner hears of it."""
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.frames import Frame, Opcode

    async def handler(ws: ServerConnection) -> None:
        ws.protocol.send_frame(Frame(Opcode.TEXT, b"\xff\xfe not utf-8"))
        ws.send_data()
        await ws.wait_closed()

    lost: list[ConnectionLostError] = []
    got_lost = asyncio.Event()

    def on_lost(error: ConnectionLostError) -> None:
        lost.append(error)
        got_lost.set()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]

        async def target() -> tuple[str, Mapping[str, str]]:
            return f"ws://127.0.0.1:{port}", {}

        messages: list[str | bytes] = []
        channel = WebSocketChannel(target, on_message=messages.append, on_lost=on_lost)
        await channel.connect()
        try:
            await asyncio.wait_for(got_lost.wait(), 5)
        finally:
            await channel.aclose()
    assert messages == []
    assert lost[0].close_code in (1006, 1007)


async def test_a_caller_cancelled_in_aclose_gets_its_cancel_and_the_socket_still_closes() -> None:
    release = asyncio.Event()
    server_closed = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await release.wait()  # reads nothing: the client's close frame goes unanswered
        await ws.close()
        server_closed.set()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        channel = channel_to(str(server.make_url("/ws")).replace("http", "ws", 1))
        await channel.connect()
        went_on: list[str] = []

        async def closer() -> None:
            await channel.aclose(timeout=60.0)
            went_on.append("after aclose")  # must not happen: the caller was cancelled

        task = asyncio.create_task(closer())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not task.done()  # waiting for the closing handshake
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled() and went_on == []
        release.set()  # the shielded close goes on: the server's close frame ends it
        await server_closed.wait()
        await channel.aclose()  # idempotent
        assert not channel.connected


async def test_an_open_channel_runs_no_task_and_a_loss_during_on_reconnect_is_recovered() -> None:
    """No task while connected; the recovery task handles a loss that comes during
    ``on_reconnect`` itself, and ends once a connection is up again."""
    from websockets.asyncio.server import ServerConnection, serve

    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await ws.wait_closed()  # the client's channel is up: dropped by the test
            return
        if connections == 2:
            await asyncio.sleep(0.01)
            ws.transport.abort()  # dropped again while on_reconnect runs
            return
        await ws.send("hello again")
        await ws.wait_closed()

    losses: list[int | None] = []
    done = asyncio.Event()

    async def on_reconnect() -> None:
        await asyncio.sleep(0.1)

    def channel_tasks() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t.get_name().startswith("aiolens-test")]

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        channel = channel_to(
            f"ws://127.0.0.1:{port}",
            on_message=lambda _m: done.set(),
            on_lost=lambda e: losses.append(e.close_code),
            on_reconnect=on_reconnect,
            backoff=Backoff(initial=0.01, maximum=0.01),
            name="test",
        )
        await channel.connect()
        try:
            assert channel_tasks() == []
            for connection in server.connections:
                connection.transport.abort()
            await asyncio.wait_for(done.wait(), 5)
            await channel.wait_connected(5)
            await asyncio.sleep(0)  # the recovery task's last step
            assert channel_tasks() == []
            assert channel.connected
        finally:
            await channel.aclose()
    assert losses == [1006, 1006]
    assert channel.reconnects == 2


async def test_after_a_read_of_several_messages_only_a_large_flushed_frame_is_written_at_once(
    recorder: tuple[Recorder, str],
) -> None:
    rec, url = recorder
    rec.expected = 2
    channel = channel_to(url)
    await channel.connect()
    try:
        ws = channel._ws
        assert ws is not None
        ws.batch = 3  # as after one read that brought three messages
        await channel.send("small", flush=True)
        assert channel._flush_pending  # waits for the end of the pass: others will join
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not channel._flush_pending
        big = b"x" * WRITE_AT_ONCE
        await channel.send(big, flush=True)
        assert not channel._flush_pending  # written at once
        assert not ws.protocol.writes
        await asyncio.wait_for(rec.done.wait(), 5)
        assert rec.frames == [("text", "small"), ("binary", big)]
    finally:
        await channel.aclose()
