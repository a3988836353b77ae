"""aiolens runs on asyncio: the check that says so clearly.

aiohttp and websockets' asyncio API need an asyncio event loop. Under
``anyio.run(main)`` (asyncio backend, the default) that loop exists and aiolens
works as under ``asyncio.run``; under trio (``anyio.run(main, backend="trio")``
or ``trio.run``) there is none, and without this check the first request fails
deep inside aiohttp with ``RuntimeError: no running event loop``.
"""

from __future__ import annotations

import asyncio

from aiolens.errors import ConfigurationError

__all__ = ["running_loop"]


def running_loop() -> asyncio.AbstractEventLoop:
    """The running asyncio loop, or :class:`ConfigurationError` saying aiolens needs one."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigurationError(
            "aiolens needs a running asyncio event loop (aiohttp and websockets are "
            "asyncio libraries): run it with asyncio.run() or anyio.run() on the asyncio "
            "backend; under trio, use trio-asyncio"
        ) from None
