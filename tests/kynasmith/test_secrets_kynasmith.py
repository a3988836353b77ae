"""Kynasmith credentials and tokens never reach a log line, a repr or an error."""

from __future__ import annotations

import logging

import pytest

from aiolens import AuthenticationError
from aiolens.emulator import Emulator
from aiolens.kynasmith import AsyncKynasmithClient
from aiolens.kynasmith.synthetic import generate_squats

FAKE_KEY = "kid_FAKE:ksec_FAKE-secret-0123456789"


async def test_detection_flow_never_shows_key_or_tokens(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        Emulator(kynasmith_api_key=FAKE_KEY) as emu,
        AsyncKynasmithClient(FAKE_KEY, base_url=emu.kynasmith_url) as client,
    ):
        spec = next(i for i, s in emu.kynasmith.movespecs.items() if s.name == "squat")
        async with client.detection_session(movespec_id=spec) as det:
            await det.send(generate_squats(1)[:30])
            await det.finalize()
        runtime_token = det.created.runtime_token
        shown = f"{client!r} {det!r} {det.created!r} {vars(client.tokens)!r}"
        access_tokens = list(emu.kynasmith.tokens)
        with pytest.raises(AuthenticationError) as err:
            async with AsyncKynasmithClient("x" + FAKE_KEY, base_url=emu.kynasmith_url) as bad:
                await bad.sessions.get("sess_1")
    everything = caplog.text + shown + str(err.value) + err.value.body
    assert caplog.records
    for secret in (FAKE_KEY, FAKE_KEY.split(":")[1], runtime_token, *access_tokens):
        assert secret not in everything
