"""A pytest plugin for testing your own application against the emulator.

Installed with ``pip install "aiolens[testing]"``, pytest loads it by itself
(entry point ``pytest11``; ``-p no:aiolens`` turns it off). Each test that
asks for one of these fixtures gets a fresh emulator on 127.0.0.1 (random
port), stopped after the test:

Sync fixtures (any test, including FastAPI's ``TestClient``):

* ``aiolens_emulator_thread`` — an :class:`~aiolens.emulator.EmulatorThread`:
  the emulator on its own event loop in a background thread, so sync code and
  apps running on other loops can use it; read its state with
  ``aiolens_emulator_thread.call(lambda: ...)``.
* ``aiolens_env`` — the same, with ``ATAI_API_KEY``, ``ATAI_API_ENDPOINT``,
  ``KYNASMITH_API_KEY`` and ``KYNASMITH_BASE_URL`` pointing at it for the
  test's duration, so an app that builds its clients from the environment
  (``AsyncArchetypeClient()``) talks to it unchanged.

Async fixtures (need pytest-asyncio; mark the test ``@pytest.mark.asyncio``
or set ``asyncio_mode = "auto"``):

* ``aiolens_emulator`` — an :class:`~aiolens.emulator.Emulator` on the
  test's loop;
* ``archetype_client`` / ``kynasmith_client`` — clients bound to it, closed
  after the test.

Nothing is imported until a fixture is used, so the plugin costs a project
that does not use it nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aiolens.archetype.client import AsyncArchetypeClient
    from aiolens.emulator import Emulator, EmulatorThread
    from aiolens.kynasmith.client import AsyncKynasmithClient

__all__ = [
    "aiolens_emulator",
    "aiolens_emulator_thread",
    "aiolens_env",
    "archetype_client",
    "kynasmith_client",
]


@pytest.fixture
def aiolens_emulator_thread() -> Iterator[EmulatorThread]:
    """An :class:`~aiolens.emulator.EmulatorThread`, running for the test (sync fixture)."""
    from aiolens.emulator import EmulatorThread

    with EmulatorThread() as emu:
        yield emu


@pytest.fixture
def aiolens_env(
    aiolens_emulator_thread: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> EmulatorThread:
    """``aiolens_emulator_thread``, with the clients' environment variables set to it."""
    for name, value in aiolens_emulator_thread.environ().items():
        monkeypatch.setenv(name, value)
    return aiolens_emulator_thread


def _async_fixture(fn: Any) -> Any:
    """``pytest_asyncio.fixture``; without pytest-asyncio, a fixture that says what is missing."""
    try:
        import pytest_asyncio
    except ImportError:

        @pytest.fixture(name=fn.__name__)
        def missing() -> None:
            pytest.fail(
                f"The {fn.__name__} fixture is async and needs pytest-asyncio: "
                "pip install 'aiolens[testing]' (or use the sync aiolens_env fixture)",
                pytrace=False,
            )

        missing.__doc__ = fn.__doc__
        return missing
    return pytest_asyncio.fixture(loop_scope="function")(fn)


@_async_fixture
async def aiolens_emulator() -> AsyncIterator[Emulator]:
    """A running :class:`~aiolens.emulator.Emulator` on the test's loop, stopped after it."""
    from aiolens.emulator import Emulator

    async with Emulator() as emu:
        yield emu


@_async_fixture
async def archetype_client(aiolens_emulator: Emulator) -> AsyncIterator[AsyncArchetypeClient]:
    """An :class:`AsyncArchetypeClient` bound to the test's emulator."""
    from aiolens.archetype.client import AsyncArchetypeClient

    async with AsyncArchetypeClient(aiolens_emulator.api_key, aiolens_emulator.lens_url) as c:
        yield c


@_async_fixture
async def kynasmith_client(aiolens_emulator: Emulator) -> AsyncIterator[AsyncKynasmithClient]:
    """An :class:`AsyncKynasmithClient` bound to the test's emulator."""
    from aiolens.kynasmith.client import AsyncKynasmithClient

    async with AsyncKynasmithClient(
        aiolens_emulator.kynasmith_api_key, base_url=aiolens_emulator.kynasmith_url
    ) as c:
        yield c
