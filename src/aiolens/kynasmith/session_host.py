"""What a :class:`~aiolens.kynasmith.session.DetectionSession` needs from its client.

The session is typed against :class:`DetectionSessionHost` instead of
``AsyncKynasmithClient``, so ``kynasmith.client`` imports ``kynasmith.session``
and nothing imports back (no import cycle, not even a type-only one). It is the
type of the session's ``client`` attribute; the client that made the session is one.
"""

from __future__ import annotations

from typing import Protocol

from aiolens._transport.client_base import SessionHost
from aiolens.kynasmith.resources import DetectionSessions

__all__ = ["DetectionSessionHost"]


class DetectionSessionHost(SessionHost, Protocol):
    """The client of a detection session: ``AsyncKynasmithClient`` is one."""

    sessions: DetectionSessions
    """The detection sessions resource: the session cancels itself through it."""
