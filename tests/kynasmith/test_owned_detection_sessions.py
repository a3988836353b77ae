"""The Kynasmith client owns its detection sessions: open, find by id, cancel on aclose()."""

from __future__ import annotations

import asyncio

import pytest

from aiolens.emulator import Emulator
from aiolens.kynasmith import AsyncKynasmithClient
from aiolens.kynasmith.synthetic import generate_squats
from tests.conftest import FAST_BACKOFF
from tests.kynasmith.test_client import squat_spec


def new_client(emulator: Emulator) -> AsyncKynasmithClient:
    return AsyncKynasmithClient(
        emulator.kynasmith_api_key, base_url=emulator.kynasmith_url, backoff=FAST_BACKOFF
    )


def statuses(emulator: Emulator) -> list[str]:
    return [s.status for s in emulator.kynasmith.sessions.values()]


async def test_open_detection_session_is_found_by_id_and_cancelled_when_closed(
    emulator: Emulator,
) -> None:
    async with new_client(emulator) as client:
        spec = await squat_spec(client)
        det = await client.open_detection_session(movespec_id=spec)
        assert client.open_sessions[det.session_id] is det
        await det.send(generate_squats(1)[:10])
        await det.aclose()
        assert det.closed and det.session_id not in client.open_sessions
        assert statuses(emulator) == ["cancelled"]


async def test_client_aclose_cancels_open_sessions_but_not_finalized_ones(
    emulator: Emulator,
) -> None:
    client = new_client(emulator)
    spec = await squat_spec(client)
    left_open = [await client.open_detection_session(movespec_id=spec) for _ in range(2)]
    finished = await client.open_detection_session(movespec_id=spec)
    await finished.send(generate_squats(1))
    summary = await finished.finalize()
    await client.aclose()
    assert all(d.closed for d in [*left_open, finished])
    assert sorted(statuses(emulator)) == sorted(["cancelled", "cancelled", summary.status])
    assert summary.status == "completed"


async def test_aclose_right_after_cancelling_a_task_holding_a_detection_session(
    emulator: Emulator,
) -> None:
    client = new_client(emulator)
    spec = await squat_spec(client)
    inside = asyncio.Event()

    async def hold() -> None:
        async with client.detection_session(movespec_id=spec):
            inside.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(hold())
    await inside.wait()
    task.cancel()
    await client.aclose()
    assert statuses(emulator) == ["cancelled"]
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_aclose_while_the_detection_create_is_in_flight_cancels_what_it_made(
    emulator: Emulator,
) -> None:
    client = new_client(emulator)
    spec = await squat_spec(client)
    emulator.faults.stall_next(0.3, path="/api/detection/sessions", method="POST")

    async def hold() -> None:
        async with client.detection_session(movespec_id=spec):
            await asyncio.sleep(3600)

    task = asyncio.create_task(hold())
    await asyncio.sleep(0.1)
    task.cancel()
    await client.aclose()
    assert statuses(emulator) == ["cancelled"]
    with pytest.raises(asyncio.CancelledError):
        await task
