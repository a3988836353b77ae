"""A TCP proxy on loopback that delays every byte by a fixed time in each direction.

``python -m benchmarks.delay_proxy --upstream 127.0.0.1:8080 --delay-ms 10 --port 0``
prints ``PORT <n>`` once it listens, then forwards every connection made to it
to the upstream until killed. A round trip through it takes ``2 × delay`` more
than without it.

It stands for a long link, not a slow one: each chunk read from one side is
written to the other ``delay`` seconds after it arrived, whatever else is in
flight, so chunks overlap in flight as on a real network (a chunk never waits
for the one before it to be delivered; order is kept). There is no bandwidth
limit; TCP flow control still applies end to end (when one side stops
reading, the proxy stops reading from the other).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
from collections.abc import Callable

from benchmarks.standin import raise_fd_limit

__all__ = ["DelayProxy", "DelayedPipe", "main"]

_HIGH_WATER = 4 * 1024 * 1024
"""Bytes held for one direction (in the delay line or the outgoing buffer) before reading pauses."""


_EOF = b""
"""In the delay line: the end of what this side sends (a half-close)."""
_CLOSED = None
"""In the delay line: this side's connection closed."""


class DelayedPipe(asyncio.Protocol):
    """One side of a proxied connection: what it receives goes to ``peer`` after ``delay``.

    Its end (EOF, close) travels down the same delay line, behind the bytes.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.transport: asyncio.Transport | None = None
        self.peer: DelayedPipe | None = None
        self._line: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self._held = 0
        self._timer: asyncio.TimerHandle | None = None
        self._reading_paused = False
        self._peer_backed_up = False
        self.on_lost: Callable[[DelayedPipe], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._held += len(data)
        self._enqueue(data)
        self._check_pause()

    def eof_received(self) -> bool:
        self._enqueue(_EOF)
        return True  # keep our side open for writing until the peer closes it

    def connection_lost(self, exc: Exception | None) -> None:
        self._enqueue(_CLOSED)
        if self.on_lost is not None:
            self.on_lost(self)

    def _enqueue(self, item: bytes | None) -> None:
        loop = asyncio.get_running_loop()
        self._line.append((loop.time() + self.delay, item))
        if self._timer is None and self.peer is not None:
            self._timer = loop.call_at(self._line[0][0], self.deliver)

    def deliver(self) -> None:
        """Pass on everything whose time has come, in order; re-arm for the rest."""
        self._timer = None
        peer = self.peer
        if peer is None or peer.transport is None:
            return  # not connected through yet: the dial calls this again
        loop = asyncio.get_running_loop()
        now = loop.time()
        line = self._line
        out = peer.transport
        ready: list[bytes] = []
        while line and line[0][0] <= now:
            item = line.popleft()[1]
            if item:
                ready.append(item)
                continue
            self._write(out, ready)
            ready = []
            if out.is_closing():
                continue
            if item is _EOF and out.can_write_eof():
                out.write_eof()
            else:
                out.close()
        self._write(out, ready)
        if line:
            self._timer = loop.call_at(line[0][0], self.deliver)
        self._check_pause()

    def _write(self, out: asyncio.Transport, ready: list[bytes]) -> None:
        if ready:
            data = b"".join(ready)
            self._held -= len(data)
            if not out.is_closing():
                out.write(data)

    def _check_pause(self) -> None:
        """Stop reading while this direction holds too much (flow control end to end)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        backed_up = self._held > _HIGH_WATER or self._peer_backed_up
        if backed_up and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif not backed_up and self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    # What the peer receives fills our outgoing buffer: our pause_writing is its
    # pause_reading.
    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer._peer_backed_up = True
            self.peer._check_pause()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer._peer_backed_up = False
            self.peer._check_pause()


class DelayProxy:
    """Listens on 127.0.0.1 and forwards each connection to ``upstream``, delayed.

    ``async with DelayProxy(upstream, delay) as proxy:`` listens on
    ``proxy.port``; leaving the block stops listening and closes every
    proxied connection.
    """

    def __init__(self, upstream: tuple[str, int], delay: float, port: int = 0) -> None:
        self.upstream = upstream
        self.delay = delay
        self.port = port
        self._server: asyncio.Server | None = None
        self._pipes: set[DelayedPipe] = set()
        self._dials: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> DelayProxy:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accepted, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._dials:
            task.cancel()
        for pipe in self._pipes:
            if pipe.transport is not None:
                pipe.transport.abort()
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let the aborted transports finish closing

    def _accepted(self) -> DelayedPipe:
        inbound = DelayedPipe(self.delay)
        self._pipes.add(inbound)
        task = asyncio.get_running_loop().create_task(self._dial(inbound))
        self._dials.add(task)
        task.add_done_callback(self._dials.discard)
        return inbound

    async def _dial(self, inbound: DelayedPipe) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, outbound = await loop.create_connection(
                lambda: DelayedPipe(self.delay), *self.upstream
            )
        except OSError:
            if inbound.transport is not None:
                inbound.transport.close()
            return
        self._pipes.add(outbound)
        outbound.peer, inbound.peer = inbound, outbound
        for pipe in (inbound, outbound):  # what arrived before the dial completed
            pipe.deliver()
            pipe.on_lost = self._pipes.discard


async def _main(upstream: tuple[str, int], delay: float, port: int) -> None:
    async with DelayProxy(upstream, delay, port) as proxy:
        sys.stdout.write(f"PORT {proxy.port}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.delay_proxy")
    parser.add_argument("--upstream", required=True, help="host:port to forward to")
    parser.add_argument("--delay-ms", type=float, required=True, help="delay per direction")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    raise_fd_limit()
    asyncio.run(_main((host, int(port)), args.delay_ms / 1000, args.port))


if __name__ == "__main__":
    main()
