"""Shared fixtures: a real emulator on 127.0.0.1 per test, and clients bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiolens import AsyncArchetypeClient
from aiolens._core.backoff import Backoff
from aiolens.emulator import Emulator

FAST_BACKOFF = Backoff(initial=0.01, maximum=0.05, max_retry_after=0.2)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator() as emu:
        yield emu


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[AsyncArchetypeClient]:
    async with AsyncArchetypeClient(
        emulator.api_key, emulator.lens_url, backoff=FAST_BACKOFF, timeout=10
    ) as c:
        yield c
