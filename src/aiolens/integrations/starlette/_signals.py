"""Shutdown signals: a handler chained onto SIGINT and SIGTERM that ends the relays first.

Servers wait for running responses before they run the lifespan's shutdown,
and an SSE response never ends by itself; so the handler calls ``stop`` (which
ends every relay), then whatever handler was there before (the server's own),
so the server goes on with its shutdown.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import types
from collections.abc import Callable
from typing import Any, Final

_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


def chain_signal_handlers(stop: Callable[[], None]) -> dict[int, Any]:
    """Install the handlers; returns the previous ones (for :func:`restore_signal_handlers`).

    Does nothing outside the main thread (signals reach the main thread only; a
    ``TestClient`` runs the app elsewhere). A previous default handler is
    re-raised as the default, so SIGINT still interrupts.
    """
    previous_handlers: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous_handlers
    for sig in _SIGNALS:
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: types.FrameType | None, previous: Any = previous) -> None:
            stop()
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)

        previous_handlers[sig] = previous
        signal.signal(sig, handler)
    return previous_handlers


def restore_signal_handlers(handlers: dict[int, Any]) -> None:
    """Put back the handlers :func:`chain_signal_handlers` replaced (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, previous in handlers.items():
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(sig, previous)
