"""The client owns its sessions: ``open_session``, the registry, and ``aclose()`` destroying."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aiolens import APIConnectionError, APITimeoutError, AsyncArchetypeClient
from aiolens.emulator import Emulator
from tests.conftest import FAST_BACKOFF

IMAGE_QA = "lns-fd669361822b07e2-237ab3ffd79199b0"


def active(emulator: Emulator) -> list[str]:
    return [sid for sid, s in emulator.lens.sessions.items() if s.active]


def new_client(emulator: Emulator) -> AsyncArchetypeClient:
    return AsyncArchetypeClient(emulator.api_key, emulator.lens_url, backoff=FAST_BACKOFF)


async def test_aclose_right_after_cancelling_a_task_holding_a_session_destroys_it(
    emulator: Emulator,
) -> None:
    client = new_client(emulator)
    inside = asyncio.Event()

    async def hold() -> None:
        async with client.session(IMAGE_QA):
            inside.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(hold())
    await inside.wait()
    assert len(active(emulator)) == 1
    task.cancel()
    await client.aclose()  # what uvicorn's graceful-shutdown timeout does
    assert active(emulator) == []
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_aclose_while_the_create_is_in_flight_destroys_what_it_made(
    emulator: Emulator,
) -> None:
    client = new_client(emulator)
    # the create is processed at once and answered late
    emulator.faults.stall_next(0.3, path="/lens/sessions/create")

    async def hold() -> None:
        async with client.session(IMAGE_QA):
            await asyncio.sleep(3600)

    task = asyncio.create_task(hold())
    await asyncio.sleep(0.1)  # the create is on the wire
    task.cancel()
    await client.aclose()
    assert active(emulator) == []
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_open_session_lives_until_closed_and_is_found_by_id(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    session = await client.open_session(IMAGE_QA)
    assert client.open_sessions[session.session_id] is session
    assert (await session.validate()).is_valid
    await session.aclose()
    assert session.session_id not in client.open_sessions
    assert active(emulator) == []
    await session.aclose()  # idempotent


async def test_client_aclose_destroys_open_sessions_and_only_disconnects_attached_ones(
    emulator: Emulator,
) -> None:
    client = new_client(emulator)
    owned = [await client.open_session(IMAGE_QA) for _ in range(3)]
    other = await client.sessions.create(IMAGE_QA)
    attached = await client.attach_session(other.session_id)
    assert attached.attached and not owned[0].attached
    assert set(client.open_sessions) == {s.session_id for s in owned} | {other.session_id}
    await client.aclose()
    assert active(emulator) == [other.session_id]  # attached: left running
    assert all(s.closed for s in [*owned, attached])
    assert dict(client.open_sessions) == {}
    await client.aclose()  # idempotent


async def test_a_with_options_copy_shares_the_registry_of_the_original(
    emulator: Emulator,
) -> None:
    client = new_client(emulator)
    first, second = client.with_options(timeout=5), client.with_options(max_retries=0)
    closed_with_copy = await first.open_session(IMAGE_QA)
    closed_with_original = await second.open_session(IMAGE_QA)
    assert client.open_sessions[closed_with_copy.session_id] is closed_with_copy
    await first.aclose()  # its own sessions, not the pool
    assert active(emulator) == [closed_with_original.session_id]
    assert (await client.sessions.info()).num_active_sessions == 1  # the pool is open
    await client.aclose()  # the copies' sessions too (second was never closed)
    assert active(emulator) == []


async def test_a_closed_client_opens_no_session(emulator: Emulator) -> None:
    client = new_client(emulator)
    await client.aclose()
    with pytest.raises(APIConnectionError, match="closed"):
        await client.open_session(IMAGE_QA)
    assert emulator.lens.sessions == {}


async def test_aclose_logs_one_line_per_session_it_could_not_destroy(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    client = new_client(emulator)
    kept = [await client.open_session(IMAGE_QA, destroy_timeout=1) for _ in range(2)]
    emulator.faults.fail_next(400, path="/lens/sessions/destroy", count=2)
    with caplog.at_level(logging.WARNING, logger="aiolens"):
        await client.aclose()
    lines = [r.getMessage() for r in caplog.records if "could not destroy" in r.getMessage()]
    assert len(lines) == 2
    assert all(sum(s.session_id in line for line in lines) == 1 for s in kept)
    assert sorted(active(emulator)) == sorted(s.session_id for s in kept)


# ---- a create answered after the client gave up ------------------------------------------


async def test_a_create_answered_too_late_names_the_session_it_may_have_made(
    emulator: Emulator,
) -> None:
    async with AsyncArchetypeClient(
        emulator.api_key, emulator.lens_url, timeout=0.5, backoff=FAST_BACKOFF
    ) as client:
        older = await client.sessions.create(IMAGE_QA)
        emulator.lens.sessions[older.session_id].registration_timestamp -= 3600
        held = await client.open_session(IMAGE_QA)
        emulator.faults.stall_next(3, path="/lens/sessions/create")  # made now, answered late
        with pytest.raises(APITimeoutError) as caught:
            await client.open_session(IMAGE_QA)
        err = caught.value
        possible = err.possible_session
        assert possible is not None and possible.lens_id == IMAGE_QA
        assert "may have been created anyway" in str(err) and IMAGE_QA in str(err)
        (orphan,) = set(active(emulator)) - {older.session_id, held.session_id}
        found = await client.unowned_sessions(IMAGE_QA, created_within=possible.elapsed())
        assert [s.session_id for s in found] == [orphan]  # not the held one, not the older
        await client.sessions.destroy(orphan)
        await client.sessions.destroy(older.session_id)
    assert active(emulator) == []


async def test_a_create_that_was_never_sent_names_no_session(emulator: Emulator) -> None:
    async with AsyncArchetypeClient(
        emulator.api_key, "http://127.0.0.1:9/v0.5", max_retries=0
    ) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.sessions.create(IMAGE_QA)
    assert caught.value.sent is False and caught.value.possible_session is None
