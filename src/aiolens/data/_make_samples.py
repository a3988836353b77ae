"""Regenerate the bundled sample CSVs (deterministic): ``python -m aiolens.data._make_samples``.

Three machine regimes of a 3-axis accelerometer at 100 Hz:
IDLE (sensor noise only), NORMAL (a steady 5 Hz vibration) and WARNING
(a strong 12 Hz vibration with harmonics).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

HERE = Path(__file__).parent
RATE = 100.0
PROFILES = {
    "IDLE": (0.02, 0.0, 0.0),
    "NORMAL": (0.05, 0.5, 5.0),
    "WARNING": (0.08, 1.6, 12.0),
}


def rows(state: str, count: int, rng: random.Random, start: int = 0) -> list[str]:
    noise, amplitude, freq = PROFILES[state]
    out = []
    for i in range(start, start + count):
        t = i / RATE
        phase = 2 * math.pi * freq * t
        ax = amplitude * math.sin(phase) + rng.gauss(0, noise)
        ay = 0.5 * amplitude * math.sin(phase + 1.0) + rng.gauss(0, noise)
        az = 1.0 + 0.3 * amplitude * math.sin(2 * phase) + rng.gauss(0, noise)
        out.append(f"{t:.2f},{ax:.4f},{ay:.4f},{az:.4f}")
    return out


def write(name: str, lines: list[str]) -> None:
    (HERE / name).write_text("timestamp,ax,ay,az\n" + "\n".join(lines) + "\n")


def main() -> None:
    rng = random.Random(1234)
    for state in PROFILES:
        write(f"sensor_{state.lower()}.csv", rows(state, 300, rng))
    plan = ["IDLE", "NORMAL", "WARNING", "NORMAL", "IDLE"]
    lines: list[str] = []
    for state in plan:
        lines += rows(state, 600, rng, start=len(lines))
    write("sensor_demo.csv", lines)


if __name__ == "__main__":
    main()
