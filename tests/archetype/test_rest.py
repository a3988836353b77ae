"""The Lens REST client against the real emulator over loopback."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from aiolens import (
    AsyncArchetypeClient,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    RejectedRequestError,
    SessionStatus,
)
from aiolens.emulator import Emulator

BUILTIN = "lns-fd669361822b07e2-bc608aa3fdf8b4f9"


async def test_missing_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="ATAI_API_KEY"):
        AsyncArchetypeClient()


async def test_key_and_endpoint_from_environment(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATAI_API_KEY", emulator.api_key)
    monkeypatch.setenv("ATAI_API_ENDPOINT", emulator.lens_url)
    async with AsyncArchetypeClient() as client:
        assert client.base_url == emulator.lens_url
        assert await client.lenses.metadata(BUILTIN)


async def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATAI_API_ENDPOINT", raising=False)
    client = AsyncArchetypeClient("k" * 20)
    assert client.base_url == "https://api.u1.archetypeai.app/v0.5"
    await client.aclose()


async def test_lens_lifecycle(client: AsyncArchetypeClient) -> None:
    lenses = await client.lenses.metadata()
    assert any(lens.lens_id == BUILTIN and lens.lens_modifiable is False for lens in lenses)
    info = await client.lenses.info()
    assert info.num_lenses == len(lenses)

    lens = await client.lenses.register({"lens_name": "My Test Lens"})
    assert lens.lens_modifiable is True
    assert lens.lens_config["model_pipeline"][0]["processor_name"] == "lens_noop_processor"

    clone = await client.lenses.clone(lens.lens_id)
    assert clone.lens_id != lens.lens_id
    assert clone.lens_config["origin_lens_id"] == lens.lens_id

    modified = await client.lenses.modify(clone.lens_id, lens_name="Renamed")
    assert modified.lens_name == "Renamed"
    assert (await client.lenses.get(clone.lens_id)).lens_name == "Renamed"

    deleted = await client.lenses.delete(clone.lens_id)
    assert deleted.is_valid and deleted.lens_id == clone.lens_id
    with pytest.raises(NotFoundError) as err:
        await client.lenses.metadata(clone.lens_id)
    assert err.value.status == 404
    assert err.value.error_uid and err.value.error_uid.startswith("err-")


async def test_register_with_nested_config_like_the_official_examples(
    client: AsyncArchetypeClient,
) -> None:
    lens = await client.lenses.register(
        {
            "lens_name": "Sensor Log Detector",
            "lens_config": {
                "model_pipeline": [{"processor_name": "lens_sensor_logs_processor"}],
                "model_parameters": {"sensor_buffer_size": 1},
                "output_streams": [{"stream_type": "server_sent_events_writer"}],
            },
        }
    )
    assert lens.lens_name == "Sensor Log Detector"
    assert lens.lens_config["model_pipeline"][0]["processor_name"] == "lens_sensor_logs_processor"


async def test_register_invalid_raises_rejected(client: AsyncArchetypeClient) -> None:
    with pytest.raises(RejectedRequestError) as err:
        await client.lenses.register({"model_parameters": {"sensor_buffer_size": 0}})
    assert "sensor_buffer_size" in str(err.value)
    assert err.value.status == 200


async def test_builtin_lens_cannot_be_modified_or_deleted(client: AsyncArchetypeClient) -> None:
    with pytest.raises(ConflictError):
        await client.lenses.modify(BUILTIN, lens_name="x")
    with pytest.raises(ConflictError):
        await client.lenses.delete(BUILTIN)


async def test_session_lifecycle(client: AsyncArchetypeClient) -> None:
    created = await client.sessions.create(BUILTIN)
    assert created.session_id.startswith("lsn-")
    assert created.status is SessionStatus.REGISTERED
    assert created.session_status == "SESSION_STATUS_REGISTERED"  # prefix stripped
    assert created.session_endpoint and created.session_endpoint.startswith("ws://127.0.0.1:")
    assert created.api_key is not None and "atai-emu" not in repr(created)

    listed = await client.sessions.metadata()
    assert [s.session_id for s in listed] == [created.session_id]
    assert (await client.sessions.info()).num_active_sessions == 1

    reply = await client.sessions.process_event(created.session_id, "session.validate")
    assert reply.event_data == {"is_valid": True, "error_messages": []}
    status = await client.sessions.process_event(created.session_id, "session.status")
    assert status.event_data["session_status"] == "LensSessionStatus.SESSION_STATUS_RUNNING"

    destroyed = await client.sessions.destroy(created.session_id)
    assert destroyed.status is SessionStatus.DESTROYED
    assert destroyed.session_duration_sec is not None
    assert await client.sessions.metadata() == []


async def test_unknown_lens_and_session(client: AsyncArchetypeClient) -> None:
    with pytest.raises(NotFoundError):
        await client.sessions.create("lns-does-not-exist")
    with pytest.raises(NotFoundError):
        await client.sessions.destroy("lsn-nope")


async def test_bad_key_is_authentication_error(emulator: Emulator) -> None:
    async with AsyncArchetypeClient("wrong-key-123", emulator.lens_url) as client:
        with pytest.raises(AuthenticationError) as err:
            await client.lenses.metadata()
    assert err.value.status == 401
    assert "Invalid API key" in str(err.value)
    assert not err.value.retryable


async def test_malformed_json_body_is_bad_request(
    client: AsyncArchetypeClient, emulator: Emulator
) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emulator.lens_url}/lens/sessions/create",
            data=b"{not json",
            headers={"Authorization": f"Bearer {emulator.api_key}"},
        ) as resp,
    ):
        assert resp.status == 400
        body = await resp.json()
    assert body["errors"][0]["code"] == "malformed_body"


async def test_files_roundtrip(client: AsyncArchetypeClient, tmp_path: Path) -> None:
    source = tmp_path / "readings.csv"
    source.write_text("t,a,b\n0,1,2\n1,3,4\n")
    uploaded = await client.files.upload(source)
    assert uploaded.file_id == "readings.csv" and uploaded.file_uid

    meta = await client.files.metadata("readings.csv")
    assert meta.file_type == "text/csv"
    assert meta.num_bytes == source.stat().st_size
    assert meta.file_attributes["num_rows"] == 2
    assert meta.file_attributes["column_headers"] == ["t", "a", "b"]

    await client.files.upload(b"\x89PNG....", filename="pic.png")
    await client.files.upload_base64(b"hello", "note.txt")
    assert await client.files.read("note.txt") == b"hello"

    page = await client.files.all_metadata()
    assert {m.file_id for m in page.data} == {"readings.csv", "pic.png", "note.txt"}
    assert page.has_more is False
    cursor_page = await client.files.all_metadata(limit=2)
    assert len(cursor_page.data) == 2 and cursor_page.has_more
    rest = await client.files.all_metadata(limit=2, after=cursor_page.next_cursor)
    assert [m.file_id for m in rest.data] == ["readings.csv"]

    info = await client.files.info()
    assert info.num_files == 3

    out = await client.files.download("readings.csv", tmp_path / "copy.csv")
    assert out.read_bytes() == source.read_bytes()
    assert not (tmp_path / "copy.csv.part").exists()

    deleted = await client.files.delete("readings.csv")
    assert deleted.file_id == "readings.csv"
    with pytest.raises(NotFoundError) as err:
        await client.files.metadata("readings.csv")
    assert err.value.code == "upload_not_found"


async def test_download_missing_file_leaves_nothing(
    client: AsyncArchetypeClient, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError):
        await client.files.download("nope.csv", tmp_path / "nope.csv")
    assert list(tmp_path.iterdir()) == []


async def test_unsupported_file_type(client: AsyncArchetypeClient) -> None:
    with pytest.raises(BadRequestError) as err:
        await client.files.upload(b"{}", filename="log.jsonl", content_type="application/x-ndjson")
    assert err.value.code == "invalid_file_type"


async def test_oversize_file() -> None:
    async with (
        Emulator(max_upload_bytes=1024) as emu,
        AsyncArchetypeClient(emu.api_key, emu.lens_url) as client,
    ):
        with pytest.raises(PayloadTooLargeError) as err:
            await client.files.upload(b"x" * 4096, filename="big.txt")
        assert err.value.code == "invalid_file_size"


async def test_base64_of_garbage_is_rejected(client: AsyncArchetypeClient) -> None:
    uploaded = await client.files.upload_base64(base64.b64encode(b"a,b\n1,2\n").decode(), "x.csv")
    assert uploaded.file_id == "x.csv"
    assert await client.files.read("x.csv") == b"a,b\n1,2\n"


async def test_injected_session_is_never_closed(emulator: Emulator) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url, session=http) as c:
            await c.lenses.info()
        assert not http.closed
        async with http.get(f"{emulator.base_url}/_emulator/health") as resp:
            assert resp.status == 200


async def test_aclose_is_idempotent_and_with_options_shares_pool(emulator: Emulator) -> None:
    client = AsyncArchetypeClient(emulator.api_key, emulator.lens_url)
    quick = client.with_options(timeout=5, max_retries=0)
    await quick.lenses.info()
    await quick.aclose()
    await client.lenses.info()  # the shared pool is still open
    await client.aclose()
    await client.aclose()
    assert client.closed
