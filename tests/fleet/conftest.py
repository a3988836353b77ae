"""Fixtures for the fleet tests: a real redis-server, the emulator, worker subprocesses.

``redis-server`` is the Debian package (``.ci/run`` installs it when missing); each
test gets its own on a free 127.0.0.1 port with persistence off. Workers run as
``python -m aiolens fleet worker`` subprocesses with a short lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from aiolens import AsyncArchetypeClient
from aiolens.emulator import Emulator
from aiolens.fleet import Fleet, InputStream, LensFeed

REDIS_SERVER = shutil.which("redis-server")
LEASE = 1.0
"""Lease seconds of the test workers (short, so takeovers come fast)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process; :meth:`restart` keeps its port and its data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--dbfilename",
                "dump.rdb",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )

    async def wait_ready(self) -> None:
        client = aioredis.Redis(port=self.port)
        try:
            async with asyncio.timeout(30):
                while True:
                    assert self.process is not None and self.process.poll() is None, "redis died"
                    with contextlib.suppress(OSError, aioredis.ConnectionError):
                        if await client.ping():
                            return
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def restart(self, down_for: float) -> None:
        """``SHUTDOWN SAVE`` (a snapshot even with persistence off), wait, start again."""
        client = aioredis.Redis(port=self.port)
        with contextlib.suppress(aioredis.ConnectionError):
            await client.shutdown(save=True)
        await client.aclose()
        assert self.process is not None
        await asyncio.to_thread(self.process.wait, 30)
        await asyncio.sleep(down_for)
        self.start()
        await self.wait_ready()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    server = RedisServer(tmp_path)
    server.start()
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def fleet(redis_server: RedisServer) -> AsyncIterator[Fleet]:
    async with Fleet(redis_server.url) as f:
        yield f


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(event_interval=0.003, sse_heartbeat_interval=0.5) as emu:
        yield emu


@pytest.fixture
async def lens(emulator: Emulator) -> AsyncIterator[AsyncArchetypeClient]:
    async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url) as client:
        yield client


CSV = b"t,a,b\n" + b"".join(b"%d,%d,%d\n" % (i, i % 7, i % 11) for i in range(400))


class Feeds:
    """Makes feed specs for the emulator: ``windows`` results each, then the end."""

    def __init__(self, lens_id: str, file_id: str) -> None:
        self.lens_id = lens_id
        self.file_id = file_id

    def spec(self, feed_id: str, windows: int) -> LensFeed:
        return LensFeed(
            feed_id=feed_id,
            lens_id=self.lens_id,
            input_stream=InputStream(
                "csv_file_reader",
                {
                    "file_id": self.file_id,
                    "window_size": 4,
                    "step_size": 4,
                    "loop_recording": True,
                    "max_windows": windows,
                },
            ),
        )


@pytest.fixture
async def feeds(lens: AsyncArchetypeClient) -> Feeds:
    uploaded = await lens.files.upload(CSV, filename="fleet.csv")
    made = await lens.lenses.register(
        {
            "model_pipeline": [{"processor_name": "lens_noop_processor"}],
            "output_streams": [{"stream_type": "server_sent_events_writer"}],
        },
        lens_name="fleet test",
    )
    return Feeds(made.lens_id, uploaded.file_id)


class Worker:
    """A ``python -m aiolens fleet worker`` subprocess."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    async def wait(self, timeout: float = 60.0) -> int:
        async with asyncio.timeout(timeout):
            return await self.process.wait()


class Workers:
    """Starts workers; kills those still running at the end of the test."""

    def __init__(self, redis_url: str, emulator: Emulator) -> None:
        self.redis_url = redis_url
        self.emulator = emulator
        self.started: list[Worker] = []

    async def start(self, name: str, *, capacity: int = 20, lease: float = LEASE) -> Worker:
        env = dict(os.environ)
        env.update(
            ATAI_API_KEY=self.emulator.api_key,
            ATAI_API_ENDPOINT=self.emulator.lens_url,
            PYTHONUNBUFFERED="1",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aiolens",
            "fleet",
            "worker",
            "--redis",
            self.redis_url,
            "--capacity",
            str(capacity),
            "--lease",
            str(lease),
            "--name",
            name,
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = Worker(process, name)
        self.started.append(worker)
        assert process.stdout is not None
        async with asyncio.timeout(60):
            line = await process.stdout.readline()
        assert b"running" in line, line
        return worker

    async def close(self) -> None:
        for worker in self.started:
            if worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGCONT)
                    worker.process.kill()
                await worker.process.wait()


@pytest.fixture
async def workers(redis_server: RedisServer, emulator: Emulator) -> AsyncIterator[Workers]:
    pool = Workers(redis_server.url, emulator)
    try:
        yield pool
    finally:
        await pool.close()


async def wait_for(predicate: Any, timeout: float = 120.0, interval: float = 0.05) -> Any:
    """Poll an async predicate until it returns something truthy (generous timeout)."""
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(aioredis.ConnectionError):  # Redis restarting
                value = await predicate()
                if value:
                    return value
            await asyncio.sleep(interval)
