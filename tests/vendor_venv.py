"""A vendor's client in a virtualenv of its own, made once on demand.

The vendors' clients pin what aiolens cannot share an environment with (the
official ``archetypeai`` SDK pins ``websockets<16``; the ``kynasmith`` SDK
needs Python 3.12), so each lives in a gitignored venv that the tests and
benchmarks drive as a subprocess. :func:`ensure_venv` is the one place that
makes such a venv: it probes first, serialises creation with a file lock (so
concurrent test processes build it once), bounds every step with a timeout and
says in one line why it could not.
"""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def has(python: Path, probe: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``python`` exists and runs ``probe`` (a ``-c`` program) with exit code 0."""
    if not python.exists():
        return False
    try:
        return subprocess.run([str(python), "-c", probe], env=env, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def ensure_venv(
    venv: Path,
    *,
    base: Sequence[str],
    installs: Sequence[Sequence[str]],
    probe: str,
    env: Mapping[str, str] | None = None,
) -> tuple[Path | None, str]:
    """``venv``'s interpreter once ``probe`` passes in it, or ``None`` and why not.

    ``base`` is the command of the Python that makes the venv; each of
    ``installs`` is a list of ``pip install`` arguments run in it, in order.
    The lock file is ``<venv>.lock`` beside the venv. Each step may take up to
    15 minutes (a hang guard, not a speed assertion).
    """
    python = venv / "bin" / "python"
    if has(python, probe, env):
        return python, ""
    venv.parent.mkdir(parents=True, exist_ok=True)
    with venv.with_name(venv.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if has(python, probe, env):
            return python, ""
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        steps = [[*base, "-m", "venv", "--clear", str(venv)], *([*pip, *i] for i in installs)]
        for step in steps:
            try:
                done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.SubprocessError) as exc:
                return None, f"could not make {venv}: {' '.join(step)}: {exc}"
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
                return None, f"could not make {venv}: {' '.join(step)}: {' / '.join(tail)}"
    if has(python, probe, env):
        return python, ""
    return None, f"{venv} was made but its check failed ({probe})"
