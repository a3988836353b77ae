"""The core install is the client; the emulator, the CLI and the fixtures are extras.

Each test runs a fresh interpreter in which the extras' packages are blocked
(``sys.modules[name] = None`` makes ``import name`` fail as if it were not
installed), so what a user without the extra sees is what the test sees.
"""

from __future__ import annotations

import subprocess
import sys

EXTRA_PACKAGES = (
    "yaml",
    "rich",
    "pytest",
    "pytest_asyncio",
    "redis",
    "starlette",
    "fastapi",
    "opentelemetry",
)


def _run_without(packages: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    block = "".join(f"sys.modules[{name!r}] = None\n" for name in packages)
    return subprocess.run(
        [sys.executable, "-c", f"import sys\n{block}{code}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_client_needs_no_extra() -> None:
    done = _run_without(
        EXTRA_PACKAGES,
        "import aiolens, aiolens.types, aiolens.observe\n"
        "import aiolens.archetype.models, aiolens.kynasmith.models\n"
        "aiolens.AsyncArchetypeClient(api_key='k' * 8, base_url='http://127.0.0.1:9')\n"
        "aiolens.AsyncKynasmithClient(api_key='kid_1:secret', base_url='http://127.0.0.1:9')\n"
        "leaked = [m for m in ('yaml', 'rich') if sys.modules.get(m)]\n"
        "assert not leaked, leaked\n",
    )
    assert done.returncode == 0, done.stderr


def test_the_emulator_without_its_extra_says_how_to_install_it() -> None:
    done = _run_without(("yaml",), "import aiolens.emulator")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("aiolens.errors.MissingExtraError: the aiolens emulator needs yaml")
    assert "pip install 'aiolens[emulator]'" in last


def test_the_command_without_its_extra_is_one_line_and_status_1() -> None:
    done = _run_without(("rich",), "import runpy\nrunpy.run_module('aiolens', run_name='__main__')")
    assert done.returncode == 1
    assert done.stdout == ""
    hint = "the aiolens command needs rich, which is not installed: pip install 'aiolens[cli]'"
    assert done.stderr == f"error: {hint}\n"


def test_missing_extra_error_is_an_import_error_too() -> None:
    from aiolens import ConfigurationError, MissingExtraError

    assert issubclass(MissingExtraError, ImportError)
    assert issubclass(MissingExtraError, ConfigurationError)


def test_otel_without_its_extra_says_how_to_install_it() -> None:
    done = _run_without(("opentelemetry",), "import aiolens.otel")
    assert done.returncode == 1
    assert "pip install 'aiolens[otel]'" in done.stderr.strip().splitlines()[-1]
