"""What the emulated lenses compute (pure, deterministic, no I/O).

A :class:`LensRun` turns a session's lens configuration, its input stream and
the uploaded files into the lazy sequence of events the session emits:

* ``csv_file_reader`` / ``jsonl_file_reader``: windows of ``window_size`` rows
  every ``step_size`` rows (numeric columns; ``timestamp``/``time`` columns are
  kept out of the statistics);
* ``lens_timeseries_state_processor``: each window is classified by nearest
  centroid against the ``input_n_shot`` example files (features: per-column
  mean and standard deviation, standardised);
* other processors describe the window (row count, per-column statistics);
* ``video_file_reader``: mp4 is not decoded (no codec dependency); the file is
  read as pseudo-frames of 4 KiB at 30 fps and each window gets a deterministic
  emulated caption. This is an emulator simplification.

Events: ``stream.start``, one ``log.info``, one ``inference.result`` per
window (``frame.processed`` per video window), ``stream.end``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = ["LensEngineError", "LensRun", "Window", "csv_table", "windows"]

_TIME_COLUMNS = frozenset({"timestamp", "time", "t", "ts"})
_CAPTIONS = (
    "A person walking across the room.",
    "A worker operating a machine.",
    "A forklift moving pallets.",
    "An empty corridor.",
    "Two people talking near a desk.",
)
_FRAME_BYTES = 4096


class LensEngineError(Exception):
    """A configuration the lens cannot run; ``code`` is the documented error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Window:
    """One window of rows: ``values[c]`` is column ``columns[c]``."""

    read_index: int
    columns: list[str]
    values: list[list[float]]
    rows: int


def csv_table(
    data: bytes, data_columns: list[str] | None = None
) -> tuple[list[str], list[list[float]]]:
    """Numeric columns of a CSV (column-major); raises :class:`LensEngineError` if none."""
    reader = csv.reader(io.StringIO(data.decode("utf-8", "replace")))
    header = next(reader, None)
    if not header:
        raise LensEngineError("empty_sensor_log_error", "The CSV file is empty")
    body = [row for row in reader if row]
    if not body:
        raise LensEngineError("empty_sensor_log_error", "The CSV file has no rows")
    wanted = data_columns or [h for h in header if h.strip().lower() not in _TIME_COLUMNS]
    columns, values = [], []
    for name in wanted:
        if name not in header:
            raise LensEngineError("missing_parameter", f"Failed to find key: {name}")
        index = header.index(name)
        try:
            values.append([float(row[index]) for row in body])
        except (ValueError, IndexError):
            continue  # a non-numeric column
        columns.append(name)
    if not columns:
        raise LensEngineError("sensor_log_conversion_error", "The CSV file has no numeric column")
    return columns, values


def jsonl_table(data: bytes) -> tuple[list[str], list[list[float]]]:
    """Numeric fields of a JSON-lines file (column-major)."""
    records = [msgspec.json.decode(line) for line in data.splitlines() if line.strip()]
    if not records:
        raise LensEngineError("empty_sensor_log_error", "The sensor log is empty")
    columns = sorted(
        {
            k
            for r in records
            if isinstance(r, dict)
            for k, v in r.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in _TIME_COLUMNS
        }
    )
    if not columns:
        raise LensEngineError("sensor_log_conversion_error", "No numeric fields in the log")
    return columns, [[float(r.get(c, 0.0)) for r in records] for c in columns]


def windows(
    columns: list[str],
    values: list[list[float]],
    *,
    window_size: int,
    step_size: int,
    cut_off_incomplete_window: bool = True,
) -> Iterator[Window]:
    """Windows of ``window_size`` rows every ``step_size`` rows."""
    if window_size <= 0 or step_size <= 0:
        raise LensEngineError(
            "invalid_model_parameter", "window_size and step_size must be positive"
        )
    total = len(values[0])
    start = 0
    while start < total:
        end = start + window_size
        if end > total and cut_off_incomplete_window:
            return
        yield Window(start, columns, [col[start:end] for col in values], min(end, total) - start)
        start += step_size


def _features(values: list[list[float]]) -> list[float]:
    out = []
    for col in values:
        n = len(col)
        mean = sum(col) / n
        out.append(mean)
        out.append(math.sqrt(sum((x - mean) ** 2 for x in col) / n))
    return out


class _Classifier:
    """Nearest centroid over standardised mean/std features."""

    def __init__(self, examples: Mapping[str, bytes], columns: list[str]) -> None:
        if not examples:
            raise LensEngineError("missing_parameter", "Failed to find key: input_n_shot")
        self.centroids = {
            state: _features(csv_table(data, columns)[1]) for state, data in examples.items()
        }
        dims = len(next(iter(self.centroids.values())))
        spread = []
        for d in range(dims):
            vals = [c[d] for c in self.centroids.values()]
            mean = sum(vals) / len(vals)
            spread.append(max(math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals)), 0.05))
        self.scale = spread

    def classify(self, window: Window) -> tuple[str, dict[str, float]]:
        feats = _features(window.values)
        distances = {
            state: math.sqrt(
                sum(((f - c) / s) ** 2 for f, c, s in zip(feats, centroid, self.scale, strict=True))
            )
            for state, centroid in self.centroids.items()
        }
        return min(distances, key=distances.__getitem__), distances


def _describe(window: Window) -> dict[str, Any]:
    stats = {}
    for name, col in zip(window.columns, window.values, strict=True):
        n = len(col)
        mean = sum(col) / n
        std = math.sqrt(sum((x - mean) ** 2 for x in col) / n)
        stats[name] = {
            "min": min(col),
            "max": max(col),
            "mean": round(mean, 6),
            "std": round(std, 6),
        }
    return stats


def _hhmmss(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class LensRun:
    """The events one input stream produces in a session (an iterator).

    Args:
        lens_config: the session's lens configuration (pipeline, parameters).
        stream_type: the input stream type.
        stream_config: its ``stream_config``.
        files: uploaded files by ``file_id``.

    Raises:
        LensEngineError: an unknown file, an unsupported stream, bad window
            parameters, an unreadable file, missing n-shot examples.
    """

    def __init__(
        self,
        lens_config: Mapping[str, Any],
        stream_type: str,
        stream_config: Mapping[str, Any],
        files: Mapping[str, bytes],
    ) -> None:
        pipeline = lens_config.get("model_pipeline") or [{}]
        step = pipeline[0] if isinstance(pipeline[0], dict) else {}
        self.processor = str(step.get("processor_name") or "lens_noop_processor")
        params: dict[str, Any] = {}
        params.update(lens_config.get("model_parameters") or {})
        params.update(step.get("processor_config") or {})
        params.update(lens_config.get("csv_configs") or {})
        params.update({k: v for k, v in stream_config.items() if k != "file_id"})
        file_id = stream_config.get("file_id")
        if not file_id or file_id not in files:
            raise LensEngineError("upload_not_found", f"File not found: {file_id}")
        self.file_id = str(file_id)
        self.stream_type = stream_type
        data = files[self.file_id]
        self._query_prefix = hashlib.sha256(self.file_id.encode()).hexdigest()[:10]
        self._classifier: _Classifier | None = None
        if stream_type == "video_file_reader":
            frames = max(1, len(data) // _FRAME_BYTES)
            size = int(params.get("window_size", params.get("camera_buffer_size", 5)))
            step_size = int(params.get("step_size", params.get("camera_buffer_step_size", size)))
            self._digest = hashlib.sha256(data).digest()
            self._windows: Iterator[Window] = windows(
                ["frame"],
                [[float(i) for i in range(frames)]],
                window_size=size,
                step_size=step_size,
                cut_off_incomplete_window=False,
            )
            self.total_rows = frames
            return
        if stream_type == "csv_file_reader":
            columns, values = csv_table(data, params.get("data_columns"))
        elif stream_type == "jsonl_file_reader":
            columns, values = jsonl_table(data)
        else:
            raise LensEngineError("invalid_stream_type", f"Unsupported input stream: {stream_type}")
        default = 1 if stream_type == "jsonl_file_reader" else 1024
        size = int(params.get("window_size", params.get("sensor_buffer_size", default)))
        step_size = int(params.get("step_size", size))
        self.total_rows = len(values[0])
        self._windows = windows(
            columns,
            values,
            window_size=size,
            step_size=step_size,
            cut_off_incomplete_window=bool(params.get("cut_off_incomplete_window", True)),
        )
        self.window_size = size
        if self.processor == "lens_timeseries_state_processor":
            n_shot = params.get("input_n_shot") or {}
            missing = [f for f in n_shot.values() if f not in files]
            if missing:
                raise LensEngineError("upload_not_found", f"File not found: {missing[0]}")
            self._classifier = _Classifier({s: files[f] for s, f in n_shot.items()}, columns)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield {
            "type": "stream.start",
            "event_data": {"file_id": self.file_id, "stream_type": self.stream_type},
        }
        yield {
            "type": "log.info",
            "event_data": {
                "message": f"reading {self.file_id} ({self.total_rows} rows) with {self.processor}"
            },
        }
        for n, window in enumerate(self._windows):
            yield from self._results(n, window)
        yield {"type": "stream.end", "event_data": {"file_id": self.file_id}}

    def _results(self, n: int, window: Window) -> Iterator[dict[str, Any]]:
        meta = {
            "query_metadata": {
                "file_id": self.file_id,
                "read_index": window.read_index,
                "window_size": window.rows,
                "total_rows": self.total_rows,
            }
        }
        data: dict[str, Any] = {
            "query_id": f"qry-{self._query_prefix}-{n:06d}",
            "query_time_sec": 0.0,
            "query_metadata": meta,
        }
        if self.stream_type == "video_file_reader":
            caption = _CAPTIONS[(self._digest[n % len(self._digest)] + n // 3) % len(_CAPTIONS)]
            data["response"] = [f"[emulated] {caption}"]
            data["sensor_timestamp"] = _hhmmss(window.read_index / 30.0)
            yield {"type": "frame.processed", "event_data": {"frame_index": window.read_index}}
        elif self._classifier is not None:
            state, distances = self._classifier.classify(window)
            data["response"] = [state]
            data["state"] = state
            data["distances"] = {k: round(v, 4) for k, v in distances.items()}
            data["sensor_timestamp"] = _hhmmss(window.read_index / 100.0)
        else:
            stats = _describe(window)
            data["response"] = [
                f"{window.rows} rows; "
                + ", ".join(f"{c} mean {s['mean']:.3f}" for c, s in stats.items())
            ]
            data["statistics"] = stats
            data["sensor_timestamp"] = _hhmmss(window.read_index / 100.0)
        yield {"type": "inference.result", "event_data": data}
