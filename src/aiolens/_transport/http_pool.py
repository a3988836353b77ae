"""The aiohttp session behind a transport and its copies, and the rate-limit window
they share.

A :class:`PoolHolder` creates the :class:`aiohttp.ClientSession` on first use, inside
the running event loop; a holder made by :meth:`PoolHolder.borrow` (for
``with_options`` copies) uses its parent's session and never closes it. The
:class:`RateLimit` the server reported last is kept on the root holder, so every
copy sees the same window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from aiolens._transport.event_loop import running_loop
from aiolens.errors import APIConnectionError

__all__ = ["PoolHolder", "RateLimit"]


@dataclass(slots=True)
class PoolHolder:
    """The aiohttp session of a transport, created lazily inside the event loop.

    A holder made by :meth:`borrow` (for ``with_options`` copies) uses its
    parent's session and never closes it.
    """

    session: aiohttp.ClientSession | None
    owned: bool
    parent: PoolHolder | None = None
    closed: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    rate_limit: RateLimit | None = None  # kept on the root holder, shared by copies

    def root(self) -> PoolHolder:
        holder = self
        while holder.parent is not None:
            holder = holder.parent
        return holder

    async def get(self) -> aiohttp.ClientSession:
        if self.closed:
            raise APIConnectionError("The client is closed.", sent=False)
        if self.parent is not None:
            return await self.parent.get()
        if self.session is None:
            running_loop()  # a clear error under trio, not aiohttp's RuntimeError
            async with self.lock:
                if self.session is None:
                    self.session = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
                    )
        return self.session

    def borrow(self) -> PoolHolder:
        return PoolHolder(None, owned=False, parent=self)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.owned and self.session is not None:
            await self.session.close()


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The ``RateLimit-*`` headers of the server's latest answer (docs/protocol-notes.md).

    Attributes:
        limit: requests allowed in the window (``RateLimit-Limit``).
        remaining: requests left in it (``RateLimit-Remaining``).
        reset: seconds until the window resets, as of ``observed_at``
            (``RateLimit-Reset``).
        observed_at: :func:`time.monotonic` when the answer arrived.
    """

    limit: int
    remaining: int
    reset: float
    observed_at: float

    @property
    def resets_in(self) -> float:
        """Seconds from now until the window resets (0 once it has)."""
        return max(0.0, self.reset - (time.monotonic() - self.observed_at))

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        """Read the three headers; ``None`` when one is missing or unreadable."""
        values: list[str] = []
        for name in ("Limit", "Remaining", "Reset"):
            value = headers.get(f"RateLimit-{name}")
            if value is None:
                return None
            values.append(value.split(",")[0].split(";")[0].strip())  # "100;w=60": 100
        try:
            return cls(int(values[0]), int(values[1]), float(values[2]), time.monotonic())
        except ValueError:
            return None
