"""examples/fastapi_app.py under uvicorn, in headless Chromium, against the emulator."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from aiolens.emulator import Emulator
from tests.integrations.serving import CHROMIUM, Browser, chromium, uvicorn_app

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs the Debian chromium package (.ci/run installs it)"
)

EVENTS_IN_DOM = "document.querySelectorAll('#events li').length"
SESSION_ON_PAGE = "document.getElementById('session').textContent"


async def until(condition: object, what: str, timeout: float = 120.0) -> None:
    """Poll ``condition()`` (sync or async) until true; fail naming ``what`` after ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            value = condition()  # type: ignore[operator]
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(what)  # pragma: no cover


async def open_page(browser: Browser, url: str) -> tuple[str, str, str]:
    """Load the page; wait for its session and three events in the DOM."""
    target, cdp = await browser.open(url)
    await until(lambda: browser.evaluate(cdp, f"{EVENTS_IN_DOM} >= 3"), "events in the page's DOM")
    session_id: str = await browser.evaluate(cdp, SESSION_ON_PAGE)
    return target, cdp, session_id


async def test_example_app_in_chromium(tmp_path: Path) -> None:
    async with Emulator(event_interval=0.2) as emu:
        env = {
            "ATAI_API_KEY": emu.api_key,
            "ATAI_API_ENDPOINT": emu.lens_url,
            "APP_LINGER": "1",
            "APP_ROWS": "5000",  # 500 events, 0.2 s apart: still streaming at the end
        }

        def active() -> set[str]:
            return {s.session_id for s in emu.lens.active_sessions()}

        async with (
            uvicorn_app("examples.fastapi_app:app", env) as server,
            chromium(tmp_path / "profile") as browser,
        ):
            first, cdp, first_id = await open_page(browser, server.url)
            assert first_id in active()
            kinds = await browser.evaluate(
                cdp, "[...document.querySelectorAll('#events li')].map(li => li.className)"
            )
            assert kinds[0] == "sse.stream.start" and "log.info" in kinds

            # Close the page: its session is destroyed, the other one is untouched.
            _, _, second_id = await open_page(browser, server.url)
            await browser.close(first)
            await until(lambda: first_id not in active(), "the closed page's session destroyed")
            assert second_id in active()

            # SIGTERM with a page still streaming: uvicorn exits, nothing is left.
            code = await server.stop(signal.SIGTERM)
            # uvicorn re-raises the signal once shut down: death by SIGTERM is its clean exit
            assert code == -signal.SIGTERM, server.output
            assert "Application shutdown complete" in server.output
            assert active() == set(), server.output
