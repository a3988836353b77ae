"""The vendor's ``kynasmith`` SDK 0.1.0 drives the emulator: token, MoveSpecs, replay, endings.

The SDK needs Python >= 3.12 (and ``websockets>=16``), so it runs in a venv of
its own, ``.vendor/kynasmith-sdk-py312`` (gitignored), made on first use from
the first Python 3.12 found (``$AIOLENS_PYTHON312``, ``python3.12``, or pyenv's
3.12 via ``PYENV_VERSION``) with ``kynasmith-contracts``, ``httpx`` and
``websockets`` from PyPI and the SDK itself with ``--no-deps``: its MediaPipe
and OpenCV requirements serve only the MP4 → pose step, which the driver
replaces with synthetic frames. Without a Python 3.12 the test is skipped,
saying so, except under CI (``$CI`` set), where it fails; ``python -m
tests.kynasmith.test_vendor_sdk`` makes the venv ahead of time (``.ci/run``
does). Everything the emulator answers is also checked against the vendor
contract by the suite-wide tap (``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import msgspec
import pytest

from aiolens.emulator import Emulator
from aiolens.emulator.movespec_yaml import SQUAT_YAML
from aiolens.kynasmith.synthetic import generate_squats
from tests.vendor_venv import ensure_venv

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".vendor" / "kynasmith-sdk-py312"
DRIVER = Path(__file__).with_name("vendor_sdk_driver.py")
REQUIREMENTS = ("kynasmith-contracts==0.1.0", "httpx>=0.28.1", "websockets>=16.0")


def _python312() -> list[str] | None:
    """A command that runs Python >= 3.12, or None."""
    candidates = [os.environ.get("AIOLENS_PYTHON312"), shutil.which("python3.12")]
    for candidate in filter(None, candidates):
        env = {**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.12.1")}
        probe = "import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)"
        try:
            if subprocess.run([candidate, "-c", probe], env=env, timeout=60).returncode == 0:
                return [candidate]
        except (OSError, subprocess.SubprocessError):
            continue
    return None


# not ``import kynasmith``: its __init__ needs MediaPipe (see vendor_sdk_driver.py)
_PROBE = (
    "import importlib.util as u, sys, httpx, websockets, kynasmith_contracts; "
    "sys.exit(0 if u.find_spec('kynasmith') else 1)"
)


def sdk_python() -> tuple[Path | None, str]:
    """The SDK venv's interpreter, made if needed (:func:`tests.vendor_venv.ensure_venv`);
    or ``None`` and why not."""
    base = _python312()
    if base is None:
        return None, "no Python 3.12 here (set AIOLENS_PYTHON312); the vendor SDK needs it"
    env = {**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.12.1")}
    installs = [list(REQUIREMENTS), ["--no-deps", "kynasmith==0.1.0"]]
    return ensure_venv(VENV, base=base, installs=installs, probe=_PROBE, env=env)


def _jwt_claims(token: str) -> dict[str, object]:
    import base64

    payload = token.split(".")[1]
    claims: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


async def test_the_vendor_sdk_runs_its_flows_against_the_emulator(
    emulator: Emulator, tmp_path: Path
) -> None:
    python, why = await asyncio.to_thread(sdk_python)
    if python is None:
        if os.environ.get("CI"):
            pytest.fail(f"the vendor kynasmith SDK is needed in CI: {why}")
        pytest.skip(why)
    frames = [
        {k: v for k, v in msgspec.to_builtins(f).items() if k != "frame_seq"}
        for f in generate_squats(3, seed=1)
    ]
    (tmp_path / "frames.json").write_text(json.dumps(frames))
    (tmp_path / "squat.yaml").write_text(SQUAT_YAML)
    proc = await asyncio.create_subprocess_exec(
        str(python),
        str(DRIVER),
        emulator.kynasmith_url,
        emulator.kynasmith_api_key,
        emulator.kynasmith.project_id,
        str(tmp_path / "frames.json"),
        str(tmp_path / "squat.yaml"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0, err.decode()[-3000:]
    result = json.loads(out)
    assert result["token"] == {
        "expires_in_seconds": 900,
        "project_id": emulator.kynasmith.project_id,
        "organization_id": emulator.kynasmith.organization_id,
    }
    assert result["catalogue"] == ["lunge", "squat"] and result["get"] == "squat"
    assert result["movespecs"] == {
        "description": "sdk",
        "draft_is_yaml": True,
        "validation_ok": True,
        "version_number": 1,
        "released": True,
        "versions": 1,
        "fork_draft_copied": True,
    }
    replay = result["replay"]
    assert replay["accepted_frames_total"] == replay["frames_sent"] == len(frames)
    assert replay["completed_event_counts"] == {"squat": 3}
    assert replay["status"] == "completed" and replay["ended_at"]
    assert str(uuid.UUID(replay["session_id"])) == replay["session_id"]
    assert str(uuid.UUID(replay["resolved_movespec_version_id"]))
    assert _jwt_claims(replay["runtime_token"])["sub"] == replay["session_id"]
    assert result["rest_endings"] == {
        "finalize": "finalizing",
        "after_finalize": "completed",
        "cancel": "cancelled",
    }
    assert result["unknown_session"] == ["ApiError", "not_found"]
    session = emulator.kynasmith.sessions[replay["session_id"]]
    assert session.accepted_frames_total == len(frames) and session.last_batch_seq == 16


if __name__ == "__main__":
    found, reason = sdk_python()
    print(found or reason)
    raise SystemExit(0 if found else 1)
