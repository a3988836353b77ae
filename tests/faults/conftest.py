"""Fixtures of the fault suite: a hostile server in front of a real emulator, a leak guard."""

from __future__ import annotations

import asyncio
import gc
import os
import warnings
from collections.abc import AsyncIterator

import pytest

from aiolens import AsyncArchetypeClient, AsyncKynasmithClient
from aiolens.emulator import Emulator
from tests.conftest import FAST_BACKOFF
from tests.faults.hostile import HostileServer


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class LeakGuard:
    """Tasks and file descriptors at the start of a test, to compare with its end."""

    def __init__(self) -> None:
        self.tasks = set(asyncio.all_tasks())
        self.fds = open_fds()
        self.leaked_tasks: set[asyncio.Task[object]] = set()
        self.leaked_fds = 0

    async def settle(self) -> None:
        """Wait (bounded) for closing sockets and ending tasks to finish, then measure."""
        current = asyncio.current_task()
        for _ in range(300):
            gc.collect()
            self.leaked_tasks = {
                t for t in asyncio.all_tasks() if t not in self.tasks and t is not current
            }
            self.leaked_fds = max(0, open_fds() - self.fds)
            if not self.leaked_tasks and not self.leaked_fds:
                return
            await asyncio.sleep(0.01)


@pytest.fixture
async def leaks() -> AsyncIterator[LeakGuard]:
    """Request it FIRST: set up before, torn down after, every other fixture of the test.

    At the end: no task and no file descriptor more than at the start, and no warning
    (unclosed sockets and transports show up as ``ResourceWarning`` when collected).
    """
    guard = LeakGuard()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield guard
        await guard.settle()
    assert not guard.leaked_tasks, f"tasks leaked: {guard.leaked_tasks}"
    assert not guard.leaked_fds, f"{guard.leaked_fds} file descriptor(s) leaked"
    assert not caught, [str(w.message) for w in caught]


@pytest.fixture
async def hostile(emulator: Emulator) -> AsyncIterator[HostileServer]:
    server = HostileServer(emulator)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def lens(hostile: HostileServer) -> AsyncIterator[AsyncArchetypeClient]:
    """A Lens client that reaches the emulator through the hostile server."""
    async with AsyncArchetypeClient(
        hostile.upstream.api_key, hostile.lens_url, backoff=FAST_BACKOFF, timeout=10
    ) as client:
        yield client


@pytest.fixture
async def kyna(hostile: HostileServer) -> AsyncIterator[AsyncKynasmithClient]:
    """A Kynasmith client that reaches the emulator through the hostile server."""
    async with AsyncKynasmithClient(
        hostile.upstream.kynasmith_api_key,
        base_url=hostile.base_url,
        backoff=FAST_BACKOFF,
        timeout=10,
    ) as client:
        yield client


def sessions_left(emulator: Emulator) -> int:
    """Sessions still alive on the emulator (Lens active, Kynasmith not terminal)."""
    lens = len(emulator.lens.active_sessions())
    kynasmith = sum(
        s.status not in ("completed", "failed", "cancelled")
        for s in emulator.kynasmith.sessions.values()
    )
    return lens + kynasmith
