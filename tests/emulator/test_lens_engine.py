"""The emulated lenses compute real, deterministic results from uploaded files."""

from __future__ import annotations

import itertools
import pickle
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aiolens.data import _make_samples
from aiolens.emulator.lens_engine import (
    CAMERA_CAPTIONS,
    FRAME_BYTES,
    CameraProcessor,
    LensEngineError,
    LensRun,
    TimeseriesStateProcessor,
    Window,
    csv_windows,
    describe_window,
    jsonl_windows,
    parse_csv,
    parse_jsonl,
    video_windows,
)

DATA = resources.files("aiolens.data")
SAMPLES = ("sensor_demo.csv", "sensor_idle.csv", "sensor_normal.csv", "sensor_warning.csv")
FILES = {name: DATA.joinpath(name).read_bytes() for name in SAMPLES}
N_SHOT = {"IDLE": "sensor_idle.csv", "NORMAL": "sensor_normal.csv", "WARNING": "sensor_warning.csv"}
TIMESERIES: dict[str, Any] = {
    "model_pipeline": [
        {
            "processor_name": "lens_timeseries_state_processor",
            "processor_config": {"input_n_shot": N_SHOT},
        }
    ]
}
SENSOR_LOGS: dict[str, Any] = {"model_pipeline": [{"processor_name": "lens_sensor_logs_processor"}]}
CAMERA: dict[str, Any] = {"model_pipeline": [{"processor_name": "lens_camera_processor"}]}
DEMO_STATES = ["IDLE"] * 6 + ["NORMAL"] * 6 + ["WARNING"] * 6 + ["NORMAL"] * 6 + ["IDLE"] * 6


def counting_csv(rows: int, header: str = "timestamp,x,y") -> bytes:
    lines = [header] + [f"{i * 0.5},{i},{2 * i}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def spans(windows: Any) -> list[tuple[int, int]]:
    return [(w.read_index, w.rows) for w in windows]


def results(run: LensRun) -> list[dict[str, Any]]:
    return [e["event_data"] for e in run if e["type"] == "inference.result"]


def demo_run(lens_config: dict[str, Any] = TIMESERIES, **stream: Any) -> LensRun:
    config = {"file_id": "sensor_demo.csv", "window_size": 100, "step_size": 100, **stream}
    return LensRun(lens_config, "csv_file_reader", config, FILES)


def error_code(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(LensEngineError) as err:
        call(*args, **kwargs)
    return err.value.code


# ---- readers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "step", "cut_off", "expected"),
    [
        (4, 4, True, [(0, 4), (4, 4)]),
        (4, 4, False, [(0, 4), (4, 4), (8, 2)]),
        (5, 5, True, [(0, 5), (5, 5)]),
        (5, 5, False, [(0, 5), (5, 5)]),
        (4, 2, True, [(0, 4), (2, 4), (4, 4), (6, 4)]),
        (4, 3, True, [(0, 4), (3, 4), (6, 4)]),
        (4, 3, False, [(0, 4), (3, 4), (6, 4)]),
        (3, 4, False, [(0, 3), (4, 3), (8, 2)]),
        (2, 5, True, [(0, 2), (5, 2)]),
        (1, 1, True, [(i, 1) for i in range(10)]),
        (11, 11, True, []),
        (11, 11, False, [(0, 10)]),
    ],
)
def test_csv_window_indices(
    size: int, step: int, cut_off: bool, expected: list[tuple[int, int]]
) -> None:
    windows = csv_windows(
        counting_csv(10), window_size=size, step_size=step, cut_off_incomplete_window=cut_off
    )
    assert spans(windows) == expected


def test_window_carries_column_major_values_and_provenance() -> None:
    first, second = csv_windows(counting_csv(6), window_size=3, step_size=3, file_id="c.csv")
    assert first.columns == ["x", "y"]
    assert first.values == [[0.0, 1.0, 2.0], [0.0, 2.0, 4.0]]
    assert second.values == [[3.0, 4.0, 5.0], [6.0, 8.0, 10.0]]
    assert (second.read_index, second.rows, second.total_rows) == (3, 3, 6)
    assert (second.file_id, second.index, second.loop) == ("c.csv", 1, 0)


def test_loop_recording_restarts_from_the_first_row_until_max_windows() -> None:
    windows = list(
        csv_windows(
            counting_csv(10), window_size=4, step_size=4, loop_recording=True, max_windows=7
        )
    )
    assert [w.read_index for w in windows] == [0, 4, 0, 4, 0, 4, 0]
    assert [w.loop for w in windows] == [0, 0, 1, 1, 2, 2, 3]
    assert [w.index for w in windows] == list(range(7))


def test_loop_recording_without_a_limit_is_endless_but_lazy() -> None:
    windows = csv_windows(counting_csv(10), window_size=5, step_size=5, loop_recording=True)
    assert len(list(itertools.islice(windows, 1001))) == 1001


def test_loop_recording_of_a_file_shorter_than_a_window_yields_nothing() -> None:
    windows = csv_windows(counting_csv(3), window_size=5, step_size=5, loop_recording=True)
    assert list(windows) == []


def test_max_windows_caps_a_plain_read() -> None:
    assert spans(csv_windows(counting_csv(10), window_size=2, step_size=2, max_windows=2)) == [
        (0, 2),
        (2, 2),
    ]
    assert list(csv_windows(counting_csv(10), window_size=2, step_size=2, max_windows=0)) == []


def test_non_numeric_columns_are_kept_but_not_read_as_data() -> None:
    data = b"time,label,ax,ay\n2024-01-01T00:00:00Z,idle,1,2\n2024-01-01T00:01:05Z,idle,3,4\n"
    table = parse_csv(data)
    assert table.columns == ["ax", "ay"]
    assert table.values == [[1.0, 3.0], [2.0, 4.0]]
    assert table.text["label"] == ["idle", "idle"]
    assert table.seconds == [0.0, 65.0]
    windows = list(csv_windows(data, window_size=1, step_size=1))
    assert [w.sensor_timestamp for w in windows] == ["00:00:00", "00:01:05"]


def test_sensor_timestamp_from_a_numeric_time_column_or_the_sample_rate() -> None:
    windows = csv_windows(counting_csv(14600), window_size=7300, step_size=7300)
    assert next(windows).sensor_timestamp == "00:00:00"
    assert next(windows).sensor_timestamp == "01:00:50"  # row 7300 at 0.5 s a row
    untimed = csv_windows(b"a\n" + b"1\n" * 400, window_size=150, step_size=150, sample_rate_hz=50)
    assert [w.sensor_timestamp for w in untimed] == ["00:00:00", "00:00:03"]


def test_data_columns_choose_and_order_the_columns() -> None:
    (window,) = csv_windows(counting_csv(2), window_size=2, step_size=2, data_columns=["y", "x"])
    assert window.columns == ["y", "x"]
    assert window.values == [[0.0, 2.0], [0.0, 1.0]]
    assert error_code(parse_csv, counting_csv(2), data_columns=["z"]) == "missing_parameter"
    text_column = b"ax,label\n1,a\n"
    assert error_code(parse_csv, text_column, data_columns=["label"]) == (
        "sensor_log_conversion_error"
    )


def test_csv_tolerates_a_bom_crlf_and_blank_lines() -> None:
    table = parse_csv(b"\xef\xbb\xbfax,ay\r\n1,2\r\n\r\n3,4\r\n")
    assert table.columns == ["ax", "ay"]
    assert table.total_rows == 2


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_sensor_log_error"),
        (b"  \n\n", "empty_sensor_log_error"),
        (b"ax,ay\n", "empty_sensor_log_error"),
        (b"ax,ay\n1,2\n3\n", "sensor_log_conversion_error"),
        (b"ax,ax\n1,2\n", "sensor_log_conversion_error"),
        (b"name\nfoo\n", "sensor_log_conversion_error"),
        (b"ax\n\xff\xfe\n", "sensor_log_conversion_error"),
        (b'ax\n"unterminated\n', "sensor_log_conversion_error"),
    ],
)
def test_unreadable_csv_is_refused_with_a_documented_code(data: bytes, code: str) -> None:
    assert error_code(csv_windows, data) == code


def test_readers_check_everything_before_the_first_window() -> None:
    # No next(): the errors come from the call itself.
    assert error_code(csv_windows, b"") == "empty_sensor_log_error"
    assert error_code(csv_windows, counting_csv(5), window_size=0) == "invalid_model_parameter"
    assert error_code(jsonl_windows, b"") == "empty_sensor_log_error"
    assert error_code(video_windows, b"") == "empty_sensor_log_error"


@pytest.mark.parametrize(
    ("parameters"),
    [
        {"window_size": 0},
        {"window_size": -1},
        {"step_size": 0},
        {"window_size": 2.5},
        {"window_size": True},
        {"window_size": "many"},
        {"max_windows": -1},
        {"max_windows": "3"},
        {"sample_rate_hz": 0.0},
    ],
)
def test_bad_window_parameters_are_invalid_model_parameter(parameters: dict[str, Any]) -> None:
    assert error_code(csv_windows, counting_csv(5), **parameters) == "invalid_model_parameter"


def test_jsonl_numeric_fields_become_columns() -> None:
    data = (
        b'{"ts": 10, "value": 1, "ok": true, "acc": {"x": 0.5, "y": 1}, "tag": "a"}\n'
        b"\n"
        b'{"ts": 12, "value": 3.5, "ok": false, "acc": {"x": 1.5, "y": 2}, "tag": "b"}\n'
    )
    table = parse_jsonl(data)
    assert table.columns == ["value", "acc.x", "acc.y"]
    assert table.values == [[1.0, 3.5], [0.5, 1.5], [1.0, 2.0]]
    assert table.text == {"tag": ["a", "b"]}
    assert table.seconds == [0.0, 2.0]
    windows = list(jsonl_windows(data))
    assert [(w.read_index, w.rows) for w in windows] == [(0, 1), (1, 1)]
    assert [w.sensor_timestamp for w in windows] == ["00:00:00", "00:00:02"]


def test_jsonl_field_missing_from_a_record_is_not_a_column() -> None:
    table = parse_jsonl(b'{"a": 1, "b": 2}\n{"a": 2}\n')
    assert table.columns == ["a"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_sensor_log_error"),
        (b"\n  \n", "empty_sensor_log_error"),
        (b'{"a": 1}\n{"a": \n', "sensor_log_conversion_error"),
        (b"[1, 2]\n", "sensor_log_conversion_error"),
        (b'{"name": "x"}\n', "sensor_log_conversion_error"),
    ],
)
def test_unreadable_jsonl_is_refused(data: bytes, code: str) -> None:
    assert error_code(parse_jsonl, data) == code


def test_video_is_read_as_pseudo_frames() -> None:
    data = bytes(range(256)) * 16 * 12 + b"tail"  # 12 frames of 4096 bytes plus a remainder
    windows = list(video_windows(data, window_size=5, step_size=5, fps=2.0))
    assert spans(windows) == [(0, 5), (5, 5), (10, 2)]
    assert windows[0].columns == ["frame_index", "mean_byte"]
    assert windows[2].values[0] == [10.0, 11.0]
    assert windows[1].total_rows == 12
    assert [w.sensor_timestamp for w in windows] == ["00:00:00", "00:00:02", "00:00:05"]
    assert windows[0].values[1][0] == pytest.approx(sum(range(0, 256, 16)) / 16)
    assert spans(video_windows(b"x", window_size=5, step_size=5)) == [(0, 1)]
    assert error_code(video_windows, data, fps=0) == "invalid_model_parameter"


# ---- processors --------------------------------------------------------------------------


def test_describe_window_gives_count_and_per_column_statistics() -> None:
    window = Window(0, 4, ["a", "b"], [[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]], 4)
    assert describe_window(window) == {
        "num_rows": 4,
        "statistics": {
            "a": {"min": 1.0, "max": 4.0, "mean": 2.5, "std": 1.118034},
            "b": {"min": 5.0, "max": 5.0, "mean": 5.0, "std": 0.0},
        },
    }


def test_nearest_centroid_recognises_its_own_examples() -> None:
    processor = TimeseriesStateProcessor(
        {state: [FILES[f]] for state, f in N_SHOT.items()}, window_size=100, step_size=100
    )
    assert processor.columns == ["ax", "ay", "az"]
    assert processor.states == ("IDLE", "NORMAL", "WARNING")
    for state, file_id in N_SHOT.items():
        for window in csv_windows(FILES[file_id], window_size=100, step_size=100):
            result = processor.classify(window)
            assert result.state == state
            assert result.distances[state] == min(result.distances.values())
            assert 0.9 < result.confidence <= 1.0


def test_classifier_reads_columns_by_name() -> None:
    processor = TimeseriesStateProcessor({s: [FILES[f]] for s, f in N_SHOT.items()})
    (window,) = csv_windows(
        FILES["sensor_warning.csv"], window_size=300, data_columns=["az", "ax", "ay"]
    )
    assert processor.classify(window).state == "WARNING"
    (partial,) = csv_windows(FILES["sensor_warning.csv"], window_size=300, data_columns=["ax"])
    assert error_code(processor.classify, partial) == "missing_parameter"


def test_classifier_needs_examples_for_every_state() -> None:
    assert error_code(TimeseriesStateProcessor, {}) == "missing_parameter"
    assert error_code(TimeseriesStateProcessor, {"IDLE": []}) == "missing_parameter"
    other_columns = {"IDLE": [FILES["sensor_idle.csv"]], "ODD": [counting_csv(5)]}
    assert error_code(TimeseriesStateProcessor, other_columns) == "missing_parameter"


def test_camera_captions_are_stable_emulated_and_from_the_vocabulary() -> None:
    data = bytes(i * 7 % 251 for i in range(FRAME_BYTES * 20))
    camera = CameraProcessor(data)
    windows = list(video_windows(data, window_size=5, step_size=5))
    described = [camera.describe(w) for w in windows]
    assert described == [CameraProcessor(data).describe(w) for w in windows]
    for window, item in zip(windows, described, strict=True):
        assert item["caption"].startswith("[emulated] ")
        assert item["caption"].removeprefix("[emulated] ") in CAMERA_CAPTIONS
        assert item["frame_range"] == [window.read_index, window.read_index + 4]
        assert item["emulated"] is True
    assert len({item["frame_digest"] for item in described}) == 4


# ---- runs --------------------------------------------------------------------------------


def test_demo_file_shows_idle_normal_warning_in_order() -> None:
    states = [r["state"] for r in results(demo_run())]
    assert states == DEMO_STATES


@pytest.mark.parametrize(("size", "step"), [(10, 10), (50, 25), (300, 300), (600, 600)])
def test_demo_regimes_are_found_at_other_window_sizes(size: int, step: int) -> None:
    states = [r["state"] for r in results(demo_run(window_size=size, step_size=step))]
    assert [state for state, _ in itertools.groupby(states)] == [
        "IDLE",
        "NORMAL",
        "WARNING",
        "NORMAL",
        "IDLE",
    ]


def test_n_shot_from_session_modify_a_keyword_or_lists_of_files() -> None:
    pipeline = [{"processor_name": "lens_timeseries_state_processor", "processor_config": {}}]
    modified = {
        "model_pipeline": pipeline,
        "model_parameters": {
            "input_n_shot": N_SHOT,
            "csv_configs": {"window_size": 100, "step_size": 100},
        },
    }
    stream = {"file_id": "sensor_demo.csv"}
    assert [r["state"] for r in results(LensRun(modified, "csv_file_reader", stream, FILES))] == (
        DEMO_STATES
    )
    bare = {"model_pipeline": pipeline}
    lists = {state: [file_id] for state, file_id in N_SHOT.items()}
    run = LensRun(
        bare, "csv_file_reader", {**stream, "window_size": 100}, FILES, input_n_shot=lists
    )
    assert [r["state"] for r in results(run)] == DEMO_STATES


def test_time_series_result_shape() -> None:
    result = results(demo_run())[7]
    assert result["response"] == ["NORMAL"] == [result["state"]]
    assert result["query_id"].startswith("qry-")
    assert isinstance(result["query_time_sec"], float)
    assert result["sensor_timestamp"] == "00:00:07"
    assert result["query_metadata"] == {
        "query_metadata": {
            "file_id": "sensor_demo.csv",
            "read_index": 700,
            "window_size": 100,
            "total_rows": 3000,
            "num_rows": 100,
        }
    }
    assert set(result["distances"]) == {"IDLE", "NORMAL", "WARNING"}
    assert 1 / 3 <= result["confidence"] <= 1.0


def test_run_events_are_bracketed_by_stream_start_and_end() -> None:
    events = list(demo_run(SENSOR_LOGS, window_size=500, step_size=500))
    kinds = [e["type"] for e in events]
    assert kinds == ["stream.start", "log.info"] + ["inference.result"] * 6 + ["stream.end"]
    assert events[0]["event_data"] == {
        "stream_type": "csv_file_reader",
        "file_id": "sensor_demo.csv",
        "processor_name": "lens_sensor_logs_processor",
        "window_size": 500,
        "step_size": 500,
        "total_rows": 3000,
        "columns": ["ax", "ay", "az"],
    }
    assert "sensor_demo.csv" in events[1]["event_data"]["message"]
    assert events[-1]["event_data"] == {
        "stream_type": "csv_file_reader",
        "file_id": "sensor_demo.csv",
        "num_windows": 6,
    }
    result = events[2]["event_data"]
    assert result["num_rows"] == 500
    assert set(result["statistics"]) == {"ax", "ay", "az"}
    assert set(result["statistics"]["ax"]) == {"min", "max", "mean", "std"}
    assert result["response"][0].startswith("500 rows; ax mean")
    assert len({e["event_data"]["query_id"] for e in events[2:-1]}) == 6


@pytest.mark.parametrize("processor", ["lens_noop_processor", "some_future_processor"])
def test_other_processors_describe_their_windows(processor: str) -> None:
    config = {"model_pipeline": [{"processor_name": processor}]}
    (result, *_) = results(demo_run(config))
    assert result["statistics"]["az"]["mean"] == pytest.approx(1.0, abs=0.01)


def test_runs_are_deterministic_and_json_encodable() -> None:
    first = list(demo_run(window_size=50, step_size=50))
    assert first == list(demo_run(window_size=50, step_size=50))
    run = demo_run(SENSOR_LOGS)
    assert list(run) == list(run)  # a run can be iterated again, from the start
    assert msgspec.json.decode(msgspec.json.encode(first)) == first


def test_looping_run_logs_each_restart_and_stops_at_max_windows() -> None:
    events = list(
        demo_run(SENSOR_LOGS, window_size=1000, step_size=1000, loop_recording=True, max_windows=7)
    )
    kinds = [e["type"] for e in events]
    assert kinds.count("inference.result") == 7
    assert kinds.count("log.info") == 1 + 2  # the start, then passes 2 and 3
    assert events[-1]["event_data"]["num_windows"] == 7
    found = [e["event_data"] for e in events if e["type"] == "inference.result"]
    indices = [r["query_metadata"]["query_metadata"]["read_index"] for r in found]
    assert indices == [0, 1000, 2000, 0, 1000, 2000, 0]
    assert len({r["query_id"] for r in found}) == 7


def test_endless_loop_run_is_lazy() -> None:
    run = demo_run(SENSOR_LOGS, window_size=10, loop_recording="true")
    assert len(list(itertools.islice(run, 5000))) == 5000


def test_file_shorter_than_a_window_logs_and_ends() -> None:
    files = {"short.csv": counting_csv(5)}
    events = list(
        LensRun(SENSOR_LOGS, "csv_file_reader", {"file_id": "short.csv", "window_size": 10}, files)
    )
    assert [e["type"] for e in events] == ["stream.start", "log.info", "log.info", "stream.end"]
    assert events[-1]["event_data"]["num_windows"] == 0
    kept = LensRun(
        SENSOR_LOGS,
        "csv_file_reader",
        {"file_id": "short.csv", "window_size": 10, "cut_off_incomplete_window": False},
        files,
    )
    assert [r["num_rows"] for r in results(kept)] == [5]


def test_parameters_come_from_the_stream_over_the_lens() -> None:
    config = {
        "model_pipeline": [
            {"processor_name": "lens_sensor_logs_processor", "processor_config": {"window_size": 7}}
        ],
        "model_parameters": {"window_size": 1000, "step_size": 1000},
    }
    assert len(results(demo_run(config, window_size=None, step_size=None))) == 3
    assert len(results(demo_run(config, window_size=1500, step_size=None))) == 2
    config["model_parameters"] = {"sensor_buffer_size": 600}
    assert len(results(demo_run(config, window_size=None, step_size=None))) == 5


def test_jsonl_run_uses_sensor_buffer_size() -> None:
    log = b"".join(b'{"t": %d, "value": %d}\n' % (i, i) for i in range(6))
    files = {"log.jsonl": log}
    one = results(LensRun(SENSOR_LOGS, "jsonl_file_reader", {"file_id": "log.jsonl"}, files))
    assert [r["statistics"]["value"]["mean"] for r in one] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    config = {
        "model_pipeline": SENSOR_LOGS["model_pipeline"],
        "model_parameters": {"sensor_buffer_size": 3},
    }
    three = results(LensRun(config, "jsonl_file_reader", {"file_id": "log.jsonl"}, files))
    assert [r["statistics"]["value"]["mean"] for r in three] == [1.0, 4.0]
    assert [r["sensor_timestamp"] for r in three] == ["00:00:00", "00:00:03"]


def test_video_run_emits_a_processed_frame_before_each_caption() -> None:
    files = {"clip.mp4": bytes(i % 253 for i in range(FRAME_BYTES * 12))}
    config = {
        "model_pipeline": CAMERA["model_pipeline"],
        "model_parameters": {"camera_buffer_size": 5, "camera_buffer_step_size": 5},
    }
    events = list(LensRun(config, "video_file_reader", {"file_id": "clip.mp4"}, files))
    kinds = [e["type"] for e in events]
    assert kinds == (
        ["stream.start", "log.info"] + ["frame.processed", "inference.result"] * 3 + ["stream.end"]
    )
    frames = [e["event_data"] for e in events if e["type"] == "frame.processed"]
    assert [(f["frame_index"], f["num_frames"]) for f in frames] == [(0, 5), (5, 5), (10, 2)]
    captions = [e["event_data"] for e in events if e["type"] == "inference.result"]
    assert all(c["response"][0].startswith("[emulated] ") for c in captions)
    assert captions[1]["sensor_timestamp"] == "00:00:00"  # frame 5 at 30 fps
    assert captions[2]["query_metadata"]["query_metadata"]["total_rows"] == 12
    noop = results(LensRun(SENSOR_LOGS, "video_file_reader", {"file_id": "clip.mp4"}, files))
    assert set(noop[0]["statistics"]) == {"frame_index", "mean_byte"}


@pytest.mark.parametrize(
    ("lens_config", "stream_type", "stream_config", "code"),
    [
        (SENSOR_LOGS, "csv_file_reader", {"file_id": "missing.csv"}, "upload_not_found"),
        (SENSOR_LOGS, "csv_file_reader", {}, "missing_parameter"),
        (SENSOR_LOGS, "kafka_reader", {"file_id": "sensor_demo.csv"}, "invalid_stream_type"),
        (SENSOR_LOGS, "rtsp_video_streamer", {"file_id": "sensor_demo.csv"}, "missing_parameter"),
        (CAMERA, "rtsp_video_streamer", {"rtsp_url": "http://cam/x"}, "invalid_model_parameter"),
        (
            CAMERA,
            "rtsp_video_streamer",
            {"rtsp_url": "rtsp://cam/x", "target_image_size": [360]},
            "invalid_model_parameter",
        ),
        (
            CAMERA,
            "rtsp_video_reader",
            {"rtsp_url": "rtsp://cam/x", "target_frame_rate_hz": 0},
            "invalid_model_parameter",
        ),
        (TIMESERIES, "video_file_reader", {"file_id": "clip.mp4"}, "invalid_stream_type"),
        (SENSOR_LOGS, "csv_file_reader", {"file_id": "empty.csv"}, "empty_sensor_log_error"),
        (SENSOR_LOGS, "video_file_reader", {"file_id": "empty.csv"}, "empty_sensor_log_error"),
        (SENSOR_LOGS, "csv_file_reader", {"file_id": "bad.csv"}, "sensor_log_conversion_error"),
        (
            SENSOR_LOGS,
            "csv_file_reader",
            {"file_id": "sensor_demo.csv", "window_size": 0},
            "invalid_model_parameter",
        ),
        (
            SENSOR_LOGS,
            "csv_file_reader",
            {"file_id": "sensor_demo.csv", "step_size": -5},
            "invalid_model_parameter",
        ),
        (
            SENSOR_LOGS,
            "csv_file_reader",
            {"file_id": "sensor_demo.csv", "loop_recording": "sometimes"},
            "invalid_model_parameter",
        ),
        (
            SENSOR_LOGS,
            "csv_file_reader",
            {"file_id": "sensor_demo.csv", "data_columns": ["nope"]},
            "missing_parameter",
        ),
        (
            CAMERA,
            "video_file_reader",
            {"file_id": "clip.mp4", "input_frame_step_size": 0},
            "invalid_model_parameter",
        ),
        (
            {"model_pipeline": [{"processor_name": "lens_timeseries_state_processor"}]},
            "csv_file_reader",
            {"file_id": "sensor_demo.csv"},
            "missing_parameter",
        ),
        (
            {
                "model_pipeline": [
                    {
                        "processor_name": "lens_timeseries_state_processor",
                        "processor_config": {"input_n_shot": {"IDLE": "gone.csv"}},
                    }
                ]
            },
            "csv_file_reader",
            {"file_id": "sensor_demo.csv"},
            "upload_not_found",
        ),
    ],
)
def test_runs_that_cannot_start_fail_at_construction(
    lens_config: dict[str, Any], stream_type: str, stream_config: dict[str, Any], code: str
) -> None:
    files = {**FILES, "empty.csv": b"", "bad.csv": b"a,b\n1\n", "clip.mp4": b"\0" * 9000}
    assert error_code(LensRun, lens_config, stream_type, stream_config, files) == code


def test_unknown_stream_type_is_named_in_the_error_not_a_missing_file_id() -> None:
    with pytest.raises(LensEngineError) as err:
        LensRun(SENSOR_LOGS, "kafka_reader", {}, FILES)
    assert err.value.code == "invalid_stream_type" and "kafka_reader" in err.value.message


@pytest.mark.parametrize("stream_type", ["rtsp_video_streamer", "rtsp_video_reader"])
def test_rtsp_streams_read_a_synthetic_recording(stream_type: str) -> None:
    config = {
        "rtsp_url": "rtsp://camera.example.com:554/stream",
        "target_image_size": [360, 640],
        "target_frame_rate_hz": 0.2,
    }
    events = list(LensRun(CAMERA, stream_type, config, {}))
    assert events[0]["type"] == "stream.start"
    assert events[0]["event_data"]["stream_type"] == stream_type
    captions = [e for e in events if e["type"] == "inference.result"]
    assert len(captions) == 60 // 5
    assert all(c["event_data"]["response"][0].startswith("[emulated] ") for c in captions)
    assert events == list(LensRun(CAMERA, stream_type, config, {}))  # deterministic


def test_sensor_streamer_reads_synthetic_channels() -> None:
    events = list(LensRun(SENSOR_LOGS, "sensor_streamer", {"sensor_id": "s1"}, {}))
    results = [e["event_data"] for e in events if e["type"] == "inference.result"]
    assert len(results) == 4096 // 1024
    assert set(results[0]["statistics"]) == {"accel_x", "accel_y", "accel_z"}
    other = list(LensRun(SENSOR_LOGS, "sensor_streamer", {"sensor_id": "s2"}, {}))
    assert other != events


def test_engine_error_carries_code_and_message_and_pickles() -> None:
    error = LensEngineError("invalid_model_parameter", "window_size must be > 0")
    assert str(error) == error.message == "window_size must be > 0"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message) == (error.code, error.message)


def test_bundled_samples_are_what_the_generator_writes(tmp_path: Path) -> None:
    _make_samples.main(tmp_path)
    for name in SAMPLES:
        assert (tmp_path / name).read_bytes() == FILES[name], name
    assert sum(len(FILES[name]) for name in SAMPLES) < 200_000
