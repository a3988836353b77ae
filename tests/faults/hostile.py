"""A hostile server on 127.0.0.1: a proxy to a real emulator that misbehaves on cue.

Every request is forwarded to the emulator (so sessions are real, and "no session left on the
server" is checked against the emulator's own store), except those a rule claims: a rule
matches a method and a path pattern and answers however the scenario needs — arbitrary bytes
on an SSE response, a WebSocket handshake accepted and then closed with any code (or the TCP
connection dropped, 1006), a stall at any point, an answer after the client gave up.

The ``Host`` header is passed on, so the emulator's ``session_endpoint`` and ``stream_url``
point back at this proxy: the client's realtime connections come here too.
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp
from aiohttp import web

from aiolens.emulator import Emulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te"}
)


class HostileServer:
    """An aiohttp server in front of ``upstream``; see the module docs.

    Attributes:
        hits: how many requests each rule answered, by rule name.
    """

    def __init__(self, upstream: Emulator) -> None:
        self.upstream = upstream
        self._rules: list[tuple[str, str, re.Pattern[str], Handler]] = []
        self.hits: collections.Counter[str] = collections.Counter()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self.port = 0

    # ---- set-up -----------------------------------------------------------------------------

    def on(self, method: str, path: str, handler: Handler, *, name: str | None = None) -> None:
        """Answer ``method`` requests whose path matches the regex ``path`` with ``handler``.

        Later rules win over earlier ones.
        """
        self._rules.insert(0, (name or path, method.upper(), re.compile(path), handler))

    def clear(self) -> None:
        """Forward everything again."""
        self._rules.clear()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def lens_url(self) -> str:
        return f"{self.base_url}/v0.5"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._http = aiohttp.ClientSession(auto_decompress=False)

    async def stop(self) -> None:
        for task in list(self._handlers):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    # ---- dispatch ---------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            for name, method, pattern, handler in self._rules:
                if method in ("*", request.method) and pattern.fullmatch(request.path):
                    self.hits[name] += 1
                    return await handler(request)
            return await self.forward(request)
        finally:
            self._handlers.discard(task)

    async def forward(
        self, request: web.Request, *, cut_after: int | None = None
    ) -> web.StreamResponse:
        """Pass the request to the emulator and stream its answer back.

        Args:
            cut_after: drop the TCP connection once this many body bytes were passed on
                (an SSE stream cut at an arbitrary byte offset).
        """
        assert self._http is not None
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._forward_websocket(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read()
        async with self._http.request(
            request.method,
            self.upstream.base_url + request.path_qs,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    response.headers.add(key, value)
            await response.prepare(request)
            passed = 0
            async for chunk in upstream.content.iter_any():
                if cut_after is not None and passed + len(chunk) >= cut_after:
                    await response.write(chunk[: cut_after - passed])
                    await asyncio.sleep(0)
                    abort(request)
                    return response
                passed += len(chunk)
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _forward_websocket(self, request: web.Request) -> web.StreamResponse:
        """Relay a WebSocket both ways between the client and the emulator."""
        assert self._http is not None
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "x-api-key", "host")
        }
        url = "ws" + self.upstream.base_url[4:] + request.path_qs
        async with self._http.ws_connect(url, headers=headers, max_msg_size=0) as upstream:
            ws = web.WebSocketResponse(max_msg_size=0)
            await ws.prepare(request)

            async def pump(source: Any, sink: Any) -> None:
                async for message in source:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        await sink.send_str(message.data)
                    elif message.type == aiohttp.WSMsgType.BINARY:
                        await sink.send_bytes(message.data)

            tasks = [
                asyncio.ensure_future(pump(ws, upstream)),
                asyncio.ensure_future(pump(upstream, ws)),
            ]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            await ws.close(code=upstream.close_code or 1000)
            return ws


# ---- answers for rules ------------------------------------------------------------------------


def abort(request: web.Request) -> None:
    """Drop the TCP connection at once: no close frame, no end of body."""
    assert request.transport is not None
    request.transport.abort()


async def stall_forever() -> None:
    await asyncio.Event().wait()


def sse(parts: Iterable[bytes | str], *, then: str = "end") -> Handler:
    """An SSE answer that writes ``parts`` as they are, then ends, stalls or drops.

    Args:
        parts: raw bytes for the wire (anything at all).
        then: ``"end"`` (a clean end of body), ``"stall"`` (write nothing more, keep the
            connection open) or ``"drop"`` (abort the TCP connection).
    """
    chunks = [part.encode() if isinstance(part, str) else part for part in parts]

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        if then == "stall":
            await stall_forever()
        if then == "drop":
            abort(request)
            return response
        await response.write_eof()
        return response

    return handler


def http_status(status: int, body: bytes = b"{}", *, delay: float = 0.0) -> Handler:
    """An HTTP answer with ``status``, after ``delay`` seconds."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(delay)
        return web.Response(status=status, body=body, content_type="application/json")

    return handler


def stall(request: web.Request) -> Awaitable[web.StreamResponse]:
    """Read the request, never answer (until the server stops)."""

    async def never() -> web.StreamResponse:
        await stall_forever()
        raise AssertionError("unreachable")

    return never()


def ws_close(code: int) -> Handler:
    """Accept the WebSocket handshake, then close at once with ``code`` (1006: drop TCP)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if code == 1006:
            abort(request)
        else:
            await ws.close(code=code)
        return ws

    return handler


def ws_script(
    script: Callable[[web.WebSocketResponse, web.Request], Awaitable[None]],
    *,
    max_msg_size: int = 16 * 1024 * 1024,
) -> Handler:
    """Accept the WebSocket handshake and let ``script`` drive it; close when it returns."""

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=max_msg_size)
        await ws.prepare(request)
        await script(ws, request)
        if not ws.closed:
            await ws.close()
        return ws

    return handler
