"""Fault injection for the emulator, for reliability tests.

Set knobs on ``emulator.faults`` (a :class:`Faults`) while the emulator runs;
every knob is read at the moment it applies, so tests can change them between
calls. The same settings can be posted as JSON to ``POST /_emulator/faults``
when the emulator runs in another process, with the emulator's Lens key
(``Authorization: Bearer <key>``; 401 without it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Faults", "HTTPFault"]


@dataclass(slots=True)
class HTTPFault:
    """Answer the next ``count`` matching HTTP requests with a failure (or slowly).

    Attributes:
        status: the status to answer (429, 503, 500 ...); ``0`` drops the
            connection without an answer instead; ``None`` is no failure: the
            request is processed at once and its real answer sent after ``delay``
            (a slow server, for "cancelled while waiting for the answer" tests).
        count: how many matching requests get the fault.
        path: a substring the request path must contain (``""`` matches all).
        method: the HTTP method to match (``""`` matches all).
        retry_after: the ``Retry-After`` header value to send, if any.
        after_processing: run the real handler first (its effect stays) and
            then fail: the "was my request processed?" case.
        delay: seconds to stall before answering.
    """

    status: int | None = 503
    count: int = 1
    path: str = ""
    method: str = ""
    retry_after: str | None = None
    after_processing: bool = False
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (not self.method or self.method.upper() == method.upper()) and self.path in path


@dataclass(slots=True)
class Faults:
    """All fault knobs of one emulator.

    Attributes:
        http: pending HTTP faults, consumed in order.
        ws_drop_after: close each realtime WebSocket abruptly after it has sent
            this many messages (``None``: never).
        sse_drop_after: close each SSE stream after this many events.
        reply_delay: seconds to wait before each WebSocket reply.
        malformed_after: send one malformed frame after this many messages on
            each WebSocket / SSE stream.
        detection_fail_after: fail each Kynasmith detection session once it has
            accepted this many frames: its socket gets an ``error`` and then a
            ``session_done`` with status ``failed`` ("fatal error", docs/protocol-notes.md).
        part_urls_expired: answer the next N presigned part PUTs ``403`` "Request
            has expired", as storage does when a URL's time is up.
        part_drop_after: abort the connection of the next part PUT after reading
            this many bytes of its body (``None``: never); used once.
        agent_fail_after: fail each agents batch run once it has processed this
            many windows (status ``failed``, error ``injected_failure``).
    """

    http: list[HTTPFault] = field(default_factory=list)
    ws_drop_after: int | None = None
    sse_drop_after: int | None = None
    reply_delay: float = 0.0
    malformed_after: int | None = None
    detection_fail_after: int | None = None
    part_urls_expired: int = 0
    part_drop_after: int | None = None
    agent_fail_after: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail_next(self, status: int | None = 503, **kwargs: Any) -> HTTPFault:
        """Queue an :class:`HTTPFault`; see its attributes for ``kwargs``."""
        fault = HTTPFault(status=status, **kwargs)
        with self._lock:
            self.http.append(fault)
        return fault

    def stall_next(self, delay: float, **kwargs: Any) -> HTTPFault:
        """Queue a slow answer: processed at once, answered after ``delay`` seconds."""
        return self.fail_next(None, delay=delay, **kwargs)

    def take_http(self, method: str, path: str) -> HTTPFault | None:
        """Consume one use of the first fault matching this request, if any."""
        with self._lock:
            for fault in self.http:
                if fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    if fault.count == 0:
                        self.http.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Remove every fault and reset the knobs."""
        with self._lock:
            self.http.clear()
        self.ws_drop_after = None
        self.sse_drop_after = None
        self.reply_delay = 0.0
        self.malformed_after = None
        self.detection_fail_after = None
        self.part_urls_expired = 0
        self.part_drop_after = None
        self.agent_fail_after = None

    def update(self, settings: dict[str, Any]) -> None:
        """Apply settings given as plain data (the ``/_emulator/faults`` body)."""
        for fault in settings.get("http", []):
            self.fail_next(**fault)
        for key in (
            "ws_drop_after",
            "sse_drop_after",
            "reply_delay",
            "malformed_after",
            "detection_fail_after",
            "part_urls_expired",
            "part_drop_after",
            "agent_fail_after",
        ):
            if key in settings:
                setattr(self, key, settings[key])
