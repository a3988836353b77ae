"""The API key never reaches a log line, a repr or an exception message."""

from __future__ import annotations

import logging

import pytest

from aiolens import AsyncArchetypeClient, AuthenticationError
from aiolens._core.redact import MASK, SecretStr, redact, register_secret
from aiolens.emulator import Emulator

FAKE_KEY = "atai-FAKE-secret-0123456789abcdef"
BUILTIN = "lns-fd669361822b07e2-bc608aa3fdf8b4f9"


async def test_full_rest_flow_never_logs_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        Emulator(api_key=FAKE_KEY) as emu,
        AsyncArchetypeClient(FAKE_KEY, emu.lens_url) as client,
    ):
        created = await client.sessions.create(BUILTIN)
        text = f"{created!r} {created} {created.api_key} {client!r}"
        logging.getLogger("aiolens").debug("created %r with key %s", created, FAKE_KEY)
        logging.getLogger("aiolens").info("header: Authorization: Bearer %s", FAKE_KEY)
        await client.sessions.destroy(created.session_id)
        assert created.api_key == MASK  # echoed, and not kept
    with pytest.raises(AuthenticationError) as err:
        async with AsyncArchetypeClient("x" + FAKE_KEY, "http://127.0.0.1:9/v0.5") as bad:
            raise AuthenticationError(f"echo {FAKE_KEY}", status=401, body=FAKE_KEY)
    assert bad.closed
    everything = caplog.text + text + str(err.value) + err.value.body
    assert FAKE_KEY not in everything
    assert caplog.records, "the flow should have logged something at DEBUG"
    assert MASK in caplog.text


def test_redact_patterns_without_registration() -> None:
    assert redact("Authorization: Bearer abc.def-ghi") == f"Authorization: Bearer {MASK}"
    assert redact('{"api_key": "zzz-123"}') == f'{{"api_key": "{MASK}"}}'
    assert redact("wss://h/x?runtime_token=eyJabc&x=1") == f"wss://h/x?runtime_token={MASK}&x=1"
    assert "k3y" not in redact("authenticationauthorization.bearer.k3y-k3y")


def test_secret_str() -> None:
    s = SecretStr("hunter2-hunter2")
    assert "hunter2" not in f"{s} {s!r} {s:>20}"
    assert s.get_secret_value() == "hunter2-hunter2"
    register_secret("hunter2-hunter2")
    assert redact("pw=hunter2-hunter2!") == f"pw={MASK}!"


async def test_the_session_record_from_a_raw_status_request_is_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        Emulator(api_key=FAKE_KEY) as emu,
        AsyncArchetypeClient(FAKE_KEY, emu.lens_url) as client,
        client.session(BUILTIN) as session,
    ):
        # The echoed key is stored as its mask (JSON-able; the caller holds the key).
        record = await session.request("session.status")
        assert record["api_key"] == MASK
        info = await session.status()
        assert info.api_key == MASK
        rest = await client.sessions.process_event(session.session_id, "session.status")
        shown = f"{record!r} {record} {info!r} {rest!r}"
    assert FAKE_KEY not in shown + caplog.text


def test_the_secret_part_of_a_kynasmith_key_is_masked_on_its_own() -> None:
    from aiolens import APIStatusError
    from aiolens.kynasmith import AsyncKynasmithClient

    key_id, key_secret = "ksk-id-0001", "only-the-SECRET-part-9876"
    AsyncKynasmithClient(f"{key_id}:{key_secret}", base_url="http://127.0.0.1:9")
    error = APIStatusError(f"bad secret {key_secret}", status=401, body=key_secret)
    assert key_secret not in f"{error} {error.message} {error.body}"
    assert redact(f"echo: {key_secret}") == f"echo: {MASK}"


def test_an_unknown_event_echoing_a_session_record_is_masked() -> None:
    from aiolens.archetype.events import UnknownEvent, decode_event

    register_secret(FAKE_KEY)
    event = decode_event(b'{"type": "x.new", "record": {"api_key": "%s"}}' % FAKE_KEY.encode())
    assert isinstance(event, UnknownEvent)
    assert FAKE_KEY not in f"{event!r} {event.raw}"
    assert event.raw["record"]["api_key"] == MASK
