"""What a :class:`~aiolens.archetype.session.LensSession` needs from its client.

The session is typed against :class:`LensSessionHost` instead of
``AsyncArchetypeClient``, so ``archetype.client`` imports ``archetype.session``
and nothing imports back (no import cycle, not even a type-only one). It is the
type of the session's ``client`` attribute; the client that made the session is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aiolens._transport.client_base import SessionHost
from aiolens.archetype.resources import Sessions

__all__ = ["LensSessionHost"]


class LensSessionHost(SessionHost, Protocol):
    """The client of a Lens session: ``AsyncArchetypeClient`` is one."""

    sessions: Sessions
    """The sessions resource: the session destroys itself through it."""

    @property
    def auth_headers(self) -> Mapping[str, str]:
        """Headers that authenticate the WebSocket handshake."""
        ...
