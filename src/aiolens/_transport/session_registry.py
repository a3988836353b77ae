"""The sessions a client owns: found by id while open, closed by the client's ``aclose()``.

A client registers every session object made through it (Lens sessions, Kynasmith
detection sessions) from construction until its close has finished, and counts the
opens in progress. :meth:`SessionRegistry.aclose` is what ``client.aclose()`` runs
before it closes the connection pool: it waits for opens in progress (a create whose
caller was cancelled is answered and undone), closes every session still open (its
own ``aclose``: destroy or cancel it server-side, or only disconnect an attached one)
and waits for closes already under way, so that none of them finds the pool closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar

from aiolens._core.redact import get_logger
from aiolens._transport.shielded import wait_to_completion
from aiolens.errors import APIConnectionError

__all__ = ["OwnedSession", "SessionRegistry", "connect_or_close"]

log = get_logger("sessions")


class OwnedSession(Protocol):
    """What the registry needs of a session."""

    @property
    def session_id(self) -> str: ...

    @property
    def client(self) -> object: ...

    async def aclose(self) -> None: ...


class _Connectable(Protocol):
    async def connect(self) -> None: ...

    async def aclose(self) -> None: ...


async def connect_or_close(session: _Connectable) -> None:
    """Connect a session just made; on any failure or cancel close it, then re-raise.

    Its ``aclose`` destroys or cancels what it owns server-side, so a session whose
    socket never opened is not left running. Cancel: the close runs to its end (it is
    shielded), then :class:`asyncio.CancelledError` is raised.
    """
    try:
        await session.connect()
    except BaseException:
        await session.aclose()
        raise


S = TypeVar("S", bound=OwnedSession)


class SessionRegistry(Generic[S]):
    """Sessions of one client, by id, and the work of opening and closing them.

    Args:
        what: how sessions are named in log lines (``"session"``, ``"detection session"``).
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._owned: dict[S, None] = {}  # insertion-ordered set
        self._by_id: dict[str, S] = {}
        self._view: Mapping[str, S] = MappingProxyType(self._by_id)
        self._opening: dict[asyncio.Future[None], float] = {}  # -> its undo bound
        self._closing: dict[asyncio.Future[None], str] = {}  # -> its session id
        self._close_task: asyncio.Future[None] | None = None

    @property
    def open(self) -> Mapping[str, S]:
        """The open sessions by id (a read-only live view)."""
        return self._view

    def holds(self, session_id: str) -> bool:
        """Whether a session of this id is open or still closing through the client."""
        return session_id in self._by_id or session_id in self._closing.values()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called: no session may be added any more."""
        return self._close_task is not None

    def _check_open(self) -> None:
        if self._close_task is not None:
            raise APIConnectionError("The client is closed.", sent=False)

    @contextlib.contextmanager
    def opening(self, undo_timeout: float) -> Iterator[None]:
        """Mark an open in progress; :meth:`aclose` waits (at most ``undo_timeout``) for it.

        Raises:
            APIConnectionError: the client is closed or closing (nothing was sent).
        """
        self._check_open()
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._opening[marker] = undo_timeout
        try:
            yield
        finally:
            del self._opening[marker]
            marker.set_result(None)

    def add(self, session: S) -> None:
        """Own ``session`` (the latest one made for an id is the one found by id).

        Raises:
            APIConnectionError: the client is closed or closing.
        """
        self._check_open()
        self._owned[session] = None
        self._by_id[session.session_id] = session

    def closing(self, session: S, close: asyncio.Future[None]) -> None:
        """``session`` is closing (``close`` is its closing job): it is no longer found by
        id, and :meth:`aclose` waits for ``close`` to finish."""
        self._owned.pop(session, None)
        if self._by_id.get(session.session_id) is session:
            del self._by_id[session.session_id]
            for other in self._owned:  # another object for the same id, if any
                if other.session_id == session.session_id:
                    self._by_id[other.session_id] = other
        self._closing[close] = session.session_id
        close.add_done_callback(self._closing.pop)

    async def aclose(self) -> None:
        """Close every session of the client, then return. Idempotent.

        Opens in progress are waited for first (each at most its ``undo_timeout``): a
        session they make is then closed with the rest. Each session's own
        ``aclose`` bounds its close (``destroy_timeout`` / ``cancel_timeout``); a
        session that could not be destroyed or cancelled is logged, one line each.

        Cancel: the work runs to its end (shielded), then
        :class:`asyncio.CancelledError` is raised.
        """
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close_all())
        await wait_to_completion(self._close_task)

    async def _close_all(self) -> None:
        if self._opening:
            _, late = await asyncio.wait(self._opening, timeout=max(self._opening.values()))
            if late:
                log.warning(
                    "%d %s open(s) still in progress at client close; "
                    "a session they make may be left running",
                    len(late),
                    self._what,
                )
        await self.close_sessions()

    async def close_sessions(self, client: object | None = None) -> None:
        """Close the open sessions (only those made through ``client``, when given) and
        wait for every close under way. For a ``with_options`` copy's ``aclose()``.

        Cancel: the closes go on (each is shielded); this raises
        :class:`asyncio.CancelledError` at once.
        """
        owned = [s for s in self._owned if client is None or s.client is client]
        results = await asyncio.gather(*(s.aclose() for s in owned), return_exceptions=True)
        for session, result in zip(owned, results, strict=True):
            if isinstance(result, BaseException):
                log.warning(
                    "%s %s: close failed at client close: %r",
                    self._what,
                    session.session_id,
                    result,
                )
        if self._closing:
            await asyncio.wait(list(self._closing))
