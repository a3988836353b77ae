"""OpenTelemetry spans and metrics for aiolens (extra: ``pip install 'aiolens[otel]'``).

::

    from aiolens.otel import OpenTelemetryObserver

    client = AsyncArchetypeClient(observer=OpenTelemetryObserver())

Every REST call and every realtime request becomes a ``CLIENT`` span named after it
(``GET /lens/metadata``, ``session.status``), a child of the span current in the
calling task, with the HTTP method, status and request id, and an error status
when it failed. Metrics: the histogram ``aiolens.request.duration`` (seconds, by
transport, operation and error type) and the counter
``aiolens.connection.transitions`` (by new state), whose ``reconnecting`` count is
the reconnects. Connection changes are also recorded as events on the span current
in the task that saw them. Providers default to the global ones.

Only the OpenTelemetry API is needed; install and configure an SDK (exporters) as
your application does.
"""

from __future__ import annotations

import time
from typing import Any

from aiolens._extras import require_extra

require_extra("otel", "aiolens.otel", "opentelemetry")

from opentelemetry import metrics, trace  # noqa: E402
from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: E402

from aiolens.observe import ConnectionEvent, Observer, RequestSample  # noqa: E402

__all__ = ["OpenTelemetryObserver"]

_SCOPE = "aiolens"


class OpenTelemetryObserver(Observer):
    """An :class:`~aiolens.observe.Observer` that reports to OpenTelemetry.

    Args:
        tracer_provider: where spans go (default: the global provider).
        meter_provider: where metrics go (default: the global provider).
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        from aiolens import __version__

        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "aiolens.request.duration",
            unit="s",
            description="Duration of aiolens REST calls (retries included) and realtime requests",
        )
        self._transitions = meter.create_counter(
            "aiolens.connection.transitions",
            unit="{transition}",
            description="Realtime channel state changes, by the new state",
        )

    def request_finished(self, sample: RequestSample) -> None:
        """Record ``sample`` as a span that started ``duration`` ago and a histogram point."""
        end = time.time_ns()
        attributes: dict[str, Any] = {"aiolens.transport": sample.transport}
        response = sample.response
        if response is not None:
            attributes["http.request.method"] = response.method
            attributes["http.response.status_code"] = response.status
            attributes["url.full"] = response.url
            attributes["aiolens.attempts"] = response.attempts
            if response.request_id:
                attributes["aiolens.request_id"] = response.request_id
        status = getattr(sample.error, "status", None)
        if isinstance(status, int):
            attributes["http.response.status_code"] = status
        metric_attributes: dict[str, Any] = {
            "aiolens.transport": sample.transport,
            "aiolens.operation": sample.name,
        }
        if sample.error is not None:
            error_type = type(sample.error).__qualname__
            attributes["error.type"] = metric_attributes["error.type"] = error_type
        span = self._tracer.start_span(
            sample.name,
            kind=SpanKind.CLIENT,
            start_time=end - int(sample.duration * 1e9),
            attributes=attributes,
        )
        if sample.error is not None:
            # aiolens messages are redacted already; other exceptions keep only their type
            message = str(sample.error) if _is_ours(sample.error) else ""
            span.set_status(Status(StatusCode.ERROR, message[:300] or None))
        span.end(end_time=end)
        self._duration.record(sample.duration, metric_attributes)

    def connection_changed(self, event: ConnectionEvent) -> None:
        """Count the transition and note it on the current span."""
        self._transitions.add(1, {"aiolens.connection.state": event.state.value})
        attributes: dict[str, Any] = {
            "aiolens.channel": event.channel,
            "aiolens.connection.state": event.state.value,
            "aiolens.attempt": event.attempt,
        }
        if event.delay is not None:
            attributes["aiolens.delay"] = event.delay
        if event.cause is not None:
            attributes["error.type"] = type(event.cause).__qualname__
        trace.get_current_span().add_event(f"aiolens.connection.{event.state.value}", attributes)


def _is_ours(error: BaseException) -> bool:
    from aiolens.errors import AiolensError

    return isinstance(error, AiolensError)
