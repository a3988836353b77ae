"""Error bodies of unusual shapes, from crafted servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aiolens import (
    APIStatusError,
    AsyncArchetypeClient,
    BadRequestError,
    PayloadTooLargeError,
    RateLimitError,
    RejectedRequestError,
)
from aiolens._core.redact import MASK
from aiolens.emulator import Emulator
from tests.conftest import FAST_BACKOFF

KEY = "atai-errors-test-key-0123456789"


@pytest.fixture
async def answers() -> AsyncIterator[tuple[list[web.Response], str]]:
    """A server answering ``/v0.5/*`` with the queued responses, in order."""
    queue: list[web.Response] = []

    async def handler(request: web.Request) -> web.Response:
        return queue.pop(0)

    app = web.Application()
    app.router.add_route("*", "/v0.5/{tail:.*}", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        yield queue, str(server.make_url("/v0.5"))


async def test_error_fields_of_unexpected_types_still_parse(
    answers: tuple[list[web.Response], str],
) -> None:
    queue, url = answers
    queue.append(
        web.json_response(
            {
                "error": {
                    "code": 1042,
                    "message": "Unsupported value",
                    "details": None,
                    "retryable": None,
                }
            },
            status=400,
        )
    )
    queue.append(
        web.json_response(
            {"errors": [{"code": "bad", "message": None, "suggestion": None, "error_uid": None}]},
            status=400,
        )
    )
    async with AsyncArchetypeClient(KEY, url, max_retries=0) as client:
        with pytest.raises(BadRequestError) as first:
            await client.lenses.info()
        with pytest.raises(BadRequestError) as second:
            await client.lenses.info()
    assert first.value.code == "1042" and first.value.message == "Unsupported value"
    assert first.value.details == {}
    assert second.value.codes == ["bad"]


async def test_error_items_never_hold_the_key(answers: tuple[list[web.Response], str]) -> None:
    queue, url = answers
    queue.append(
        web.json_response(
            {
                "errors": [
                    {
                        "code": "invalid_key",
                        "message": f"Key {KEY} is not valid",
                        "suggestion": f"Replace {KEY}",
                    }
                ]
            },
            status=400,
        )
    )
    queue.append(
        web.json_response(
            {"error": {"code": "x", "message": "m", "details": {"api_key": KEY, "n": [KEY]}}},
            status=400,
        )
    )
    async with AsyncArchetypeClient(KEY, url, max_retries=0) as client:
        caught: list[APIStatusError] = []
        for _ in range(2):
            with pytest.raises(BadRequestError) as err:
                await client.lenses.info()
            caught.append(err.value)
    for error in caught:
        text = f"{error} {error!r} {error.errors!r} {error.details!r} {error.body}"
        assert KEY not in text
        assert MASK in text


async def test_retry_after_from_the_body_when_no_header(
    answers: tuple[list[web.Response], str],
) -> None:
    queue, url = answers
    queue.append(
        web.json_response(
            {"error": {"code": "rate_limited", "message": "slow", "details": {"retry_after": 60}}},
            status=429,
        )
    )
    queue.append(
        web.json_response(
            {"error": {"code": "rate_limited", "details": {"retry_after_seconds": 2}}},
            status=429,
        )
    )
    async with AsyncArchetypeClient(KEY, url, max_retries=0) as client:
        with pytest.raises(RateLimitError) as first:
            await client.lenses.info()
        with pytest.raises(RateLimitError) as second:
            await client.lenses.info()
    assert first.value.retry_after == 60.0
    assert second.value.retry_after == 2.0


async def test_rejected_2xx_with_errors_array(answers: tuple[list[web.Response], str]) -> None:
    queue, url = answers
    queue.append(
        web.json_response(
            {
                "session_id": "lsn-1",
                "api_key": KEY,
                "errors": [{"code": "internal_logic_error", "message": "missing org_id"}],
            }
        )
    )
    async with AsyncArchetypeClient(KEY, url, backoff=FAST_BACKOFF) as client:
        with pytest.raises(RejectedRequestError) as err:
            await client.sessions.create("lns-x")
    assert err.value.status == 200 and err.value.code == "internal_logic_error"
    assert KEY not in f"{err.value} {err.value!r} {err.value.body}"


async def test_session_status_event_reply_hides_the_echoed_key() -> None:
    async with (
        Emulator(api_key=KEY) as emu,
        AsyncArchetypeClient(KEY, emu.lens_url) as client,
    ):
        created = await client.sessions.create("lns-fd669361822b07e2-bc608aa3fdf8b4f9")
        reply = await client.sessions.process_event(created.session_id, "session.status")
        await client.sessions.destroy(created.session_id)
    assert reply.event_data["session_id"] == created.session_id
    assert KEY not in repr(reply)
    assert reply.event_data["api_key"] == MASK
    assert KEY not in msgspec.json.encode(reply).decode()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/lens/sessions/create", {"lens_id": ["lns-x"]}),
        ("/lens/sessions/destroy", {"session_id": {"id": 1}}),
        ("/lens/modify", {"lens_id": ["lns-x"]}),
        ("/lens/delete", {"lens_id": 7}),
        ("/lens/sessions/events/process", {"session_id": ["x"], "event": {"type": "x"}}),
    ],
)
async def test_emulator_rejects_ids_of_the_wrong_type(
    emulator: Emulator, path: str, body: dict[str, object]
) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emulator.lens_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {emulator.api_key}"},
        ) as resp,
    ):
        assert resp.status == 400
        answer = await resp.json()
    assert answer["errors"][0]["code"] == "invalid_parameter"


async def test_register_with_non_object_parameters_is_rejected(
    client: AsyncArchetypeClient,
) -> None:
    with pytest.raises(RejectedRequestError) as err:
        await client.lenses.register({"model_parameters": "fast"})
    assert "model_parameters" in str(err.value)


async def test_oversize_message_names_the_real_limit() -> None:
    async with (
        Emulator(max_upload_bytes=1024) as emu,
        AsyncArchetypeClient(emu.api_key, emu.lens_url) as client,
    ):
        with pytest.raises(PayloadTooLargeError) as err:
            await client.files.upload(b"x" * 200_000, filename="big.txt")
    assert "1024 bytes" in err.value.message
