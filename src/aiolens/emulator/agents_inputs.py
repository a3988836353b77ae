"""The emulated agents' inputs: sensor files and serving windows as tables, and their labels.

A file is CSV or JSON lines (read with the Lens emulator's readers,
:mod:`aiolens.emulator.lens_engine`); its label column, named after the
blueprint's target (``state``, ``anomaly``), is kept apart from the data. Pure:
no I/O, no asyncio.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiolens.emulator.agents_blueprints import AgentError, FileReader
from aiolens.emulator.lens_engine import LensEngineError, SensorTable, parse_csv, parse_jsonl

__all__ = [
    "LabelledTable",
    "load_table",
    "majority",
    "read_input",
    "segments",
    "table_csv",
    "table_from_window",
]


def load_table(data: bytes, fmt: str, *, exclude: Sequence[str] = ()) -> SensorTable:
    """Parse a CSV or JSON-lines file; columns in ``exclude`` are not data.

    Raises:
        AgentError: ``invalid_input`` when the file cannot be read.
    """
    parse = parse_jsonl if fmt == "jsonl" else parse_csv
    try:
        table = parse(data)
        if exclude and any(c in table.columns for c in exclude):
            keep = [c for c in table.columns if c not in exclude]
            if not keep:
                raise AgentError("invalid_input", "The file has no data column besides the labels")
            table = parse(data, data_columns=keep)
    except LensEngineError as exc:
        raise AgentError("invalid_input", exc.message) from None
    return table


def _labels(table: SensorTable, data: bytes, fmt: str, column: str) -> list[str]:
    """The label column as strings (numeric labels such as 0/1 included)."""
    if column in table.text:
        return table.text[column]
    if column in table.columns:  # pragma: no cover - excluded by load_table
        return [_label(v) for v in table.values[table.columns.index(column)]]
    numeric = load_table(data, fmt)
    if column in numeric.columns:
        return [_label(v) for v in numeric.values[numeric.columns.index(column)]]
    raise AgentError("missing_labels", f"The file has no label column {column!r}")


def _label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True, slots=True)
class LabelledTable:
    """A parsed input and, when it has them, its per-row labels."""

    table: SensorTable
    labels: list[str] | None


def read_input(
    files: FileReader, file_id: str, target: str, *, need_labels: bool = False
) -> LabelledTable:
    """Read one input file; its label column (named ``target``) is kept apart.

    Raises:
        AgentError: ``file_not_found``, ``invalid_input``, or ``missing_labels``
            when ``need_labels`` and the file has no label column.
    """
    data, fmt = files(file_id)
    table = load_table(data, fmt, exclude=(target,))
    try:
        labels: list[str] | None = _labels(table, data, fmt, target)
    except AgentError:
        if need_labels:
            raise
        labels = None
    return LabelledTable(table, labels)


def segments(labels: Sequence[str]) -> Iterator[tuple[str, int, int]]:
    """``(label, start, end)`` of each run of equal labels."""
    start = 0
    for index in range(1, len(labels) + 1):
        if index == len(labels) or labels[index] != labels[start]:
            yield labels[start], start, index
            start = index


def table_csv(table: SensorTable, start: int, end: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    for row in range(start, end):
        writer.writerow([repr(col[row]) for col in table.values])
    return out.getvalue().encode()


def table_from_window(payload: Mapping[str, Any]) -> SensorTable:
    """A serving query's window as a table.

    Accepts the columnar form ``{"columns": [...], "rows": [[...], ...]}`` and
    the record form ``{"data": [{"ax": 0.1, ...}, ...]}``.

    Raises:
        AgentError: ``invalid_input`` for any other shape or non-numeric cells.
    """
    columns = payload.get("columns")
    rows = payload.get("rows")
    if columns is None and isinstance(payload.get("data"), list) and payload["data"]:
        records = payload["data"]
        if not all(isinstance(r, dict) for r in records):
            raise AgentError("invalid_input", "data must be a list of objects")
        columns = list(records[0])
        rows = [[r.get(c) for c in columns] for r in records]
    if not isinstance(columns, list) or not isinstance(rows, list) or not rows:
        raise AgentError(
            "invalid_input", "A window needs columns and rows (or data: a list of records)"
        )
    values: list[list[float]] = [[] for _ in columns]
    for number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise AgentError("invalid_input", f"Row {number} does not match the columns")
        for c, cell in enumerate(row):
            if isinstance(cell, bool) or not isinstance(cell, int | float):
                raise AgentError("invalid_input", f"Row {number} has a non-numeric cell: {cell!r}")
            values[c].append(float(cell))
    names = [str(c) for c in columns]
    keep = [i for i, n in enumerate(names) if n.lower() not in ("timestamp", "time", "t", "ts")]
    return SensorTable([names[i] for i in keep], [values[i] for i in keep], len(rows), None, {})


def majority(labels: Sequence[str]) -> str:
    counts = Counter(labels)
    top = max(counts.values())
    return next(label for label in labels if counts[label] == top)  # ties: the earliest
