"""The worker's telemetry: Temporal runtime (Prometheus), tracing, Xprizo call meter.

Everything is off by default. ``metrics_address`` turns on one Prometheus endpoint that
serves the SDK's own metrics, the deposit metrics the workflow records, and the Xprizo
call metrics; ``tracing_enabled`` sends OpenTelemetry spans to an OTLP/HTTP collector.
"""

from __future__ import annotations

import logging
import re
import time

import httpx
from temporalio.common import MetricMeter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from deposits import metrics
from deposits.settings import Settings

log = logging.getLogger(__name__)

_NUMERIC_SEGMENT = re.compile(r"^\d+$")
_tracing_plugins: list | None = None


def worker_runtime(settings: Settings) -> Runtime:
    """A Temporal runtime exporting metrics on the settings' address, when one is set.

    The SDK core's own log lines go through Python logging, so they share the
    process's format (JSON when asked for) and its redaction.
    """
    telemetry = TelemetryConfig(
        logging=LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
            forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
        ),
        metrics=(
            PrometheusConfig(
                bind_address=settings.metrics_address,
                histogram_bucket_overrides=metrics.BUCKETS,
            )
            if settings.metrics_address
            else None
        ),
        global_tags={"service": settings.service_name},
    )
    if settings.metrics_address:
        log.info("metrics on http://%s/metrics", settings.metrics_address)
    return Runtime(telemetry=telemetry)


def tracing_plugins(settings: Settings) -> list:
    """Temporal's OpenTelemetry plugin and an OTLP exporter, once per process; or []."""
    global _tracing_plugins
    if not settings.tracing_enabled:
        return []
    if _tracing_plugins is None:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from temporalio.contrib.opentelemetry import (
            OpenTelemetryPlugin,
            create_tracer_provider,
        )

        provider = create_tracer_provider(
            resource=Resource.create({"service.name": settings.service_name})
        )
        exporter = OTLPSpanExporter(endpoint=settings.tracing_otlp_endpoint)
        provider.add_span_processor(
            BatchSpanProcessor(redacting_exporter(exporter, _redactor(settings)))
        )
        trace.set_tracer_provider(provider)
        _tracing_plugins = [OpenTelemetryPlugin(add_temporal_spans=True)]
        log.info("tracing to %s", settings.tracing_otlp_endpoint)
    return list(_tracing_plugins)


def _redactor(settings: Settings):
    from deposits.logs import Redactor

    secrets = [
        settings.xprizo_api_key.get_secret_value(),
        settings.webhook_secret.get_secret_value(),
    ]
    if settings.api_token is not None:
        secrets.append(settings.api_token.get_secret_value())
    return Redactor(secrets)


def redacting_exporter(inner, redact):
    """A span exporter that masks phones and blanks secrets in every span it passes on.

    Instrumented HTTP servers record the request path, and the callback path carries
    the webhook secret; spans are rebuilt with their text values redacted.
    """
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

    def clean(attributes):
        return {
            key: redact(value) if isinstance(value, str) else value
            for key, value in (attributes or {}).items()
        }

    def rebuilt(span):
        return ReadableSpan(
            name=redact(span.name),
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=clean(span.attributes),
            events=[
                Event(e.name, clean(e.attributes), e.timestamp) for e in span.events
            ],
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    class RedactingExporter(SpanExporter):
        def export(self, spans):
            return inner.export([rebuilt(span) for span in spans])

        def shutdown(self):
            return inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return inner.force_flush(timeout_millis)

    return RedactingExporter()


def flush_traces(*, shutdown: bool = False) -> None:
    """Send the spans still buffered; a stopping process calls it last.

    With ``shutdown`` the exporter stops too, so nothing retries against a collector
    that is gone while the interpreter exits.
    """
    if _tracing_plugins is None:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush(timeout_millis=5000)
    if shutdown and hasattr(provider, "shutdown"):
        provider.shutdown()


def endpoint_label(path: str, base_path: str) -> str:
    """The endpoint part of a request path, with ids folded so labels stay few."""
    relative = path[len(base_path) :] if path.startswith(base_path) else path
    segments = [s for s in relative.split("/") if s]
    return "/".join("{id}" if _NUMERIC_SEGMENT.match(s) else s for s in segments)


class MeteredTransport(httpx.AsyncBaseTransport):
    """An httpx transport counting and timing every Xprizo call by endpoint and status.

    A transport, not an event hook, so timeouts and refused connections are counted
    too (status ``timeout`` / ``error``): those never produce a response to hook on.
    """

    def __init__(
        self,
        meter: MetricMeter,
        base_url: str,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._base_path = httpx.URL(base_url.rstrip("/") + "/").path
        self._calls = meter.create_counter(
            metrics.XPRIZO_CALLS, "Xprizo API calls by endpoint and status"
        )
        self._duration = meter.create_histogram_float(
            metrics.XPRIZO_CALL_DURATION, "Seconds per Xprizo API call", "s"
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        labels = {
            "endpoint": endpoint_label(request.url.path, self._base_path),
            "method": request.method,
        }
        started = time.monotonic()
        status = "error"
        try:
            response = await self._inner.handle_async_request(request)
            status = str(response.status_code)
            return response
        except httpx.TimeoutException:
            status = "timeout"
            raise
        finally:
            self._calls.add(1, {**labels, "status": status})
            self._duration.record(time.monotonic() - started, labels)

    async def aclose(self) -> None:
        await self._inner.aclose()
