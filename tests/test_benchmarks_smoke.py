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
    assert {str(row["case"]).split()[0] for row in rows} == {"1", "2", "3", "4", "5"}
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
