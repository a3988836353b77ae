"""The benchmarks still run: every case once at a tiny size, nothing lost (no timings checked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.run import find_sdk, main


def run_bench(tmp_path: Path, *args: str) -> list[dict[str, object]]:
    out = tmp_path / "bench.json"
    status = main(["--smoke", "--repeat", "1", "--json", str(out), *args])
    rows: list[dict[str, object]] = json.loads(out.read_text())["rows"]
    assert status == 0  # nonzero when an operation was lost
    return rows


def test_every_case_runs_and_loses_nothing(tmp_path: Path) -> None:
    rows = run_bench(tmp_path, "--no-sdk")
    assert {str(row["case"]).split()[0] for row in rows} == {"1", "2", "3", "4", "5", "6"}
    for row in rows:
        if row["skipped"]:
            assert str(row["variant"]).startswith("archetypeai")
            continue
        assert row["lost"] == 0, row
        assert isinstance(row["median"], float) and row["median"] > 0, row
        if row["baseline"] is not None:
            assert isinstance(row["ratio"], float), row


def test_the_official_sdk_rows_run_when_it_is_installed(tmp_path: Path) -> None:
    python, why = find_sdk(None, disabled=False)
    if python is None:
        pytest.skip(why)
    rows = run_bench(tmp_path, "--cases", "1,3")
    sdk_rows = [row for row in rows if str(row["variant"]).startswith("archetypeai")]
    assert len(sdk_rows) == 2
    assert all(not row["skipped"] and row["lost"] == 0 for row in sdk_rows)


def test_the_direct_upload_benchmark_runs(tmp_path: Path) -> None:
    from benchmarks.direct_upload import main as upload_main

    out = tmp_path / "upload.json"
    status = upload_main(
        ["--size-mib", "3", "--part-mib", "1", "--repeat", "1", "--json", str(out)]
    )
    report = json.loads(out.read_text())
    assert status == 0
    assert set(report["variants"]) == {"direct", "direct-nocheck", "put"}
    assert all(v["median_s"] > 0 and v["peak_rss_mib"] > 0 for v in report["variants"].values())


async def test_the_delay_proxy_delays_each_way_and_keeps_every_byte_in_order() -> None:
    """Bytes go both ways intact and in order, each way at least ``delay`` late, EOF too."""
    import asyncio
    import time

    from benchmarks.delay_proxy import DelayProxy

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
        writer.close()

    upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with (
        upstream,
        DelayProxy(("127.0.0.1", upstream.sockets[0].getsockname()[1]), delay=0.05) as proxy,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        payload = bytes(range(256)) * 4096  # 1 MiB, many chunks
        start = time.perf_counter()
        writer.write(payload)
        first = await reader.readexactly(1)
        assert time.perf_counter() - start >= 0.1  # there and back: twice the delay
        writer.write_eof()
        rest = await reader.read()  # until the EOF forwarded back through the proxy
        assert first + rest == payload
        writer.close()
        await writer.wait_closed()
