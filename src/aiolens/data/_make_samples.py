"""Regenerate the bundled sample CSVs: ``python -m aiolens.data._make_samples [OUT_DIR]``.

A 3-axis accelerometer (in g, gravity on ``az``) sampled at 100 Hz on a
machine in three regimes:

* ``IDLE``: motor off, sensor noise only;
* ``NORMAL``: a steady 5 Hz vibration of 0.5 g;
* ``WARNING``: a strong 12 Hz vibration of 1.6 g with a harmonic on ``az``.

``sensor_demo.csv`` (3000 rows, 30 s) runs IDLE → NORMAL → WARNING → NORMAL →
IDLE, 600 rows each; ``sensor_<state>.csv`` (300 rows each) are the n-shot
examples of the time-series lens. The output is deterministic (a seeded
:class:`random.Random`, fixed 4-decimal formatting), so running this again
rewrites the same bytes.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

HERE = Path(__file__).parent
RATE_HZ = 100.0
SEED = 1234
HEADER = "timestamp,ax,ay,az"
PROFILES: dict[str, tuple[float, float, float]] = {
    # state: (noise std in g, vibration amplitude in g, vibration frequency in Hz)
    "IDLE": (0.02, 0.0, 0.0),
    "NORMAL": (0.05, 0.5, 5.0),
    "WARNING": (0.08, 1.6, 12.0),
}
DEMO_PLAN = ("IDLE", "NORMAL", "WARNING", "NORMAL", "IDLE")
DEMO_SEGMENT_ROWS = 600
EXAMPLE_ROWS = 300


def rows(state: str, count: int, rng: random.Random, start: int = 0) -> list[str]:
    """``count`` CSV lines of ``state``, the first one at sample index ``start``."""
    noise, amplitude, freq = PROFILES[state]
    out = []
    for i in range(start, start + count):
        t = i / RATE_HZ
        phase = 2 * math.pi * freq * t
        ax = amplitude * math.sin(phase) + rng.gauss(0, noise)
        ay = 0.5 * amplitude * math.sin(phase + 1.0) + rng.gauss(0, noise)
        az = 1.0 + 0.3 * amplitude * math.sin(2 * phase) + rng.gauss(0, noise)
        out.append(f"{t:.2f},{ax:.4f},{ay:.4f},{az:.4f}")
    return out


def samples() -> dict[str, str]:
    """The sample files' names and contents."""
    rng = random.Random(SEED)
    out = {
        f"sensor_{state.lower()}.csv": _csv(rows(state, EXAMPLE_ROWS, rng)) for state in PROFILES
    }
    lines: list[str] = []
    for state in DEMO_PLAN:
        lines += rows(state, DEMO_SEGMENT_ROWS, rng, start=len(lines))
    out["sensor_demo.csv"] = _csv(lines)
    return out


def _csv(lines: list[str]) -> str:
    return HEADER + "\n" + "\n".join(lines) + "\n"


def main(out_dir: Path = HERE) -> None:
    """Write the sample files into ``out_dir``."""
    for name, text in samples().items():
        (out_dir / name).write_text(text, encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
