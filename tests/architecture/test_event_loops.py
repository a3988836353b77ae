"""aiolens runs on asyncio: under ``anyio.run`` (asyncio backend) it works as under
``asyncio.run``; under trio it fails at once with a :class:`ConfigurationError` that
says so, not with aiohttp's ``RuntimeError: no running event loop``."""

from __future__ import annotations

import anyio
import pytest

from aiolens import AsyncArchetypeClient, ConfigurationError
from aiolens.emulator import Emulator

IMAGE_QA_LENS = "lns-fd669361822b07e2-237ab3ffd79199b0"


def test_anyio_run_on_the_asyncio_backend_runs_a_session() -> None:
    async def main() -> tuple[str, int]:
        async with (
            Emulator() as emu,
            AsyncArchetypeClient(api_key=emu.api_key, base_url=emu.lens_url) as client,
            client.session(IMAGE_QA_LENS) as session,
        ):
            await session.validate()
            active = await client.sessions.metadata()
            return session.session_id, len(active)

    session_id, active = anyio.run(main, backend="asyncio")
    assert session_id and active == 1


@pytest.mark.parametrize("how", ["async with", "first request"])
def test_trio_fails_at_once_saying_aiolens_needs_asyncio(how: str) -> None:
    pytest.importorskip("trio")

    async def main() -> None:
        client = AsyncArchetypeClient(api_key="k" * 16, base_url="http://127.0.0.1:9")
        if how == "async with":
            async with client:
                pass  # pragma: no cover - never reached
        else:
            await client.lenses.metadata()

    with pytest.raises(ConfigurationError, match="needs a running asyncio event loop"):
        anyio.run(main, backend="trio")
