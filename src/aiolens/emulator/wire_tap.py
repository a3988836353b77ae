"""Process-wide taps on what the emulator sends, for conformance checks.

A tap is called with every body and realtime message an emulated service
sends, as the bytes that went on the wire. The test suite adds one that
validates each against the vendor's contract models; nothing else uses it, and
with no tap added the cost is one empty-list check per answer.

Taps run synchronously in the emulator's event loop; one that raises breaks
the answer being sent, so keep them small and never raise on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["WireItem", "add_tap", "emit", "remove_tap", "tapped"]


@dataclass(frozen=True, slots=True)
class WireItem:
    """One body or message the emulator sent.

    Attributes:
        service: ``"kynasmith"`` (or ``"lens"``).
        channel: ``"rest"`` or ``"realtime"``.
        route: for REST the method and route pattern, e.g.
            ``"GET /api/detection/sessions/{session_id}"``; for realtime the
            stream route.
        status: the HTTP status (REST), 0 for realtime messages.
        body: the bytes sent.
    """

    service: str
    channel: str
    route: str
    status: int
    body: bytes


Tap = Callable[[WireItem], None]

_taps: Final[list[Tap]] = []


def add_tap(tap: Tap) -> None:
    """Call ``tap`` with every item every emulator in this process sends from now on."""
    _taps.append(tap)


def remove_tap(tap: Tap) -> None:
    """Stop calling ``tap`` (no error if it was not added)."""
    if tap in _taps:
        _taps.remove(tap)


def tapped() -> bool:
    """Whether any tap is listening (lets senders skip building items)."""
    return bool(_taps)


def emit(item: WireItem) -> None:
    """Hand ``item`` to every tap."""
    for tap in list(_taps):
        tap(item)
