"""The emulated lenses compute real, deterministic results."""

from __future__ import annotations

from importlib import resources

import pytest

from aiolens.emulator.lens_engine import LensEngineError, LensRun, csv_table, windows

DATA = resources.files("aiolens.data")
FILES = {
    name: DATA.joinpath(name).read_bytes()
    for name in ("sensor_demo.csv", "sensor_idle.csv", "sensor_normal.csv", "sensor_warning.csv")
}
N_SHOT = {"IDLE": "sensor_idle.csv", "NORMAL": "sensor_normal.csv", "WARNING": "sensor_warning.csv"}
TIMESERIES = {
    "model_pipeline": [
        {
            "processor_name": "lens_timeseries_state_processor",
            "processor_config": {"input_n_shot": N_SHOT},
        }
    ]
}


def results(run: LensRun) -> list[dict]:  # type: ignore[type-arg]
    return [e["event_data"] for e in run if e["type"] == "inference.result"]


def test_window_indices() -> None:
    cols, vals = ["x"], [[float(i) for i in range(10)]]
    assert [w.read_index for w in windows(cols, vals, window_size=4, step_size=3)] == [0, 3, 6]
    kept = windows(cols, vals, window_size=4, step_size=3, cut_off_incomplete_window=False)
    assert [(w.read_index, w.rows) for w in kept] == [(0, 4), (3, 4), (6, 4), (9, 1)]
    with pytest.raises(LensEngineError) as err:
        list(windows(cols, vals, window_size=0, step_size=1))
    assert err.value.code == "invalid_model_parameter"


def test_nearest_centroid_finds_the_regimes_in_order() -> None:
    run = LensRun(
        TIMESERIES,
        "csv_file_reader",
        {"file_id": "sensor_demo.csv", "window_size": 100, "step_size": 100},
        FILES,
    )
    states = [r["state"] for r in results(run)]
    assert states == ["IDLE"] * 6 + ["NORMAL"] * 6 + ["WARNING"] * 6 + ["NORMAL"] * 6 + ["IDLE"] * 6


def test_runs_are_deterministic_and_well_shaped() -> None:
    def run() -> list[dict]:  # type: ignore[type-arg]
        return list(
            LensRun(
                {},
                "csv_file_reader",
                {"file_id": "sensor_demo.csv", "window_size": 500, "step_size": 500},
                FILES,
            )
        )

    first = run()
    assert first == run()
    assert [e["type"] for e in first[:2]] == ["stream.start", "log.info"]
    assert first[-1]["type"] == "stream.end"
    result = first[2]["event_data"]
    assert result["query_metadata"]["query_metadata"]["total_rows"] == 3000
    assert set(result["statistics"]) == {"ax", "ay", "az"}


def test_errors_are_typed() -> None:
    with pytest.raises(LensEngineError) as err:
        LensRun({}, "csv_file_reader", {"file_id": "missing.csv"}, FILES)
    assert err.value.code == "upload_not_found"
    with pytest.raises(LensEngineError) as err:
        csv_table(b"")
    assert err.value.code == "empty_sensor_log_error"
    with pytest.raises(LensEngineError) as err:
        LensRun({}, "rtsp_video_streamer", {"file_id": "sensor_demo.csv"}, FILES)
    assert err.value.code == "invalid_stream_type"


def test_jsonl_and_video_readers() -> None:
    files = {"log.jsonl": b'{"value": 1, "t": 0}\n{"value": 3, "t": 1}\n', "v.mp4": b"\0" * 40000}
    jsonl = results(LensRun({}, "jsonl_file_reader", {"file_id": "log.jsonl"}, files))
    assert [r["statistics"]["value"]["mean"] for r in jsonl] == [1.0, 3.0]
    video = list(LensRun({}, "video_file_reader", {"file_id": "v.mp4", "window_size": 5}, files))
    assert [e["type"] for e in video].count("inference.result") == 2
    assert any(e["type"] == "frame.processed" for e in video)
