"""The emulated live sources: finite, deterministic recordings behind live streams.

Part of the lens engine (:mod:`aiolens.emulator.lens_engine` reads what
:func:`synthetic_source` makes with the file readers of
:mod:`aiolens.emulator.lens_readers`): the emulator opens no network stream.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from aiolens.emulator.lens_readers import (
    _VIDEO_READER,
    DEFAULT_SAMPLE_RATE_HZ,
    FRAME_BYTES,
    LensEngineError,
)

__all__ = ["LIVE_STREAMS", "SYNTHETIC_FRAMES", "SYNTHETIC_SENSOR_ROWS", "synthetic_source"]

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
