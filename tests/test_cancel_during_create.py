"""A session create cancelled in flight leaves nothing running, for both vendors.

The create is processed, then its answer stalls: a cancel in between used to leave a
running session whose id nobody had. The client must wait for the answer and undo it
(Lens: destroy; Kynasmith: cancel).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import pytest

from aiolens import AsyncArchetypeClient, AsyncKynasmithClient
from aiolens.emulator import Emulator
from tests.conftest import FAST_BACKOFF

IMAGE_QA = "lns-fd669361822b07e2-237ab3ffd79199b0"


@dataclass(frozen=True)
class Vendor:
    create_path: str
    undone: str  # the status of the session once undone
    statuses: Callable[[Emulator], list[str]]


LENS = Vendor(
    "/lens/sessions/create",
    "SESSION_STATUS_DESTROYED",
    lambda emu: [s.status for s in emu.lens.sessions.values()],
)
KYNASMITH = Vendor(
    "/detection/sessions",
    "cancelled",
    lambda emu: [s.status for s in emu.kynasmith.sessions.values()],
)


async def _session_block(
    vendor: Vendor, emulator: Emulator, stack: list[Any]
) -> AbstractAsyncContextManager[Any]:
    if vendor is LENS:
        lens = AsyncArchetypeClient(emulator.api_key, emulator.lens_url, backoff=FAST_BACKOFF)
        stack.append(lens)
        return lens.session(IMAGE_QA)
    kyna = AsyncKynasmithClient(
        emulator.kynasmith_api_key, base_url=emulator.kynasmith_url, backoff=FAST_BACKOFF
    )
    stack.append(kyna)
    specs = await kyna.movespecs.list(visibility="public")
    return kyna.detection_session(
        movespec_id=next(s.movespec_id for s in specs if s.name == "squat")
    )


@pytest.mark.parametrize("vendor", [LENS, KYNASMITH], ids=["lens", "kynasmith"])
async def test_cancel_during_create_undoes_the_session_it_made(
    vendor: Vendor, emulator: Emulator
) -> None:
    clients: list[Any] = []
    block = await _session_block(vendor, emulator, clients)
    fault = emulator.faults.stall_next(0.2, path=vendor.create_path, method="POST")

    async def body() -> None:
        async with block:
            raise AssertionError("the block must not be entered")

    task = asyncio.create_task(body())
    while fault.count:  # noqa: ASYNC110  (the emulator's state has no event to wait on)
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for client in clients:
        await client.aclose()
    assert vendor.statuses(emulator) == [vendor.undone]
