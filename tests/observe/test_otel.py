"""OpenTelemetry spans and metrics from real calls to the emulator (SDK in memory)."""

from __future__ import annotations

import pytest

from aiolens import AsyncArchetypeClient, NotFoundError
from aiolens.emulator import Emulator

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from aiolens.otel import OpenTelemetryObserver


async def test_rest_calls_become_client_spans_under_the_callers_span(emulator: Emulator) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    observer = OpenTelemetryObserver(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    tracer = tracer_provider.get_tracer("app")
    async with AsyncArchetypeClient(emulator.api_key, emulator.lens_url, observer=observer) as c:
        with tracer.start_as_current_span("handler") as parent:
            await c.lenses.metadata()
            with pytest.raises(NotFoundError):
                await c.sessions.destroy("lsn-nope")

    spans = {
        s.name.split(" ")[0] + " " + s.name.rsplit("/", 1)[-1]: s
        for s in exporter.get_finished_spans()
    }
    ok, failed = spans["GET metadata"], spans["POST destroy"]
    for span in (ok, failed):
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.start_time is not None and span.end_time is not None
        assert span.end_time >= span.start_time
    assert ok.attributes is not None and failed.attributes is not None
    assert ok.attributes["http.response.status_code"] == 200
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.attributes["http.response.status_code"] == 404
    assert failed.attributes["error.type"] == "NotFoundError"
    assert failed.status.status_code is StatusCode.ERROR
    assert emulator.api_key not in str([s.to_json() for s in exporter.get_finished_spans()])

    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = [
        m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "aiolens.request.duration"
    ]
    counts = sum(point.count for point in metric.data.data_points)  # type: ignore[attr-defined]
    assert counts == 2
