"""The vendor's Kynasmith contract, loaded for the tests: ``kynasmith-contracts`` 0.1.0.

The package (and the vendor SDK's REST models, ``kynasmith/models.py``) need
Python >= 3.12 by their metadata but run on 3.11; pydantic comes with the
``test`` extra. On first use they are installed with ``pip install --no-deps
--ignore-requires-python --target .vendor/kynasmith-0.1.0`` (gitignored,
cached; set ``AIOLENS_KYNASMITH_VENDOR`` to use another folder). The SDK's
``kynasmith/__init__.py`` imports MediaPipe and OpenCV, so its ``models.py``
is loaded on its own: it needs only pydantic and the contract package.

:class:`ContractCheck` validates what the emulator sends (through
:mod:`aiolens.emulator.wire_tap`): REST bodies against the SDK's response
models (errors against ``PublicErrorEnvelope``), realtime messages against
``RealtimeServerMessageV1``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from aiolens.emulator.wire_tap import WireItem

ROOT = Path(__file__).resolve().parent.parent
VERSION = "0.1.0"
VENDOR_DIR = Path(
    os.environ.get("AIOLENS_KYNASMITH_VENDOR") or ROOT / ".vendor" / f"kynasmith-{VERSION}"
)

_SESSION = "/api/detection/sessions/{session_id}"
_SPEC = "/api/movespecs/{movespec_id}"
REST_MODELS: dict[str, tuple[str, bool]] = {
    # route → (SDK model name, answer is a list)
    "POST /api/auth/access-tokens": ("AccessToken", False),
    "POST /api/detection/sessions": ("DetectionSession", False),
    f"GET {_SESSION}": ("DetectionSessionRecord", False),
    f"POST {_SESSION}/finalize": ("DetectionSessionRecord", False),
    f"POST {_SESSION}/cancel": ("DetectionSessionRecord", False),
    "GET /api/movespecs": ("MoveSpec", True),
    "POST /api/movespecs": ("MoveSpec", False),
    f"GET {_SPEC}": ("MoveSpec", False),
    f"PATCH {_SPEC}": ("MoveSpec", False),
    f"GET {_SPEC}/draft": ("MoveSpecDraft", False),
    f"PUT {_SPEC}/draft": ("MoveSpecDraft", False),
    f"POST {_SPEC}/draft/validate": ("MoveSpecValidationResult", False),
    f"GET {_SPEC}/versions": ("MoveSpecVersion", True),
    f"POST {_SPEC}/versions": ("MoveSpecVersion", False),
    f"GET {_SPEC}/versions/{{version_id}}": ("MoveSpecVersion", False),
    f"POST {_SPEC}/versions/{{version_id}}/release": ("MoveSpec", False),
    f"POST {_SPEC}/fork": ("MoveSpec", False),
}
"""Each REST route's success body, as the vendor SDK 0.1.0 reads it."""
UNCOVERED = frozenset({"GET /api/health"})
"""Routes the contract has no model for (the health path is itself inferred)."""


@dataclass
class Vendor:
    """The loaded contract package and the SDK's REST models."""

    contracts: ModuleType
    sdk_models: ModuleType


_lock = threading.Lock()
_loaded: Vendor | str | None = None


def _install() -> None:
    tmp = VENDOR_DIR.with_name(VENDOR_DIR.name + f".tmp{os.getpid()}")
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--ignore-requires-python", "--target", str(tmp),
        f"kynasmith-contracts=={VERSION}", f"kynasmith=={VERSION}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip could not install the vendor packages: {done.stderr[-400:]}")
    VENDOR_DIR.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(VENDOR_DIR)
    except OSError:  # another run installed it meanwhile
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


def load() -> Vendor | str:
    """The vendor modules, or why they cannot be loaded (installed on first use)."""
    global _loaded
    with _lock:
        if _loaded is None:
            try:
                importlib.import_module("pydantic")
                if not (VENDOR_DIR / "kynasmith_contracts").is_dir():
                    _install()
                if str(VENDOR_DIR) not in sys.path:
                    sys.path.append(str(VENDOR_DIR))
                contracts = importlib.import_module("kynasmith_contracts")
                spec = importlib.util.spec_from_file_location(
                    "kynasmith_sdk_models", VENDOR_DIR / "kynasmith" / "models.py"
                )
                assert spec is not None and spec.loader is not None
                sdk_models = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = sdk_models  # pydantic resolves annotations there
                spec.loader.exec_module(sdk_models)
                _loaded = Vendor(contracts, sdk_models)
            except Exception as exc:  # any failure: the checks are skipped, with the reason
                _loaded = f"kynasmith-contracts {VERSION} unavailable: {exc}"
        return _loaded


@dataclass
class ContractCheck:
    """Validates every Kynasmith body and message the emulator sends (a wire tap)."""

    vendor: Vendor
    validated: Counter[str] = field(default_factory=Counter)
    """Per channel (``rest`` / ``realtime``), how many items passed or failed validation."""
    uncovered: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from pydantic import TypeAdapter

        sdk, contracts = self.vendor.sdk_models, self.vendor.contracts
        self._rest = {
            route: TypeAdapter(list[getattr(sdk, name)] if many else getattr(sdk, name))
            for route, (name, many) in REST_MODELS.items()
        }
        self._error = TypeAdapter(contracts.PublicErrorEnvelope)
        self._realtime = TypeAdapter(contracts.RealtimeServerMessageV1)

    def __call__(self, item: WireItem) -> None:
        if item.service != "kynasmith":
            return
        problem = self.problem(item)
        if problem == "uncovered":
            self.uncovered[item.route] += 1
            return
        self.validated[item.channel] += 1
        if problem:
            self.failures.append(f"{item.route} [{item.status}]: {problem}")

    def problem(self, item: WireItem) -> str | None:
        """Why ``item`` breaks the contract, ``"uncovered"`` without a model, else ``None``."""
        from pydantic import ValidationError

        adapter: Any
        if item.channel == "realtime":
            adapter = self._realtime
        elif item.status >= 400:
            adapter = self._error
        elif item.route in self._rest:
            adapter = self._rest[item.route]
        else:
            return "uncovered"
        try:
            adapter.validate_json(item.body)
        except ValidationError as exc:
            return f"{exc.errors()[:3]} in {item.body[:300]!r}"
        except Exception as exc:  # a tap must never break the emulator's answer
            return f"the check itself failed: {exc!r}"
        return None
