"""Retries, timeouts and error mapping of the REST transport, against the emulator's faults."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aiolens import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncArchetypeClient,
    AsyncKynasmithClient,
    ConfigurationError,
    InternalServerError,
    RateLimitError,
)
from aiolens.emulator import Emulator
from tests.conftest import FAST_BACKOFF

BUILTIN = "lns-fd669361822b07e2-bc608aa3fdf8b4f9"


async def test_idempotent_get_retries_5xx(client: AsyncArchetypeClient, emulator: Emulator) -> None:
    emulator.faults.fail_next(500, count=2, path="/lens/metadata")
    assert await client.lenses.metadata()
    assert not emulator.faults.http


async def test_retries_run_out_with_typed_error(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    emulator.faults.fail_next(502, count=5, path="/lens/info")
    with pytest.raises(InternalServerError) as err:
        await client.lenses.info()
    assert err.value.status == 502 and err.value.retryable
    assert emulator.faults.http[0].count == 2  # 1 attempt + 2 retries consumed 3


async def test_create_is_retried_on_429_with_retry_after(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    emulator.faults.fail_next(429, path="/lens/sessions/create", retry_after="0.05")
    started = time.perf_counter()
    created = await client.sessions.create(BUILTIN)
    assert time.perf_counter() - started >= 0.05
    assert len(emulator.lens.sessions) == 1
    await client.sessions.destroy(created.session_id)


async def test_create_is_not_retried_on_500(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    # The server made the session, then failed: retrying would leak a second one.
    emulator.faults.fail_next(500, path="/lens/sessions/create", after_processing=True)
    with pytest.raises(InternalServerError):
        await client.sessions.create(BUILTIN)
    assert len(emulator.lens.sessions) == 1


async def test_create_not_retried_after_dropped_connection(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    emulator.faults.fail_next(0, path="/lens/sessions/create", after_processing=True)
    with pytest.raises(APIConnectionError) as err:
        await client.sessions.create(BUILTIN)
    assert err.value.sent
    assert len(emulator.lens.sessions) == 1


async def test_get_retried_after_dropped_connection(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    emulator.faults.fail_next(0, path="/lens/info")
    assert (await client.lenses.info()).num_lenses


async def test_rate_limit_surfaces_when_retries_disabled(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    emulator.faults.fail_next(429, path="/lens/info", retry_after="7")
    with pytest.raises(RateLimitError) as err:
        await client.with_options(max_retries=0).lenses.info()
    assert err.value.retry_after == 7.0


async def test_timeout_is_typed(client: AsyncArchetypeClient, emulator: Emulator) -> None:
    emulator.faults.fail_next(200, path="/lens/info", delay=1.0, count=5)
    with pytest.raises(APITimeoutError) as err:
        await client.with_options(timeout=0.1, max_retries=1).lenses.info()
    # The message says what happened, not "timed out: " with nothing after the colon.
    assert not str(err.value).rstrip().endswith(":"), str(err.value)
    assert "timed out" in str(err.value)


async def test_connect_failure_is_retried_then_typed() -> None:
    async with Emulator() as emu:
        url = emu.lens_url
        key = emu.api_key
    # The emulator is gone: nothing listens on that port any more.
    async with AsyncArchetypeClient(key, url, backoff=FAST_BACKOFF, max_retries=2) as client:
        with pytest.raises(APIConnectionError) as err:
            await client.sessions.create(BUILTIN)
    assert err.value.sent is False  # never sent, so even create was retried


async def test_cancel_during_retry_wait(client: AsyncArchetypeClient, emulator: Emulator) -> None:
    emulator.faults.fail_next(503, path="/lens/info", retry_after="30", count=3)
    slow = client.with_options(max_retries=3, timeout=60)  # a wait shorter than the timeout
    slow._http.backoff = FAST_BACKOFF.__class__(max_retry_after=30)
    task = asyncio.create_task(slow.lenses.info())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_all_documented_error_shapes() -> None:
    """Every error envelope of docs/protocol-notes.md "Errors" becomes a typed error."""
    answers = [
        web.json_response(
            {
                "errors": [
                    {"code": "a", "message": "first", "error_uid": "err-1"},
                    {"code": "B", "message": "second", "suggestion": "do x"},
                ]
            },
            status=400,
            headers={"X-Request-ID": "req-9"},
        ),
        web.json_response({"detail": "Not authenticated"}, status=401),
        web.json_response(
            {
                "error": {
                    "code": "rate_limited",
                    "message": "slow",
                    "retryable": True,
                    "details": {"retry_after": 60},
                }
            },
            status=429,
        ),
        web.Response(text="<html>bad gateway</html>", status=502),
    ]

    async def handler(request: web.Request) -> web.Response:
        return answers.pop(0)

    app = web.Application()
    app.router.add_get("/v0.5/lens/info", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url("/v0.5"))
        errors: list[APIStatusError] = []
        async with AsyncArchetypeClient("k" * 12, base, max_retries=0) as client:
            for _ in range(4):
                with pytest.raises(APIStatusError) as err:
                    await client.lenses.info()
                errors.append(err.value)
    first, second, third, fourth = errors
    assert first.codes == ["a", "B"] and first.error_uid == "err-1"
    assert first.request_id == "req-9" and first.errors[1].suggestion == "do x"
    assert "first; second" in str(first)
    assert second.status == 401 and second.message == "Not authenticated"
    assert third.code == "rate_limited" and third.details == {"retry_after": 60}
    assert fourth.body == "<html>bad gateway</html>" and "bad gateway" in str(fourth)


async def test_an_explicit_retryable_false_is_not_retried() -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        retryable = len(hits) > 1  # first: the server says do not repeat
        body = {"error": {"code": "upstream_down", "message": "x", "retryable": retryable}}
        return web.json_response(body, status=503 if retryable else 502)

    app = web.Application()
    app.router.add_get("/v0.5/lens/info", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url("/v0.5"))
        async with AsyncArchetypeClient(
            "k" * 12, base, max_retries=2, backoff=FAST_BACKOFF
        ) as client:
            with pytest.raises(InternalServerError) as err:
                await client.lenses.info()
            assert err.value.status == 502 and err.value.retryable is False
            assert len(hits) == 1
            with pytest.raises(InternalServerError):  # flagged retryable: retried as usual
                await client.lenses.info()
            assert len(hits) == 4


@pytest.mark.parametrize(
    "base_url",
    ["notaurl", "ftp://example.com", "http://example.com:99999", "http://", "http://[::1"],
)
async def test_a_base_url_that_is_not_http_fails_at_construction(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="base URL"):
        AsyncArchetypeClient("k" * 16, base_url)
    with pytest.raises(ConfigurationError, match="base URL"):
        AsyncKynasmithClient("id:secret", base_url=base_url)


def test_a_rejected_base_url_never_echoes_its_credentials() -> None:
    with pytest.raises(ConfigurationError) as err:
        AsyncArchetypeClient("k" * 16, "ftp://user:hunter2@example.com/")
    assert "hunter2" not in str(err.value)
