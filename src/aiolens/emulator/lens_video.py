"""The emulated lenses' video reader: pseudo-frames of a video file into windows.

**Emulator simplification**: mp4 is not decoded (that would need a codec
dependency). The file is read as a sequence of pseudo-frames of
:data:`~aiolens.emulator.lens_readers.FRAME_BYTES` bytes (at least one frame;
the last one takes the remainder) at ``fps`` frames per second; each frame's
only feature is the mean value of a sample of its bytes. Part of the lens
engine (:mod:`aiolens.emulator.lens_engine`).
"""

from __future__ import annotations

from collections.abc import Iterator

from aiolens.emulator.lens_readers import (
    FRAME_BYTES,
    LensEngineError,
    Window,
    _check_max_windows,
    _empty,
    _hhmmss,
    _positive,
    _spans,
)

__all__ = ["video_windows"]


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
