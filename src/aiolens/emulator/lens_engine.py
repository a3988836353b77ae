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

import csv
import hashlib
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgspec

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

TIME_COLUMNS: Final = frozenset({"timestamp", "time", "t", "ts", "datetime", "date"})
"""Column names (compared case-insensitively) read as the time axis, not as data."""

FRAME_BYTES: Final = 4096
"""Bytes per pseudo-frame of a video file (see :func:`video_windows`)."""

DEFAULT_SAMPLE_RATE_HZ: Final = 100.0
"""Rows per second assumed for ``sensor_timestamp`` when a file has no usable time column."""

CAMERA_CAPTIONS: Final = (
    "A person walking across the room.",
    "A worker operating a machine.",
    "A forklift moving pallets in a warehouse.",
    "An empty corridor with the lights on.",
    "Two people talking near a desk.",
    "A conveyor belt carrying boxes.",
    "A person sitting at a workstation.",
    "A delivery van parked at a loading dock.",
)
"""The emulated camera lens's vocabulary."""

_TIMESERIES: Final = "lens_timeseries_state_processor"
_CAMERA: Final = "lens_camera_processor"
_SENSOR_READERS: Final = ("csv_file_reader", "jsonl_file_reader")
_VIDEO_READER: Final = "video_file_reader"
_json_decoder: Final = msgspec.json.Decoder()


class LensEngineError(Exception):
    """A configuration or a file the lens cannot run.

    Attributes:
        code: the documented error code (docs/protocol-notes.md, "Errors"), e.g.
            ``invalid_model_parameter``, ``empty_sensor_log_error``,
            ``sensor_log_conversion_error``, ``missing_parameter``,
            ``upload_not_found``; ``invalid_stream_type`` (not documented) for a
            stream type the emulator cannot read.
        message: a human-readable explanation.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[LensEngineError], tuple[str, str]]:
        return (type(self), (self.code, self.message))


# ---- tables and windows ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorTable:
    """A parsed sensor file.

    Attributes:
        columns: the data columns, in file order (or in ``data_columns`` order).
        values: column-major values; ``values[c][r]`` is row ``r`` of ``columns[c]``.
        total_rows: number of data rows.
        seconds: per row, seconds since the first row, from the time column;
            ``None`` when there is no time column or it cannot be read as
            numbers or ISO-8601 datetimes.
        text: the non-numeric columns, kept as read (not used in statistics).
    """

    columns: list[str]
    values: list[list[float]]
    total_rows: int
    seconds: list[float] | None
    text: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class Window:
    """One window of an input stream.

    Attributes:
        read_index: index of the window's first row (or frame) in the file.
        rows: number of rows (frames) in the window; smaller than the window
            size only for an incomplete last window.
        columns: names of ``values``' columns.
        values: column-major window values (``values[c]`` is ``columns[c]``).
        total_rows: rows (frames) in the whole file.
        file_id: the file the window was read from.
        sensor_timestamp: ``HH:MM:SS`` of the window's first row in the recording.
        index: position of the window in the stream, from 0 (keeps counting
            across loops of a looping recording).
        loop: how many times the recording had restarted before this window.
    """

    read_index: int
    rows: int
    columns: list[str]
    values: list[list[float]]
    total_rows: int
    file_id: str = ""
    sensor_timestamp: str = "00:00:00"
    index: int = 0
    loop: int = 0


LIVE_STREAMS: Final = ("rtsp_video_streamer", "rtsp_video_reader", "sensor_streamer")
"""Input streams with a live source, read from a synthetic recording (seed 001)."""

SYNTHETIC_FRAMES: Final = 60
"""Pseudo-frames of a synthetic RTSP recording."""

SYNTHETIC_SENSOR_ROWS: Final = 4096
"""Rows of a synthetic sensor recording."""


def synthetic_source(stream_type: str, config: Mapping[str, Any]) -> tuple[str, str, bytes]:
    """A finite, deterministic stand-in for a live source: ``(reader, file_id, bytes)``.

    **Emulator simplification**: the emulator opens no network stream.
    ``rtsp_video_streamer`` (and the older ``rtsp_video_reader``) checks
    ``rtsp_url`` (``rtsp://`` or ``rtsps://``), ``target_image_size``
    (``[height, width]``, positive) and ``target_frame_rate_hz`` (> 0), then
    reads :data:`SYNTHETIC_FRAMES` pseudo-frames derived from the URL as a
    ``video_file_reader``. ``sensor_streamer`` (whose configuration is not
    documented) reads :data:`SYNTHETIC_SENSOR_ROWS` rows of three sine-wave
    channels derived from the configuration as a ``csv_file_reader``. The
    same configuration always gives the same recording.

    Raises:
        LensEngineError: ``missing_parameter`` (no ``rtsp_url``),
            ``invalid_model_parameter`` (a malformed URL, size or rate).
    """
    digest = hashlib.sha256(msgspec.json.encode(dict(config), order="sorted")).digest()
    if stream_type == "sensor_streamer":
        phase = digest[0] / 255.0
        lines = ["timestamp,accel_x,accel_y,accel_z"]
        for row in range(SYNTHETIC_SENSOR_ROWS):
            t = row / DEFAULT_SAMPLE_RATE_HZ
            lines.append(
                f"{t:.4f},{math.sin(t + phase):.5f},{math.cos(0.5 * t + phase):.5f},"
                f"{math.sin(2.0 * t) * 0.1 + 1.0:.5f}"
            )
        return (
            "csv_file_reader",
            f"sensor_streamer-{digest.hex()[:12]}.csv",
            ("\n".join(lines).encode()),
        )
    url = config.get("rtsp_url")
    if not isinstance(url, str) or not url:
        raise LensEngineError("missing_parameter", "Failed to find key: rtsp_url")
    if not url.startswith(("rtsp://", "rtsps://")):
        raise LensEngineError("invalid_model_parameter", f"rtsp_url must be rtsp://...: {url!r}")
    size = config.get("target_image_size", [360, 640])
    if not (
        isinstance(size, list | tuple)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise LensEngineError(
            "invalid_model_parameter", f"target_image_size must be [height, width]: {size!r}"
        )
    rate = config.get("target_frame_rate_hz", 0.2)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
        raise LensEngineError(
            "invalid_model_parameter", f"target_frame_rate_hz must be > 0: {rate!r}"
        )
    frames = bytearray()
    block = digest
    while len(frames) < SYNTHETIC_FRAMES * FRAME_BYTES:
        block = hashlib.sha256(block).digest()
        frames += block * 32
    return (
        _VIDEO_READER,
        f"rtsp-{digest.hex()[:12]}.mp4",
        bytes(frames[: SYNTHETIC_FRAMES * FRAME_BYTES]),
    )


def _hhmmss(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _empty(what: str) -> LensEngineError:
    return LensEngineError("empty_sensor_log_error", f"The {what} is empty")


def _conversion(message: str) -> LensEngineError:
    return LensEngineError("sensor_log_conversion_error", message)


def _relative_seconds(cells: Sequence[str] | Sequence[float]) -> list[float] | None:
    """Seconds since the first row, or ``None`` if the cells are not times."""
    try:
        stamps = [float(c) for c in cells]
    except (TypeError, ValueError):
        try:
            stamps = [
                datetime.fromisoformat(str(c).strip().replace("Z", "+00:00")).timestamp()
                for c in cells
            ]
        except (TypeError, ValueError):
            return None
    if not stamps or not all(map(math.isfinite, stamps)):
        return None
    first = stamps[0]
    return [s - first for s in stamps]


def _select_columns(
    names: list[str],
    numeric: dict[str, list[float]],
    time_name: str | None,
    data_columns: Sequence[str] | None,
    what: str,
) -> list[str]:
    if data_columns:
        for name in data_columns:
            if name not in names:
                raise LensEngineError("missing_parameter", f"Failed to find key: {name}")
            if name not in numeric:
                raise _conversion(f"Column {name!r} of the {what} is not numeric")
        return list(data_columns)
    chosen = [n for n in names if n in numeric and n != time_name]
    if not chosen:
        raise _conversion(f"The {what} has no numeric data column")
    return chosen


def parse_csv(data: bytes, *, data_columns: Sequence[str] | None = None) -> SensorTable:
    """Parse a CSV sensor log (header row, then one row per sample).

    A column whose every cell parses as a float is numeric; other columns are
    kept in :attr:`SensorTable.text`. Blank lines are skipped.

    Args:
        data: the file's bytes (UTF-8, an optional BOM is ignored).
        data_columns: the columns to read, in this order; default: every
            numeric column except the time column.

    Raises:
        LensEngineError: ``empty_sensor_log_error`` for a file without data
            rows; ``sensor_log_conversion_error`` for undecodable text, a row
            with the wrong number of fields, a non-numeric requested column or
            no numeric column; ``missing_parameter`` for a requested column
            that does not exist.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _conversion(f"The CSV file is not UTF-8 text: {exc}") from None
    if not text.strip():
        raise _empty("CSV file")
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if len(r) > 1 or (r and r[0].strip())]
    except csv.Error as exc:
        raise _conversion(f"Unparsable CSV: {exc}") from None
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise _empty("CSV file (it has a header but no rows)")
    if len(set(header)) != len(header):
        raise _conversion(f"The CSV header has duplicate column names: {header}")
    width = len(header)
    bad = next((i for i, row in enumerate(body) if len(row) != width), None)
    if bad is not None:
        raise _conversion(
            f"CSV data row {bad + 1} has {len(body[bad])} fields, the header has {width}"
        )
    numeric: dict[str, list[float]] = {}
    texts: dict[str, list[str]] = {}
    for name, cells in zip(header, zip(*body, strict=True), strict=True):
        try:
            numeric[name] = list(map(float, cells))
        except ValueError:
            texts[name] = list(cells)
    time_name = next((h for h in header if h.lower() in TIME_COLUMNS), None)
    columns = _select_columns(header, numeric, time_name, data_columns, "CSV file")
    seconds = None
    if time_name is not None:
        seconds = _relative_seconds(numeric.get(time_name) or texts[time_name])
    return SensorTable(columns, [numeric[c] for c in columns], len(body), seconds, texts)


def _flatten(obj: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    for key, value in obj.items():
        if isinstance(value, dict):
            _flatten(value, f"{prefix}{key}.", out)
        else:
            out[f"{prefix}{key}"] = value
    return out


def parse_jsonl(data: bytes, *, data_columns: Sequence[str] | None = None) -> SensorTable:
    """Parse a JSON-lines sensor log: one JSON object per line.

    Nested objects are flattened with dotted names (``{"acc": {"x": 1}}`` gives
    column ``acc.x``). A field is a numeric column when it holds a number
    (not a boolean) in every record; string fields present in every record are
    kept in :attr:`SensorTable.text`; other fields are ignored. Columns come in
    order of first appearance.

    Args:
        data: the file's bytes.
        data_columns: the fields to read, in this order; default: every
            numeric field except the time field.

    Raises:
        LensEngineError: ``empty_sensor_log_error`` for a file without
            records; ``sensor_log_conversion_error`` for a line that is not a
            JSON object or no numeric field; ``missing_parameter`` for a
            requested field that does not exist.
    """
    records: list[dict[str, Any]] = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = _json_decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise _conversion(f"Line {number} of the sensor log is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise _conversion(f"Line {number} of the sensor log is not a JSON object")
        records.append(_flatten(obj, "", {}))
    if not records:
        raise _empty("sensor log")
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    numeric: dict[str, list[float]] = {}
    texts: dict[str, list[str]] = {}
    for name in names:
        cells: list[Any] = [r.get(name) for r in records]
        if all(type(c) is int or type(c) is float for c in cells):
            numeric[name] = [float(c) for c in cells]
        elif all(isinstance(c, str) for c in cells):
            texts[name] = [str(c) for c in cells]
    order = list(names)
    time_name = next((n for n in order if n.lower() in TIME_COLUMNS), None)
    columns = _select_columns(order, numeric, time_name, data_columns, "sensor log")
    seconds = None
    if time_name is not None and (time_name in numeric or time_name in texts):
        seconds = _relative_seconds(numeric.get(time_name) or texts[time_name])
    return SensorTable(columns, [numeric[c] for c in columns], len(records), seconds, texts)


def _positive(name: str, value: object) -> int:
    """``value`` as a positive integer (ints, integral floats, digit strings)."""
    bad = LensEngineError("invalid_model_parameter", f"{name} must be an integer > 0: {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad
    try:
        number = int(value)
    except (ValueError, OverflowError):
        raise bad from None
    if (isinstance(value, float) and number != value) or number <= 0:
        raise bad
    return number


def _check_max_windows(max_windows: object) -> None:
    if max_windows is not None and (
        isinstance(max_windows, bool) or not isinstance(max_windows, int) or max_windows < 0
    ):
        raise LensEngineError(
            "invalid_model_parameter", f"max_windows must be an integer >= 0: {max_windows!r}"
        )


def _spans(
    total: int,
    size: int,
    step: int,
    cut_off: bool,
    loop: bool,
    max_windows: int | None,
) -> Iterator[tuple[int, int, int]]:
    """``(loop, start, end)`` of each window, ``max_windows`` at most.

    With ``cut_off`` only complete windows are read. Without it the last
    window is the first one that reaches the end of the file, complete or not,
    so every row is read and no window is a tail of another one.
    """
    remaining = -1 if max_windows is None else max_windows
    passes = 0
    while remaining != 0:
        produced = False
        start = 0
        while start < total and remaining != 0:
            end = start + size
            if end > total:
                if cut_off:
                    break
                end = total
            yield passes, start, end
            produced = True
            remaining -= 1
            if end >= total:
                break
            start += step
        if not (loop and produced):
            return
        passes += 1


def table_windows(
    table: SensorTable,
    *,
    window_size: int,
    step_size: int,
    cut_off_incomplete_window: bool = True,
    loop_recording: bool = False,
    max_windows: int | None = None,
    file_id: str = "",
    sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
) -> Iterator[Window]:
    """Windows of ``window_size`` rows every ``step_size`` rows over a parsed table.

    The parameters are checked when this is called; windows are made lazily.
    Overlapping (``step_size < window_size``) and gapped windows are allowed.

    Args:
        table: the parsed file.
        window_size: rows per window.
        step_size: rows between the starts of consecutive windows.
        cut_off_incomplete_window: drop a last window shorter than
            ``window_size`` (otherwise it is yielded, shorter).
        loop_recording: restart from the first row after the last window, for
            ever (bounded by ``max_windows``). A file too short for any window
            yields nothing, looping or not.
        max_windows: stop after this many windows (``None``: no limit).
        file_id: copied into each window.
        sample_rate_hz: rows per second for ``sensor_timestamp`` when the
            table has no time column.

    Raises:
        LensEngineError: ``invalid_model_parameter`` when ``window_size`` or
            ``step_size`` is not a positive integer, ``max_windows`` is negative
            or ``sample_rate_hz`` is not positive.
    """
    size = _positive("window_size", window_size)
    step = _positive("step_size", step_size)
    _check_max_windows(max_windows)
    if not sample_rate_hz > 0:
        raise LensEngineError("invalid_model_parameter", "sample_rate_hz must be > 0")
    return _table_windows(
        table,
        size,
        step,
        cut_off_incomplete_window,
        loop_recording,
        max_windows,
        file_id,
        sample_rate_hz,
    )


def _table_windows(
    table: SensorTable,
    size: int,
    step: int,
    cut_off: bool,
    loop: bool,
    max_windows: int | None,
    file_id: str,
    rate: float,
) -> Iterator[Window]:
    columns, values, total, seconds = table.columns, table.values, table.total_rows, table.seconds
    spans = _spans(total, size, step, cut_off, loop, max_windows)
    for index, (passes, start, end) in enumerate(spans):
        at = seconds[start] if seconds is not None else start / rate
        yield Window(
            start,
            end - start,
            columns,
            [col[start:end] for col in values],
            total,
            file_id,
            _hhmmss(at),
            index,
            passes,
        )


def csv_windows(
    data: bytes,
    *,
    window_size: int = 1024,
    step_size: int = 1024,
    cut_off_incomplete_window: bool = True,
    data_columns: list[str] | None = None,
    loop_recording: bool = False,
    max_windows: int | None = None,
    file_id: str = "",
    sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
) -> Iterator[Window]:
    """Windows over a CSV sensor log (see :func:`parse_csv`, :func:`table_windows`).

    The file is parsed and the parameters checked when this is called; the
    windows are made lazily.

    Raises:
        LensEngineError: as :func:`parse_csv` and :func:`table_windows`.
    """
    return table_windows(
        parse_csv(data, data_columns=data_columns),
        window_size=window_size,
        step_size=step_size,
        cut_off_incomplete_window=cut_off_incomplete_window,
        loop_recording=loop_recording,
        max_windows=max_windows,
        file_id=file_id,
        sample_rate_hz=sample_rate_hz,
    )


def jsonl_windows(
    data: bytes,
    *,
    window_size: int = 1,
    step_size: int = 1,
    cut_off_incomplete_window: bool = True,
    data_columns: list[str] | None = None,
    loop_recording: bool = False,
    max_windows: int | None = None,
    file_id: str = "",
    sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
) -> Iterator[Window]:
    """Windows over a JSON-lines sensor log (see :func:`parse_jsonl`, :func:`table_windows`).

    Raises:
        LensEngineError: as :func:`parse_jsonl` and :func:`table_windows`.
    """
    return table_windows(
        parse_jsonl(data, data_columns=data_columns),
        window_size=window_size,
        step_size=step_size,
        cut_off_incomplete_window=cut_off_incomplete_window,
        loop_recording=loop_recording,
        max_windows=max_windows,
        file_id=file_id,
        sample_rate_hz=sample_rate_hz,
    )


def _frame_count(data: bytes, frame_bytes: int) -> int:
    return max(1, len(data) // frame_bytes)


def _frame_span(data: bytes, first: int, count: int, frames: int, frame_bytes: int) -> memoryview:
    """The bytes of frames ``first .. first+count-1`` (the last frame takes the remainder)."""
    end = len(data) if first + count >= frames else (first + count) * frame_bytes
    return memoryview(data)[first * frame_bytes : end]


def video_windows(
    data: bytes,
    *,
    window_size: int = 5,
    step_size: int = 5,
    fps: float = 30.0,
    cut_off_incomplete_window: bool = False,
    loop_recording: bool = False,
    max_windows: int | None = None,
    file_id: str = "",
    frame_bytes: int = FRAME_BYTES,
) -> Iterator[Window]:
    """Windows of pseudo-frames over a video file.

    **Emulator simplification:** the video is not decoded. The file is cut
    into ``max(1, len(data) // frame_bytes)`` pseudo-frames (the last one takes
    the remainder); a window's columns are ``frame_index`` and ``mean_byte``
    (the mean of every 16th byte of the frame, a stand-in for brightness).
    ``sensor_timestamp`` is the first frame's index divided by ``fps``.

    Raises:
        LensEngineError: ``empty_sensor_log_error`` for an empty file;
            ``invalid_model_parameter`` for a non-positive window size, step,
            frame size or ``fps``, or a negative ``max_windows``.
    """
    if not data:
        raise _empty("video file")
    size = _positive("window_size", window_size)
    step = _positive("step_size", step_size)
    frame_bytes = _positive("frame_bytes", frame_bytes)
    _check_max_windows(max_windows)
    if not fps > 0:
        raise LensEngineError("invalid_model_parameter", f"fps must be > 0, got {fps!r}")
    return _video_windows(
        data,
        size,
        step,
        fps,
        cut_off_incomplete_window,
        loop_recording,
        max_windows,
        file_id,
        frame_bytes,
    )


def _video_windows(
    data: bytes,
    size: int,
    step: int,
    fps: float,
    cut_off: bool,
    loop: bool,
    max_windows: int | None,
    file_id: str,
    frame_bytes: int,
) -> Iterator[Window]:
    frames = _frame_count(data, frame_bytes)
    columns = ["frame_index", "mean_byte"]
    for index, (passes, start, end) in enumerate(
        _spans(frames, size, step, cut_off, loop, max_windows)
    ):
        means = []
        for frame in range(start, end):
            sample = _frame_span(data, frame, 1, frames, frame_bytes)[::16]
            means.append(sum(sample) / len(sample))
        yield Window(
            start,
            end - start,
            columns,
            [[float(f) for f in range(start, end)], means],
            frames,
            file_id,
            _hhmmss(start / fps),
            index,
            passes,
        )


# ---- processors --------------------------------------------------------------------------


def _mean_std(col: Sequence[float]) -> tuple[float, float]:
    n = len(col)
    mean = sum(col) / n
    return mean, math.sqrt(sum([(x - mean) * (x - mean) for x in col]) / n)


def describe_window(window: Window) -> dict[str, Any]:
    """The window's row count and per-column statistics.

    Returns:
        ``{"num_rows": int, "statistics": {column: {"min", "max", "mean",
        "std"}}}``; mean and (population) standard deviation are rounded to 6
        decimals.
    """
    stats: dict[str, dict[str, float]] = {}
    for name, col in zip(window.columns, window.values, strict=True):
        mean, std = _mean_std(col)
        stats[name] = {
            "min": min(col),
            "max": max(col),
            "mean": round(mean, 6),
            "std": round(std, 6),
        }
    return {"num_rows": window.rows, "statistics": stats}


@dataclass(frozen=True, slots=True)
class StateResult:
    """A window's classification.

    Attributes:
        state: the nearest state.
        distances: Euclidean distance to each state's centroid, in
            standardised feature units.
        confidence: the nearest state's share of the inverse squared
            distances, ``(1/d_best²) / Σ(1/d²)``: ``1/len(states)`` when
            undecided, 1.0 on a centroid.
    """

    state: str
    distances: dict[str, float]
    confidence: float


class TimeseriesStateProcessor:
    """Nearest-centroid state classifier of ``lens_timeseries_state_processor``.

    Features of a window: per data column, its mean and (population) standard
    deviation. Each example file is cut into windows of the run's size and
    step (the whole file is one window when it is shorter than that, or when
    no size is given), so centroids and classified windows have comparable
    features. A state's centroid is the mean of its example windows' features.

    Standardisation is per data column: both features of a column are divided
    by that column's standard deviation over every row of every example file
    (a column that never varies keeps scale 1). So distances are in units of
    the column's spread, whatever its physical unit, and they stay meaningful
    with a single example window per state (z-scoring each feature over the
    example windows would give noise-only features, such as the mean of a
    zero-mean vibration, as much weight as the informative ones).

    A window belongs to the state whose centroid is nearest (Euclidean); ties
    go to the state listed first. ``confidence`` weighs states by inverse
    squared distance: ``(1/d_best²) / Σ(1/d²)``, from ``1/len(states)``
    (undecided) to 1.0.

    Args:
        examples: per state, the bytes of its example files (at least one).
        data_columns: the columns to use; default: the numeric data columns
            of the first example file. Every example file must have them.
        window_size: rows per window of the run, ``None`` for whole files.
        step_size: rows between windows of the run (default: ``window_size``).
        example_format: ``"csv"`` or ``"jsonl"``, how the examples are parsed.

    Raises:
        LensEngineError: ``missing_parameter`` without examples (or a state
            without a file) or when an example lacks a column; the parse errors
            of :func:`parse_csv` / :func:`parse_jsonl`; ``invalid_model_parameter``
            for a non-positive window size or step.
    """

    __slots__ = ("_centroids", "_inv_scale", "columns", "states")

    def __init__(
        self,
        examples: Mapping[str, Sequence[bytes]],
        *,
        data_columns: Sequence[str] | None = None,
        window_size: int | None = None,
        step_size: int | None = None,
        example_format: str = "csv",
    ) -> None:
        if not examples:
            raise LensEngineError("missing_parameter", "Failed to find key: input_n_shot")
        parse = parse_jsonl if example_format == "jsonl" else parse_csv
        size = None if window_size is None else _positive("window_size", window_size)
        step = size if step_size is None else _positive("step_size", step_size)
        columns = list(data_columns) if data_columns else None
        per_state: dict[str, list[list[float]]] = {}
        tables: list[SensorTable] = []
        for state, blobs in examples.items():
            if not blobs:
                raise LensEngineError(
                    "missing_parameter", f"input_n_shot has no example file for state {state!r}"
                )
            vectors: list[list[float]] = []
            for blob in blobs:
                table = parse(blob, data_columns=columns)
                columns = table.columns
                tables.append(table)
                vectors.extend(_example_features(table, size, step))
            per_state[str(state)] = vectors
        assert columns is not None
        self.columns: list[str] = columns
        """The data columns the features are computed from, in feature order."""
        self.states: tuple[str, ...] = tuple(per_state)
        """The state names, in ``examples`` order."""
        inv_scale = []
        for c in range(len(columns)):
            _, spread = _mean_std([x for table in tables for x in table.values[c]])
            inv = 1.0 / spread if spread > 1e-12 else 1.0
            inv_scale += [inv, inv]
        self._inv_scale = inv_scale
        self._centroids: list[tuple[str, list[float]]] = []
        for state, vectors in per_state.items():
            centroid = [sum(v[d] for v in vectors) / len(vectors) for d in range(len(inv_scale))]
            self._centroids.append(
                (state, [c * s for c, s in zip(centroid, inv_scale, strict=True)])
            )

    def features(self, window: Window) -> list[float]:
        """``[mean, std]`` per :attr:`columns`, unscaled.

        Raises:
            LensEngineError: ``missing_parameter`` when the window lacks a column.
        """
        if window.columns == self.columns:
            cols = window.values
        else:
            try:
                cols = [window.values[window.columns.index(c)] for c in self.columns]
            except ValueError:
                missing = [c for c in self.columns if c not in window.columns]
                raise LensEngineError(
                    "missing_parameter", f"Failed to find key: {missing[0]}"
                ) from None
        out: list[float] = []
        for col in cols:
            out.extend(_mean_std(col))
        return out

    def classify(self, window: Window) -> StateResult:
        """The nearest state of one window, with distances and confidence."""
        z = [f * s for f, s in zip(self.features(window), self._inv_scale, strict=True)]
        squared = []
        for _, centroid in self._centroids:
            total = 0.0
            for a, b in zip(z, centroid, strict=True):
                total += (a - b) * (a - b)
            squared.append(total)
        best = min(range(len(squared)), key=squared.__getitem__)
        nearest = squared[best]
        confidence = 1.0 if nearest <= 0.0 else 1.0 / sum(nearest / d for d in squared)
        return StateResult(
            self._centroids[best][0],
            {s: math.sqrt(d) for (s, _), d in zip(self._centroids, squared, strict=True)},
            confidence,
        )


def _example_features(table: SensorTable, size: int | None, step: int | None) -> list[list[float]]:
    total = table.total_rows
    if size is None or size >= total:
        spans: list[tuple[int, int]] = [(0, total)]
    else:
        spans = [(s, e) for _, s, e in _spans(total, size, step or size, True, False, None)]
    vectors = []
    for start, end in spans:
        vector: list[float] = []
        for col in table.values:
            vector.extend(_mean_std(col[start:end]))
        vectors.append(vector)
    return vectors


class CameraProcessor:
    """The emulated ``lens_camera_processor``: a stable caption per window.

    **Emulated:** no vision model runs. The caption is picked from
    :data:`CAMERA_CAPTIONS` by a BLAKE2b hash of the window's pseudo-frame
    bytes (see :func:`video_windows`), so equal bytes always get the same
    caption, and it is prefixed with ``[emulated]``.

    Args:
        data: the whole video file.
        frame_bytes: bytes per pseudo-frame (as given to :func:`video_windows`).
        captions: the vocabulary to pick from.
    """

    __slots__ = ("_captions", "_data", "_frame_bytes", "_frames")

    def __init__(
        self,
        data: bytes,
        *,
        frame_bytes: int = FRAME_BYTES,
        captions: Sequence[str] = CAMERA_CAPTIONS,
    ) -> None:
        self._data = data
        self._frame_bytes = _positive("frame_bytes", frame_bytes)
        self._frames = _frame_count(data, self._frame_bytes)
        self._captions = tuple(captions) or CAMERA_CAPTIONS

    def describe(self, window: Window) -> dict[str, Any]:
        """The window's caption.

        Returns:
            ``{"caption", "frame_range": [first, last], "num_frames",
            "frame_digest", "emulated": True}``.
        """
        span = _frame_span(
            self._data, window.read_index, window.rows, self._frames, self._frame_bytes
        )
        digest = hashlib.blake2b(span, digest_size=8).digest()
        caption = self._captions[int.from_bytes(digest, "big") % len(self._captions)]
        return {
            "caption": f"[emulated] {caption}",
            "frame_range": [window.read_index, window.read_index + window.rows - 1],
            "num_frames": window.rows,
            "frame_digest": digest.hex(),
            "emulated": True,
        }


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
