"""The emulated lenses' processors: what each window becomes (pure, deterministic).

Part of the lens engine (:mod:`aiolens.emulator.lens_engine` runs them):
:class:`TimeseriesStateProcessor` (nearest centroid over standardised window
features learnt from n-shot files), :class:`CameraProcessor` (a stable caption
by a hash of the window's bytes) and :func:`describe_window` (per-column
statistics, for every other processor name).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiolens.emulator.lens_readers import (
    FRAME_BYTES,
    LensEngineError,
    SensorTable,
    Window,
    _positive,
    _spans,
    parse_csv,
    parse_jsonl,
)
from aiolens.emulator.lens_video import _frame_count, _frame_span

__all__ = [
    "CAMERA_CAPTIONS",
    "CameraProcessor",
    "StateResult",
    "TimeseriesStateProcessor",
    "describe_window",
]

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
