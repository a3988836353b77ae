"""One REST call as observers see it (:mod:`aiolens.observe`): its timing, its latest
answer and how many attempts it took."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import aiohttp

from aiolens.observe import Observer, RawResponse, RequestSample, notify_request

__all__ = ["Exchange"]


@dataclass(slots=True)
class Exchange:
    """One REST call as observers see it: started when made, its latest answer."""

    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    response: aiohttp.ClientResponse | None = None
    attempts: int = 0

    def finished(self, observer: Observer | None, error: BaseException | None) -> None:
        """Report the call to ``observer`` and to :func:`~aiolens.observe.capture_responses`."""
        elapsed = time.perf_counter() - self.started
        raw = None
        if self.response is not None:
            resp = self.response
            raw = RawResponse(
                method=self.method,
                url=str(resp.url),
                status=resp.status,
                headers=resp.headers,
                request_id=resp.headers.get("X-Request-ID"),
                elapsed=elapsed,
                attempts=self.attempts,
            )
        name = f"{self.method} {self.response.url.path if self.response else self.path}"
        notify_request(observer, RequestSample("http", name, elapsed, error, raw))
