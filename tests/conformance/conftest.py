"""The official SDK's interpreter, shared by the conformance tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conformance.sdk_venv import sdk_python


@pytest.fixture(scope="session")
def sdk() -> Path:
    """The SDK venv's python; skipped (failed under ``$CI``) when it cannot be made."""
    python, why = sdk_python()
    if python is None:
        if os.environ.get("CI"):
            pytest.fail(f"the official SDK is needed in CI: {why}")
        pytest.skip(why)
    return python
