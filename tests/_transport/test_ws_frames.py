"""The channel's own frame reading and writing, against a raw server that scripts the bytes.

The server answers the handshake and then writes exactly the bytes a test gives, the 101
response and the frames cut together into writes of any size, so that frames split anywhere, all
frame lengths, fragments, control frames and broken frames meet the client's frame cutter.
It records every frame the client sends (unmasked), to check pongs and close codes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from aiolens._transport.ws import WebSocketChannel
from aiolens.errors import ConnectionLostError

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload: bytes, opcode: int = 0x1, *, fin: bool = True, rsv: int = 0) -> bytes:
    """One unmasked server frame."""
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + payload
    return bytes((first, 127)) + n.to_bytes(8, "big") + payload


def close_frame(code: int) -> bytes:
    return frame(code.to_bytes(2, "big"), 0x8)


class ScriptedServer:
    """Answers one WebSocket handshake and writes ``script`` after it, ``step`` bytes a write."""

    def __init__(self, script: bytes, step: int) -> None:
        self.script = script
        self.step = step
        self.received: list[tuple[int, bytes]] = []  # (opcode, payload) of client frames
        self.closed = asyncio.Event()
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        data = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept
        ) + self.script
        cuts = [*range(0, len(data), self.step), len(data)]  # the head cut too
        for a, b in itertools.pairwise(cuts):
            if b > a:
                writer.write(data[a:b])
                await writer.drain()
                await asyncio.sleep(0)
        try:
            while True:
                head2 = await reader.readexactly(2)
                n = head2[1] & 0x7F
                if n == 126:
                    n = int.from_bytes(await reader.readexactly(2), "big")
                elif n == 127:
                    n = int.from_bytes(await reader.readexactly(8), "big")
                mask = await reader.readexactly(4)
                body = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(n)))
                self.received.append((head2[0] & 0x0F, body))
                if head2[0] & 0x0F == 0x8:
                    writer.write(frame(body[:2], 0x8))
                    await writer.drain()
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.closed.set()

    def close_codes(self) -> list[int]:
        return [int.from_bytes(p[:2], "big") for op, p in self.received if op == 0x8]


Start = Callable[[bytes, int], Awaitable[ScriptedServer]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    servers: list[asyncio.Server] = []

    async def starter(script: bytes, step: int) -> ScriptedServer:
        scripted = ScriptedServer(script, step)
        server = await asyncio.start_server(scripted.serve, "127.0.0.1", 0)
        servers.append(server)
        scripted.port = server.sockets[0].getsockname()[1]
        return scripted

    yield starter
    for server in servers:
        server.close()


class Client:
    def __init__(self, port: int, max_size: int | None = 2**20) -> None:
        self.messages: list[str | bytes] = []
        self.lost: list[ConnectionLostError] = []
        self.gone = asyncio.Event()

        async def target() -> tuple[str, Mapping[str, str]]:
            return f"ws://127.0.0.1:{port}/ws", {}

        self.channel = WebSocketChannel(
            target,
            on_message=self.messages.append,
            on_lost=self._on_lost,
            reconnect=False,
            max_size=max_size,
            ping_interval=None,
        )

    def _on_lost(self, error: ConnectionLostError) -> None:
        self.lost.append(error)
        self.gone.set()


BIG = "y" * 70_000
MESSAGES: list[str | bytes] = ["short", b"\x00binary\xff", "m" * 200, BIG, "é ünïcode", "last"]
SCRIPT = b"".join(
    [
        frame(b"short"),
        frame(b"\x00binary\xff", 0x2),
        frame(b"m" * 200),
        frame(b"ping!", 0x9),  # answered with a pong, between two messages
        frame(BIG.encode()),
        frame("é ünï".encode()[:4], 0x1, fin=False),  # a fragmented text message,
        frame(b"pong", 0xA),  # an unsolicited pong in the middle of it,
        frame("é ünï".encode()[4:] + b"code", 0x0),  # and its end
        frame(b"last"),
    ]
)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 130, 65_536, 200_000])
async def test_messages_cut_anywhere_arrive_whole_and_in_order(start: Start, step: int) -> None:
    server = await start(SCRIPT, step)
    client = Client(server.port)
    await client.channel.connect()
    try:
        for _ in range(500):
            if len(client.messages) >= len(MESSAGES):
                break
            await asyncio.sleep(0.01)
        assert client.messages == MESSAGES
        ws = client.channel._ws
        assert ws is not None and ws._framing  # the client's own cutter read them
        await client.channel.send("after", text=True)
        for _ in range(500):
            if any(op == 0x1 for op, _ in server.received):
                break
            await asyncio.sleep(0.01)
        assert (0xA, b"ping!") in server.received  # the ping got its pong
        assert (0x1, b"after") in server.received
    finally:
        await client.channel.aclose()
    assert not client.lost


async def run_to_the_end(
    start: Start, script: bytes, step: int, *, max_size: int = 2**20
) -> tuple[Client, ScriptedServer]:
    """Connect to a server writing ``script``; wait until both ends see the connection end."""
    server = await start(script, step)
    client = Client(server.port, max_size)
    await client.channel.connect()
    try:
        async with asyncio.timeout(5):
            await client.gone.wait()
            await server.closed.wait()
    finally:
        await client.channel.aclose()
    return client, server


@pytest.mark.parametrize("step", [1, 1000])
async def test_invalid_utf8_fails_the_connection_with_1007_and_nothing_after_is_delivered(
    start: Start, step: int
) -> None:
    script = frame(b"ok") + frame(b"bad \xff\xfe") + frame(b"never")
    client, server = await run_to_the_end(start, script, step)
    assert client.messages == ["ok"]
    assert server.close_codes() == [1007]


@pytest.mark.parametrize("step", [1, 1000])
async def test_a_frame_over_max_size_fails_the_connection_with_1009(
    start: Start, step: int
) -> None:
    script = frame(b"ok") + frame(b"z" * 300) + frame(b"never")
    client, server = await run_to_the_end(start, script, step, max_size=200)
    assert client.messages == ["ok"]
    assert server.close_codes() == [1009]


@pytest.mark.parametrize(
    "bad",
    [
        frame(b"rsv", 0x1, rsv=0x40),  # a reserved bit without an extension
        bytes((0x81, 0x83)) + b"mask" + b"abc",  # a masked frame from the server
        frame(b"cont", 0x0),  # a continuation with no message under way
    ],
)
async def test_protocol_errors_fail_the_connection_with_1002(start: Start, bad: bytes) -> None:
    client, server = await run_to_the_end(start, frame(b"ok") + bad + frame(b"never"), 1000)
    assert client.messages == ["ok"]
    assert server.close_codes() == [1002]


@pytest.mark.parametrize("step", [1, 1000])
async def test_nothing_after_the_servers_close_frame_is_delivered(start: Start, step: int) -> None:
    script = frame(b"ok") + close_frame(1001) + frame(b"never")
    client, server = await run_to_the_end(start, script, step)
    assert client.messages == ["ok"]
    assert server.close_codes() == [1001]  # the close echoed
    assert client.lost[0].close_code == 1001


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_an_echo_round_trip_with_and_without_compression(compression: str | None) -> None:
    """Compressed frames (reserved bit 1) go through websockets; the rest are read directly."""

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=True)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str("echo:" + msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(b"echo:" + msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", echo)
    sent: list[str | bytes] = []
    for i in range(60):
        sent += [f"t{i}" * (i * 40), f"b{i}".encode() * (i * 40)]
    expected = [("echo:" if isinstance(m, str) else b"echo:") + m for m in sent]  # type: ignore[operator]
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/ws")).replace("http", "ws", 1)
        got: list[str | bytes] = []
        done = asyncio.Event()

        def on_message(message: str | bytes) -> None:
            got.append(message)
            if len(got) == len(expected):
                done.set()

        async def target() -> tuple[str, Mapping[str, str]]:
            return url, {}

        channel = WebSocketChannel(
            target, on_message=on_message, on_lost=lambda _e: None, compression=compression
        )
        await channel.connect()
        try:
            assert channel._ws is not None
            assert bool(channel._ws.protocol.extensions) == (compression is not None)
            for message in sent:
                await channel.send(message)
            await asyncio.wait_for(done.wait(), 10)
        finally:
            await channel.aclose()
    assert got == expected
