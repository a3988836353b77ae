"""Every numeric and enum option is checked where it is given, before anything is created.

A bad value is a ``ConfigurationError`` (a ``ValueError``) naming the option; timeouts of
0, below 0, NaN or infinity never mean "wait forever".
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aiolens import (
    AsyncArchetypeClient,
    ConfigurationError,
    PoseFrameError,
    RateLimitError,
    Timeouts,
)
from aiolens._core.backoff import Backoff
from aiolens.emulator import Emulator
from aiolens.kynasmith import AsyncKynasmithClient
from aiolens.kynasmith.synthetic import generate_squats
from tests.conftest import FAST_BACKOFF
from tests.kynasmith.test_client import squat_spec
from tests.test_cli import run_cli

IMAGE_QA = "lns-fd669361822b07e2-237ab3ffd79199b0"
NAN = math.nan
BAD_SECONDS = [0, -1, NAN, math.inf, "5", None, True]


@pytest.fixture
async def kyna(emulator: Emulator) -> AsyncIterator[AsyncKynasmithClient]:
    async with AsyncKynasmithClient(
        emulator.kynasmith_api_key, base_url=emulator.kynasmith_url, backoff=FAST_BACKOFF
    ) as client:
        yield client


# ---- clients -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        *[("timeout", v) for v in BAD_SECONDS if v is not None],
        ("timeout.total", aiohttp.ClientTimeout(total=0)),
        ("timeout.total", aiohttp.ClientTimeout(total=NAN)),
        ("timeout.sock_read", aiohttp.ClientTimeout(total=5, sock_read=-1)),
        ("max_retries", -1),
        ("max_retries", 1.5),
        ("backoff", "fast"),
    ],
)
def test_client_options(option: str, value: Any) -> None:
    kwargs = {"timeout": value} if option.startswith("timeout") else {option: value}
    with pytest.raises(ConfigurationError, match=option.replace(".", r"\.")):
        AsyncArchetypeClient("key-1234", "http://127.0.0.1:1", **kwargs)
    with pytest.raises(ConfigurationError, match=option.replace(".", r"\.")):
        AsyncKynasmithClient("id:secret", base_url="http://127.0.0.1:1", **kwargs)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("initial", -1),
        ("maximum", NAN),
        ("multiplier", 0.5),
        ("jitter", 2),
        ("max_retry_after", -1),
        ("max_retry_after", math.inf),
    ],
)
def test_backoff_options(option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"Backoff.{option}"):
        Backoff(**{option: value})


@pytest.mark.parametrize(
    ("option", "value"), [("token_refresh_margin", -1), ("token_refresh_margin", NAN)]
)
def test_kynasmith_client_options(option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=option):
        AsyncKynasmithClient("id:secret", base_url="http://127.0.0.1:1", **{option: value})


def test_an_api_key_that_is_not_a_string_is_named_and_not_shown() -> None:
    with pytest.raises(ConfigurationError, match="api_key must be a str, not int") as err:
        AsyncArchetypeClient(api_key=123456789)  # type: ignore[arg-type]
    assert "123456789" not in str(err.value)
    with pytest.raises(ConfigurationError, match="api_key"):
        AsyncKynasmithClient(api_key=123456789)  # type: ignore[arg-type]


def test_with_options_checks_its_values_too(emulator: Emulator) -> None:
    client = AsyncArchetypeClient(emulator.api_key, emulator.lens_url)
    with pytest.raises(ConfigurationError, match="timeout"):
        client.with_options(timeout=-1)
    with pytest.raises(ConfigurationError, match="max_retries"):
        client.with_options(max_retries=-2)


@pytest.mark.parametrize("value", [0, -1, NAN, math.inf, aiohttp.ClientTimeout(total=0)])
async def test_a_per_call_timeout_is_checked_before_the_request_is_sent(
    client: AsyncArchetypeClient, emulator: Emulator, value: Any, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        await client.sessions.create(IMAGE_QA, timeout=value)
    with pytest.raises(ConfigurationError, match="timeout"):
        await client.files.download("x", tmp_path / "x", timeout=value)
    assert emulator.lens.sessions == {}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "kwargs"),
    [
        ("Timeouts.total", {"total": 0}),
        ("Timeouts.connect", {"total": 5, "connect": NAN}),
        ("Timeouts.read", {"read": -1}),
        ("Timeouts.read", {"read": math.inf}),
        ("total= or read=", {"connect": 5}),
        ("total= or read=", {}),
    ],
)
def test_timeouts_are_checked_when_made(option: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=option.replace(".", r"\.")):
        Timeouts(**kwargs)


async def test_timeouts_work_per_client_per_copy_and_per_call(
    emulator: Emulator, tmp_path: Path
) -> None:
    limits = Timeouts(total=30, connect=5, read=10)
    async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url, timeout=limits) as client:
        assert (await client.sessions.info()).num_active_sessions == 0
        await client.with_options(timeout=Timeouts(read=10)).lenses.metadata()
        await client.files.upload_base64(b"a,b\n1,2\n", "t.csv", timeout=Timeouts(total=10))
        path = await client.files.download("t.csv", tmp_path / "t.csv", timeout=Timeouts(read=5))
        assert path.read_bytes() == b"a,b\n1,2\n"


async def test_an_aiohttp_client_timeout_still_works_with_a_deprecation_warning(
    emulator: Emulator,
) -> None:
    with pytest.warns(DeprecationWarning, match="aiolens.Timeouts"):
        client = AsyncArchetypeClient(
            emulator.api_key, emulator.lens_url, timeout=aiohttp.ClientTimeout(total=30)
        )
    async with client:
        await client.sessions.info()  # warned once, when given
        with pytest.warns(DeprecationWarning, match="aiolens.Timeouts"):
            await client.sessions.info(timeout=aiohttp.ClientTimeout(total=30))


async def test_a_per_call_max_retries_is_checked(client: AsyncArchetypeClient) -> None:
    with pytest.raises(ConfigurationError, match="max_retries"):
        await client._http.request("GET", "/lens/sessions/info", max_retries=-1)


async def test_a_retry_after_longer_than_the_timeout_is_raised_not_waited(
    emulator: Emulator,
) -> None:
    # The cap on Retry-After (60 s by default) must not outlast the call's timeout.
    async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url, timeout=2) as client:
        emulator.faults.fail_next(429, path="/lens/sessions/info", retry_after="30")
        with pytest.raises(RateLimitError) as err:
            await client.sessions.info()
        assert err.value.retry_after == 30
        emulator.faults.fail_next(429, path="/lens/sessions/info", retry_after="0.05")
        await client.sessions.info()  # a short one is still waited for and retried


# ---- Lens sessions -----------------------------------------------------------------------

SESSION_BAD = [
    *[("heartbeat_interval", v) for v in [0, -1, NAN, math.inf, "30"]],
    *[("request_timeout", v) for v in BAD_SECONDS],
    *[("destroy_timeout", v) for v in BAD_SECONDS],
    *[("open_timeout", v) for v in BAD_SECONDS],
    *[("ping_interval", v) for v in [0, -5, NAN]],
    ("max_in_flight", 0),
    ("max_in_flight", -3),
    ("max_in_flight", 2.5),
    ("reconnect", "yes"),
    ("on_reconnect", 5),
]


@pytest.mark.parametrize(("option", "value"), SESSION_BAD)
async def test_session_options_fail_before_a_session_is_created(
    client: AsyncArchetypeClient, emulator: Emulator, option: str, value: Any
) -> None:
    with pytest.raises(ConfigurationError, match=option):
        await client.open_session(IMAGE_QA, **{option: value})
    with pytest.raises(ConfigurationError, match=option):
        async with client.session(IMAGE_QA, **{option: value}):
            raise AssertionError("not entered")
    assert emulator.lens.sessions == {}
    assert dict(client.open_sessions) == {}


async def test_attach_options_fail_before_connecting(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    made = await client.sessions.create(IMAGE_QA)
    with pytest.raises(ConfigurationError, match="heartbeat_interval"):
        await client.attach_session(made.session_id, heartbeat_interval=-1)
    assert emulator.lens.sessions[made.session_id].num_active_connections == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("queue_size", 0),
        ("queue_size", "10"),
        ("overflow", "bogus"),
        ("liveness_timeout", 0),
        ("liveness_timeout", -1),
        ("liveness_timeout", NAN),
        ("max_reconnects", -1),
        ("include_heartbeats", "no"),
    ],
)
async def test_events_options(client: AsyncArchetypeClient, option: str, value: Any) -> None:
    async with client.session(IMAGE_QA) as session:
        with pytest.raises(ConfigurationError, match=option):
            session.events(**{option: value})


@pytest.mark.parametrize("value", [0, -1, NAN, math.inf, "1"])
async def test_request_timeouts(client: AsyncArchetypeClient, value: Any) -> None:
    async with client.session(IMAGE_QA) as session:
        with pytest.raises(ConfigurationError, match="timeout"):
            await session.request("session.validate", {}, timeout=value)
        with pytest.raises(ConfigurationError, match="timeout"):
            await session.query(focus="x", timeout=value)
        with pytest.raises(ConfigurationError, match="poll_interval"):
            await anext(session.mailbox("me", poll_interval=value))
        assert (await session.validate()).is_valid  # the socket is untouched


# ---- Kynasmith ---------------------------------------------------------------------------

DETECTION_BAD = [
    ("window", 0),
    ("window", 1.5),
    *[("ack_timeout", v) for v in BAD_SECONDS],
    ("event_queue_size", 0),
    ("validate", "yes"),
    ("reconnect", 1),
    ("ping_interval", 0),
    *[("cancel_timeout", v) for v in BAD_SECONDS],
    ("mode", "bogus"),
    ("contract_major", 0),
]


@pytest.mark.parametrize(("option", "value"), DETECTION_BAD)
async def test_detection_options_fail_before_a_session_is_created(
    kyna: AsyncKynasmithClient, emulator: Emulator, option: str, value: Any
) -> None:
    spec = await squat_spec(kyna)
    with pytest.raises(ConfigurationError, match=option):
        await kyna.open_detection_session(movespec_id=spec, **{option: value})
    with pytest.raises(ConfigurationError, match=option):
        async with kyna.detection_session(movespec_id=spec, **{option: value}):
            raise AssertionError("not entered")
    assert emulator.kynasmith.sessions == {}


@pytest.mark.parametrize("value", [0, -1, NAN, "30"])
async def test_finalize_timeout(kyna: AsyncKynasmithClient, value: Any) -> None:
    async with kyna.detection_session(movespec_id=await squat_spec(kyna)) as det:
        with pytest.raises(ConfigurationError, match="timeout"):
            await det.finalize(timeout=value)


# ---- CLI ---------------------------------------------------------------------------------


async def test_cli_timeouts_that_would_overflow_or_never_expire_are_usage_errors(
    emulator: Emulator,
) -> None:
    env = {"ATAI_API_KEY": emulator.api_key, "ATAI_API_ENDPOINT": emulator.lens_url}
    for value in ("inf", "nan", "0", "-1"):
        code, _, err = await run_cli("sessions", "list", "--timeout", value, env=env)
        assert code == 2, err
        assert "--timeout" in err and "finite number of seconds" in err
        assert "Traceback" not in err


# ---- arguments of the wrong type ---------------------------------------------------------


async def test_a_lens_config_that_is_not_a_mapping_is_named(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    before = len(emulator.lens.lenses)
    with pytest.raises(ConfigurationError, match="lens_config must be a mapping, not str"):
        await client.lenses.register("notadict")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="lens_config"):
        await client.lenses.modify("lns-x", lens_config=["a", "b"])  # type: ignore[arg-type]
    assert len(emulator.lens.lenses) == before


async def test_sending_something_that_is_not_a_frame_is_a_pose_frame_error(
    kyna: AsyncKynasmithClient,
) -> None:
    async with kyna.detection_session(movespec_id=await squat_spec(kyna)) as det:
        for validate in (True, False):
            det.validate = validate
            with pytest.raises(PoseFrameError, match="expected a PoseFrame, not str") as err:
                await det.send(["notaframe"])  # type: ignore[list-item]
            assert err.value.index == 0
        ack = await det.send(generate_squats(1)[:5])  # nothing was sent before
        assert ack.batch_seq == 1


# ---- the emulator's fault endpoint -------------------------------------------------------


async def test_the_fault_endpoint_requires_the_emulators_key(emulator: Emulator) -> None:
    url = f"{emulator.base_url}/_emulator/faults"
    body = {"reply_delay": 5}
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer "}):
            async with http.post(url, json=body, headers=headers) as resp:
                assert resp.status == 401
        assert emulator.faults.reply_delay == 0
        auth = {"Authorization": f"Bearer {emulator.api_key}"}
        async with http.post(url, data=b"[1]", headers=auth) as resp:
            assert resp.status == 400
        async with http.post(url, json=body, headers=auth) as resp:
            assert resp.status == 200
        assert emulator.faults.reply_delay == 5
