"""The emulated lenses' readers: input files and streams into windows (pure, no I/O).

Part of the lens engine (:mod:`aiolens.emulator.lens_engine` runs them): each
reader parses eagerly, so a bad file fails at once with a
:class:`LensEngineError`, then yields lazily.

* :func:`csv_windows` / :func:`jsonl_windows`: windows of ``window_size`` rows
  every ``step_size`` rows over the numeric columns of a CSV file or of a
  JSON-lines file. A time column (``timestamp``, ``time``, ``t``, ``ts``,
  ``datetime``, ``date``) is kept out of the statistics and gives each window
  its ``sensor_timestamp``.
* video files: :mod:`aiolens.emulator.lens_video`; live sources:
  :mod:`aiolens.emulator.lens_synthetic`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypedDict, Unpack

import msgspec

__all__ = [
    "DEFAULT_SAMPLE_RATE_HZ",
    "FRAME_BYTES",
    "TIME_COLUMNS",
    "LensEngineError",
    "SensorTable",
    "Window",
    "WindowOptions",
    "csv_windows",
    "jsonl_windows",
    "parse_csv",
    "parse_jsonl",
    "table_windows",
]

_VIDEO_READER: Final = "video_file_reader"
_json_decoder: Final = msgspec.json.Decoder()

TIME_COLUMNS: Final = frozenset({"timestamp", "time", "t", "ts", "datetime", "date"})
"""Column names (compared case-insensitively) read as the time axis, not as data."""

FRAME_BYTES: Final = 4096
"""Bytes per pseudo-frame of a video file (see :func:`video_windows`)."""

DEFAULT_SAMPLE_RATE_HZ: Final = 100.0
"""Rows per second assumed for ``sensor_timestamp`` when a file has no usable time column."""


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


class WindowOptions(TypedDict, total=False):
    """The options of :func:`csv_windows` and :func:`jsonl_windows` besides the sizes and
    columns: as for :func:`table_windows`."""

    cut_off_incomplete_window: bool
    loop_recording: bool
    max_windows: int | None
    file_id: str
    sample_rate_hz: float


def csv_windows(
    data: bytes,
    *,
    window_size: int = 1024,
    step_size: int = 1024,
    data_columns: list[str] | None = None,
    **options: Unpack[WindowOptions],
) -> Iterator[Window]:
    """Windows over a CSV sensor log (see :func:`parse_csv`, :func:`table_windows`).

    The file is parsed and the parameters checked when this is called; the
    windows are made lazily.

    Raises:
        LensEngineError: as :func:`parse_csv` and :func:`table_windows`.
    """
    table = parse_csv(data, data_columns=data_columns)
    return table_windows(table, window_size=window_size, step_size=step_size, **options)


def jsonl_windows(
    data: bytes,
    *,
    window_size: int = 1,
    step_size: int = 1,
    data_columns: list[str] | None = None,
    **options: Unpack[WindowOptions],
) -> Iterator[Window]:
    """Windows over a JSON-lines sensor log (see :func:`parse_jsonl`, :func:`table_windows`).

    Raises:
        LensEngineError: as :func:`parse_jsonl` and :func:`table_windows`.
    """
    table = parse_jsonl(data, data_columns=data_columns)
    return table_windows(table, window_size=window_size, step_size=step_size, **options)
