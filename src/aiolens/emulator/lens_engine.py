"""What the emulated lenses compute: pure, deterministic, no I/O, no asyncio.

A :class:`LensRun` turns a session's lens configuration, its input stream and
the uploaded files into the lazy sequence of events the session emits
(docs/protocol-notes.md, "Input streams" and "Lens events"). The server wraps
it, paces it and routes the events; this module only computes them. Nothing
here depends on wall-clock time or on hash randomisation, so two runs over the
same inputs yield equal events.

Readers (each parses eagerly, so a bad file fails at once, then yields lazily):

* :func:`csv_windows` / :func:`jsonl_windows`: windows of ``window_size`` rows
  every ``step_size`` rows over the numeric columns of a CSV file or of a
  JSON-lines file. A time column (``timestamp``, ``time``, ``t``, ``ts``,
  ``datetime``, ``date``) is kept out of the statistics and gives each window
  its ``sensor_timestamp``.
* :func:`video_windows`: **emulator simplification**: mp4 is not decoded (that
  would need a codec dependency). The file is read as a sequence of
  pseudo-frames of :data:`FRAME_BYTES` bytes (at least one frame; the last one
  takes the remainder) at ``fps`` frames per second. Each frame's only feature
  is the mean value of a sample of its bytes.

Processors (``model_pipeline[0].processor_name``):

* ``lens_timeseries_state_processor``: :class:`TimeseriesStateProcessor`,
  nearest centroid over standardised window features (per-column mean and
  standard deviation) learnt from the ``input_n_shot`` example files.
* ``lens_camera_processor`` on a video stream: :class:`CameraProcessor`, a
  stable caption chosen by a hash of the window's bytes, labelled ``[emulated]``.
* anything else (``lens_sensor_logs_processor``, ``lens_noop_processor``,
  unknown names): :func:`describe_window`, the window's row count and
  per-column min / max / mean / standard deviation.

Events of a run, in order: ``stream.start``; one ``log.info`` describing the
stream; per window a ``frame.processed`` (video streams only) and an
``inference.result``; a ``log.info`` each time a looping recording restarts;
``stream.end``. ``query_time_sec`` is a modelled latency (a function of the
window's size), not a measurement, so that runs stay deterministic.

Every configuration the lens cannot run raises :class:`LensEngineError` with a
documented error code when the :class:`LensRun` is built, never while it is
iterated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from aiolens.emulator.lens_processors import (
    CAMERA_CAPTIONS,
    CameraProcessor,
    StateResult,
    TimeseriesStateProcessor,
    describe_window,
)
from aiolens.emulator.lens_readers import (
    _VIDEO_READER,
    DEFAULT_SAMPLE_RATE_HZ,
    FRAME_BYTES,
    TIME_COLUMNS,
    LensEngineError,
    SensorTable,
    Window,
    _check_max_windows,
    _empty,
    _positive,
    csv_windows,
    jsonl_windows,
    parse_csv,
    parse_jsonl,
    table_windows,
)
from aiolens.emulator.lens_synthetic import LIVE_STREAMS, synthetic_source
from aiolens.emulator.lens_video import _frame_count, video_windows

__all__ = [
    "CAMERA_CAPTIONS",
    "DEFAULT_SAMPLE_RATE_HZ",
    "FRAME_BYTES",
    "TIME_COLUMNS",
    "CameraProcessor",
    "LensEngineError",
    "LensRun",
    "SensorTable",
    "StateResult",
    "TimeseriesStateProcessor",
    "Window",
    "csv_windows",
    "describe_window",
    "jsonl_windows",
    "parse_csv",
    "parse_jsonl",
    "table_windows",
    "video_windows",
]

_TIMESERIES: Final = "lens_timeseries_state_processor"
_CAMERA: Final = "lens_camera_processor"
_SENSOR_READERS: Final = ("csv_file_reader", "jsonl_file_reader")


# ---- runs --------------------------------------------------------------------------------


class _Params:
    """Lens parameters from several sources; a later source wins, ``None`` means unset."""

    __slots__ = ("_sources",)

    def __init__(self, *sources: object) -> None:
        self._sources = [s for s in reversed(sources) if isinstance(s, Mapping)]

    def first(self, names: Sequence[str], default: Any = None) -> tuple[str, Any]:
        """The first of ``names`` set in the latest source that sets any, and its value."""
        for source in self._sources:
            for name in names:
                if source.get(name) is not None:
                    return name, source[name]
        return names[0], default

    def get(self, name: str, default: Any = None) -> Any:
        return self.first((name,), default)[1]

    def flag(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise LensEngineError("invalid_model_parameter", f"{name} must be a boolean: {value!r}")


def _n_shot_files(n_shot: object) -> dict[str, list[str]]:
    if not isinstance(n_shot, Mapping) or not n_shot:
        raise LensEngineError("missing_parameter", "Failed to find key: input_n_shot")
    out: dict[str, list[str]] = {}
    for state, ids in n_shot.items():
        listed = [ids] if isinstance(ids, str) else ids
        if not isinstance(listed, list | tuple) or not all(isinstance(i, str) for i in listed):
            raise LensEngineError(
                "invalid_model_parameter",
                f"input_n_shot[{state!r}] must be a file_id or a list of file_ids",
            )
        out[str(state)] = list(listed)
    return out


def _query_time(rows: int, columns: int, video: bool) -> float:
    """Modelled (not measured) inference latency of one window."""
    if video:
        return round(0.8 + 0.05 * rows, 6)
    return round(0.002 + 2e-6 * rows * max(1, columns), 6)


class LensRun:
    """The events one input stream of a session produces.

    Built from the session's ``lens_config`` (docs/protocol-notes.md, "Input streams"), the
    ``input_stream.set`` payload and the uploaded files. Everything
    that can fail is checked here; iterating never raises. Iterating is lazy
    (one window is read per ``inference.result``) and may be repeated: every
    iteration yields the same events. Running forever is possible:
    ``loop_recording`` without ``max_windows`` never ends.

    Parameters are looked up, later sources winning, in: the first pipeline
    step's ``processor_config``; ``model_parameters`` (where ``session.modify``
    stores its fields); ``model_parameters["csv_configs"]``;
    ``lens_config["csv_configs"]``; ``stream_config``. Names read:
    ``window_size`` (aliases ``sensor_buffer_size``, and ``camera_buffer_size``
    for video), ``step_size`` (aliases ``camera_buffer_step_size``,
    ``input_frame_step_size``), ``cut_off_incomplete_window``,
    ``loop_recording``, ``data_columns``, ``input_n_shot``, ``max_windows``
    (emulator extension), ``fps`` (emulator extension, video).

    Args:
        lens_config: the session's lens configuration.
        stream_type: ``csv_file_reader``, ``jsonl_file_reader`` or
            ``video_file_reader``.
        stream_config: the stream's configuration; ``file_id`` names the file.
        files: the uploaded files' bytes by ``file_id``.
        input_n_shot: state → example ``file_id`` (or list of them); overrides
            the one in the parameters.
        max_windows: stop after this many windows; overrides the parameters.
        sample_rate_hz: rows per second for ``sensor_timestamp`` when a sensor
            file has no time column.

    Raises:
        LensEngineError: ``missing_parameter`` (no ``file_id``, no
            ``input_n_shot`` for a time-series lens, a missing column),
            ``upload_not_found`` (unknown file or example file),
            ``invalid_stream_type`` (a stream the processor or the emulator
            cannot read), ``invalid_model_parameter`` (window size or step
            ≤ 0 or not an integer, a bad flag), ``empty_sensor_log_error``,
            ``sensor_log_conversion_error``.
    """

    def __init__(
        self,
        lens_config: Mapping[str, Any],
        stream_type: str,
        stream_config: Mapping[str, Any],
        files: Mapping[str, bytes],
        *,
        input_n_shot: Mapping[str, str | Sequence[str]] | None = None,
        max_windows: int | None = None,
        sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
    ) -> None:
        pipeline = lens_config.get("model_pipeline")
        if not isinstance(pipeline, list | tuple):
            pipeline = []
        step = next((p for p in pipeline if isinstance(p, Mapping) and p.get("processor_name")), {})
        self.processor_name: str = str(step.get("processor_name") or "lens_noop_processor")
        """The processor that computes the results."""
        model_parameters = lens_config.get("model_parameters")
        params = _Params(
            step.get("processor_config"),
            model_parameters,
            model_parameters.get("csv_configs") if isinstance(model_parameters, Mapping) else None,
            lens_config.get("csv_configs"),
            stream_config,
            {"input_n_shot": input_n_shot, "max_windows": max_windows},
        )
        max_windows = params.get("max_windows")
        _check_max_windows(max_windows)

        if stream_type not in (*_SENSOR_READERS, _VIDEO_READER, *LIVE_STREAMS):
            raise LensEngineError(
                "invalid_stream_type",
                f"Unsupported input stream for the emulator: {stream_type!r}"
                f" (use {', '.join((*_SENSOR_READERS, _VIDEO_READER, *LIVE_STREAMS))})",
            )
        source_type = stream_type
        if stream_type in LIVE_STREAMS:
            # Live sources have no uploaded file: read a synthetic recording instead.
            stream_type, synthetic_id, synthetic = synthetic_source(stream_type, stream_config)
            files = {**files, synthetic_id: synthetic}
            stream_config = {**stream_config, "file_id": synthetic_id}
        file_id = stream_config.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise LensEngineError("missing_parameter", "Failed to find key: file_id")
        if file_id not in files:
            raise LensEngineError("upload_not_found", f"File not found: {file_id}")
        self.file_id: str = file_id
        self.stream_type: str = source_type
        data = files[file_id]
        video = stream_type == _VIDEO_READER
        if video and self.processor_name == _TIMESERIES:
            raise LensEngineError(
                "invalid_stream_type", f"{_TIMESERIES} reads csv_file_reader or jsonl_file_reader"
            )

        if video:
            size_names: tuple[str, ...] = ("window_size", "camera_buffer_size")
            step_names: tuple[str, ...] = (
                "step_size",
                "camera_buffer_step_size",
                "input_frame_step_size",
            )
            default_size = 5
        else:
            size_names, step_names = ("window_size", "sensor_buffer_size"), ("step_size",)
            default_size = 1 if stream_type == "jsonl_file_reader" else 1024
        self.window_size: int = _positive(*params.first(size_names, default_size))
        """Rows (frames) per window."""
        self.step_size: int = _positive(*params.first(step_names, self.window_size))
        """Rows (frames) between the starts of consecutive windows."""
        cut_off = params.flag("cut_off_incomplete_window", not video)
        self.loop_recording: bool = params.flag("loop_recording", False)
        """Whether the recording restarts after its last window."""
        data_columns = params.get("data_columns") or None
        if data_columns is not None and (
            not isinstance(data_columns, list | tuple)
            or not all(isinstance(c, str) for c in data_columns)
        ):
            raise LensEngineError(
                "invalid_model_parameter", f"data_columns must be a list of names: {data_columns!r}"
            )

        self._classifier: TimeseriesStateProcessor | None = None
        self._camera: CameraProcessor | None = None
        self._table: SensorTable | None = None
        self._data = data
        self._max_windows = max_windows
        self._cut_off = cut_off
        self._fps = 30.0
        parse = parse_jsonl if stream_type == "jsonl_file_reader" else parse_csv
        if self.processor_name == _TIMESERIES:
            n_shot = _n_shot_files(params.get("input_n_shot"))
            for ids in n_shot.values():
                for example in ids:
                    if example not in files:
                        raise LensEngineError("upload_not_found", f"File not found: {example}")
            self._classifier = TimeseriesStateProcessor(
                {state: [files[i] for i in ids] for state, ids in n_shot.items()},
                data_columns=data_columns,
                window_size=self.window_size,
                step_size=self.step_size,
                example_format="jsonl" if stream_type == "jsonl_file_reader" else "csv",
            )
            data_columns = self._classifier.columns
        if video:
            fps = params.get("fps", 30.0)
            if isinstance(fps, bool) or not isinstance(fps, int | float) or not fps > 0:
                raise LensEngineError("invalid_model_parameter", f"fps must be > 0: {fps!r}")
            self._fps = float(fps)
            if not data:
                raise _empty("video file")
            self.total_rows: int = _frame_count(data, FRAME_BYTES)
            """Rows (frames, for video) in the file."""
            self.columns: list[str] = ["frame_index", "mean_byte"]
            """The data columns of each window."""
            if self.processor_name == _CAMERA:
                self._camera = CameraProcessor(data)
        else:
            self._table = parse(data, data_columns=data_columns)
            self.total_rows = self._table.total_rows
            self.columns = self._table.columns
        self._sample_rate = sample_rate_hz
        self.windows()  # checks the remaining parameters now, not during iteration
        key = f"{file_id}|{stream_type}|{self.processor_name}|{self.window_size}|{self.step_size}"
        self._query_prefix = hashlib.blake2b(key.encode(), digest_size=6).hexdigest()

    def windows(self) -> Iterator[Window]:
        """A fresh iterator over the stream's windows."""
        if self._table is None:
            return video_windows(
                self._data,
                window_size=self.window_size,
                step_size=self.step_size,
                fps=self._fps,
                cut_off_incomplete_window=self._cut_off,
                loop_recording=self.loop_recording,
                max_windows=self._max_windows,
                file_id=self.file_id,
            )
        return table_windows(
            self._table,
            window_size=self.window_size,
            step_size=self.step_size,
            cut_off_incomplete_window=self._cut_off,
            loop_recording=self.loop_recording,
            max_windows=self._max_windows,
            file_id=self.file_id,
            sample_rate_hz=self._sample_rate,
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.events()

    def events(self) -> Iterator[dict[str, Any]]:
        """A fresh, lazy iterator over the run's events.

        Shapes (``event_data`` keys):

        * ``stream.start``: ``stream_type``, ``file_id``, ``processor_name``,
          ``window_size``, ``step_size``, ``total_rows``, ``columns``.
        * ``log.info``: ``message`` (once after ``stream.start``, and when a
          looping recording restarts or no window fits in the file).
        * ``frame.processed`` (video only, before each result): ``file_id``,
          ``frame_index``, ``num_frames``, ``sensor_timestamp``.
        * ``inference.result``: ``response`` (a one-string list), ``query_id``,
          ``query_time_sec``, ``sensor_timestamp``, ``query_metadata``
          (``{"query_metadata": {file_id, read_index, window_size, total_rows,
          num_rows}}``), plus per processor: time series ``state``,
          ``distances``, ``confidence``; camera ``caption``, ``frame_range``,
          ``num_frames``, ``frame_digest``, ``emulated``; others ``num_rows``,
          ``statistics``.
        * ``stream.end``: ``stream_type``, ``file_id``, ``num_windows``.
        """
        unit = "frames" if self._table is None else "rows"
        yield {
            "type": "stream.start",
            "event_data": {
                "stream_type": self.stream_type,
                "file_id": self.file_id,
                "processor_name": self.processor_name,
                "window_size": self.window_size,
                "step_size": self.step_size,
                "total_rows": self.total_rows,
                "columns": list(self.columns),
            },
        }
        yield self._log(
            f"{self.stream_type}: reading {self.file_id} ({self.total_rows} {unit}; columns "
            f"{', '.join(self.columns)}) in windows of {self.window_size} every "
            f"{self.step_size} with {self.processor_name}"
            + (" (looping)" if self.loop_recording else "")
        )
        count = 0
        passes = 0
        for window in self.windows():
            if window.loop != passes:
                passes = window.loop
                yield self._log(f"looping {self.file_id} from the start (pass {passes + 1})")
            if self._table is None:
                yield {
                    "type": "frame.processed",
                    "event_data": {
                        "file_id": self.file_id,
                        "frame_index": window.read_index,
                        "num_frames": window.rows,
                        "sensor_timestamp": window.sensor_timestamp,
                    },
                }
            yield {"type": "inference.result", "event_data": self._result(window)}
            count += 1
        if count == 0:
            yield self._log(
                f"{self.file_id} has {self.total_rows} {unit}, fewer than one complete window "
                f"of {self.window_size}: no results"
            )
        yield {
            "type": "stream.end",
            "event_data": {
                "stream_type": self.stream_type,
                "file_id": self.file_id,
                "num_windows": count,
            },
        }

    @staticmethod
    def _log(message: str) -> dict[str, Any]:
        return {"type": "log.info", "event_data": {"message": message}}

    def _result(self, window: Window) -> dict[str, Any]:
        data: dict[str, Any] = {
            "response": None,
            "query_id": f"qry-{self._query_prefix}-{window.index:08d}",
            "query_time_sec": _query_time(
                window.rows, len(window.columns), video=self._table is None
            ),
            "sensor_timestamp": window.sensor_timestamp,
            "query_metadata": {
                "query_metadata": {
                    "file_id": self.file_id,
                    "read_index": window.read_index,
                    "window_size": self.window_size,
                    "total_rows": window.total_rows,
                    "num_rows": window.rows,
                }
            },
        }
        if self._classifier is not None:
            result = self._classifier.classify(window)
            data["response"] = [result.state]
            data["state"] = result.state
            data["distances"] = {k: round(v, 4) for k, v in result.distances.items()}
            data["confidence"] = round(result.confidence, 4)
        elif self._camera is not None:
            described = self._camera.describe(window)
            data["response"] = [described["caption"]]
            data.update(described)
        else:
            described = describe_window(window)
            stats = described["statistics"]
            data["response"] = [
                f"{window.rows} {'frames' if self._table is None else 'rows'}; "
                + "; ".join(
                    f"{name} mean {s['mean']:.4g} std {s['std']:.4g}" for name, s in stats.items()
                )
            ]
            data.update(described)
        return data
