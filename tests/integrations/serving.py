"""Run an ASGI app under uvicorn in a subprocess, and drive headless Chromium over CDP."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Uvicorn:
    """``python -m uvicorn APP`` on a free port; its output is kept for assertions."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, lines: list[str]) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.lines = lines

    async def stop(self, *signals: signal.Signals, timeout: float = 60.0) -> int:
        """Send each signal (0.3 s apart), wait for the exit, return its status."""
        for n, sig in enumerate(signals):
            if n:
                await asyncio.sleep(0.3)
            if self.proc.returncode is None:
                self.proc.send_signal(sig)
        await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.sleep(0)  # let the reader task take the last lines
        assert self.proc.returncode is not None
        return self.proc.returncode

    @property
    def output(self) -> str:
        return "".join(self.lines)


@asynccontextmanager
async def uvicorn_app(app: str, env: dict[str, str], *args: str) -> AsyncIterator[Uvicorn]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: list[str] = []
    port: int | None = None
    while port is None:
        line = (await asyncio.wait_for(stdout.readline(), 60)).decode()
        assert line, f"uvicorn exited early:\n{''.join(lines)}"
        lines.append(line)
        found = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
        port = int(found.group(1)) if found else None

    async def pump() -> None:
        while line := await stdout.readline():
            lines.append(line.decode())

    reader = asyncio.create_task(pump())
    server = Uvicorn(proc, port, lines)
    try:
        yield server
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await reader


class Browser:
    """Headless Chromium, driven over the DevTools protocol (one websocket, flat sessions)."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(await asyncio.wait_for(self._ws.recv(), 60))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def open(self, url: str) -> tuple[str, str]:
        """Open a page; return (target id, CDP session id)."""
        target = (await self.call("Target.createTarget", url=url))["targetId"]
        session = (await self.call("Target.attachToTarget", targetId=target, flatten=True))[
            "sessionId"
        ]
        return target, session

    async def evaluate(self, session: str, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", session, expression=expression, returnByValue=True
        )
        return result["result"].get("value")

    async def close(self, target: str) -> None:
        await self.call("Target.closeTarget", targetId=target)


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Browser]:
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        url = None
        while url is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            assert line, "chromium exited early"
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            url = found.group(1) if found else None
        drain = asyncio.create_task(proc.stderr.read())
        async with websockets.connect(url, max_size=None) as ws:
            yield Browser(ws)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if "drain" in locals():
            await drain
