"""``async with`` for objects that close with ``aclose()``."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncClosing"]


class AsyncClosing:
    """A base for objects with an ``aclose()``: ``async with obj:`` closes ``obj`` at the end.

    ``__aenter__`` returns the object itself (it is already open, or opened by the
    call that made it); ``__aexit__`` awaits :meth:`aclose`, whether the block ended
    normally, with an exception or by a cancel, and does not suppress the exception.
    What happens on cancel and timeout while closing is the subclass's :meth:`aclose`'s.
    """

    __slots__ = ()

    async def aclose(self) -> None:
        """Close the object; subclasses implement it (idempotent)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
