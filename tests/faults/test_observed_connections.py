"""Connection-state events, as an observer hears them through real outages."""

from __future__ import annotations

import asyncio

from aiolens import AsyncArchetypeClient
from aiolens.emulator import Emulator
from aiolens.errors import ConnectionLostError
from aiolens.observe import ConnectionEvent, ConnectionState, Observer, RequestSample
from tests.archetype.test_session import IMAGE_QA, csv_lens, start_csv
from tests.conftest import FAST_BACKOFF
from tests.faults.conftest import LeakGuard
from tests.faults.hostile import HostileServer, ws_close
from tests.faults.test_websocket_faults import HANG_GUARD, LENS_WS, gave_up

S = ConnectionState


class Recorder(Observer):
    def __init__(self) -> None:
        self.events: list[ConnectionEvent] = []
        self.requests: list[RequestSample] = []

    def connection_changed(self, event: ConnectionEvent) -> None:
        self.events.append(event)

    def request_finished(self, sample: RequestSample) -> None:
        self.requests.append(sample)

    def states(self, channel_part: str) -> list[ConnectionState]:
        return [e.state for e in self.events if channel_part in e.channel]


async def test_a_dropped_socket_is_heard_as_reconnecting_then_open(emulator: Emulator) -> None:
    recorder = Recorder()
    reconnected = asyncio.Event()

    async def on_reconnect(_session: object) -> None:
        reconnected.set()

    async with (
        AsyncArchetypeClient(
            emulator.api_key, emulator.lens_url, backoff=FAST_BACKOFF, observer=recorder
        ) as client,
        client.session(IMAGE_QA, on_reconnect=on_reconnect) as session,
    ):
        emulator.faults.ws_drop_after = 1
        await session.validate()
        emulator.faults.ws_drop_after = None
        await asyncio.wait_for(reconnected.wait(), HANG_GUARD)
        assert (await session.validate()).is_valid
    assert recorder.states("lens session") == [
        S.CONNECTING,
        S.OPEN,
        S.RECONNECTING,
        S.OPEN,
        S.CLOSED,
    ]
    reconnecting = next(e for e in recorder.events if e.state is S.RECONNECTING)
    assert reconnecting.attempt == 1 and reconnecting.delay is not None
    assert isinstance(reconnecting.cause, ConnectionLostError)
    validates = [r for r in recorder.requests if r.name == "session.validate"]
    assert len(validates) == 2 and all(r.transport == "websocket" for r in validates)
    assert validates[-1].error is None


async def test_reconnects_that_run_out_are_heard_as_gave_up(
    leaks: LeakGuard, emulator: Emulator, hostile: HostileServer
) -> None:
    recorder = Recorder()
    hostile.on("GET", LENS_WS, ws_close(1011), name="ws")
    async with (
        asyncio.timeout(HANG_GUARD),
        AsyncArchetypeClient(
            emulator.api_key, hostile.lens_url, backoff=FAST_BACKOFF, observer=recorder
        ) as client,
        client.session(IMAGE_QA, request_timeout=5) as session,
    ):
        error = await gave_up(session)
    states = recorder.states("lens session")
    assert states[:2] == [S.CONNECTING, S.OPEN]
    assert states[-1] is S.GAVE_UP
    assert states.count(S.RECONNECTING) == 5
    final = recorder.events[-1]
    assert final.cause is error and final.attempt == 6


async def test_an_event_stream_is_heard_from_connecting_to_closed(emulator: Emulator) -> None:
    recorder = Recorder()
    async with (
        AsyncArchetypeClient(
            emulator.api_key, emulator.lens_url, backoff=FAST_BACKOFF, observer=recorder
        ) as client,
    ):
        lens_id = await csv_lens(client)
        async with client.session(lens_id) as session:
            await start_csv(session)
            async for _ in session.events():
                pass
    assert recorder.states("event stream") == [S.CONNECTING, S.OPEN, S.CLOSED]
