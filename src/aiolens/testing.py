"""pytest fixtures for testing your own application against the emulator.

Add to your ``conftest.py``::

    from aiolens.testing import aiolens_emulator, archetype_client, kynasmith_client  # noqa: F401

Each test then gets a fresh emulator on 127.0.0.1 (random port) and clients
bound to it. Needs pytest and pytest-asyncio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from aiolens.archetype.client import AsyncArchetypeClient
from aiolens.emulator import Emulator
from aiolens.kynasmith.client import AsyncKynasmithClient

__all__ = ["aiolens_emulator", "archetype_client", "kynasmith_client"]


@pytest_asyncio.fixture
async def aiolens_emulator() -> AsyncIterator[Emulator]:
    """A running :class:`~aiolens.emulator.Emulator`, stopped after the test."""
    async with Emulator() as emu:
        yield emu


@pytest_asyncio.fixture
async def archetype_client(aiolens_emulator: Emulator) -> AsyncIterator[AsyncArchetypeClient]:
    """An :class:`AsyncArchetypeClient` bound to the test's emulator."""
    async with AsyncArchetypeClient(aiolens_emulator.api_key, aiolens_emulator.lens_url) as c:
        yield c


@pytest_asyncio.fixture
async def kynasmith_client(aiolens_emulator: Emulator) -> AsyncIterator[AsyncKynasmithClient]:
    """An :class:`AsyncKynasmithClient` bound to the test's emulator."""
    async with AsyncKynasmithClient(
        aiolens_emulator.kynasmith_api_key, base_url=aiolens_emulator.kynasmith_url
    ) as c:
        yield c
