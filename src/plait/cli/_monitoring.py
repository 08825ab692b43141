"""``plait run --trace`` and ``--metrics-port``: exporters and a metrics endpoint for one command.

The Python API leaves exporters to the application: spans go through the globally configured
tracer provider. A command has no application around it, so with ``--trace`` it sets one up
from the standard OpenTelemetry environment variables when none is set and the SDK is
installed: ``OTEL_TRACES_EXPORTER`` (``otlp``, the default, needs an OTLP exporter package;
``console``; ``none``), ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` for the resource,
and the exporter's own ``OTEL_EXPORTER_OTLP_*``. Spans are flushed when the command ends.
(Under ``opentelemetry-instrument plait run ...`` the provider it sets is used as it is.)
"""

# Every import of an optional dependency is made where it is used: `plait --help` loads none.
# ruff: noqa: PLC0415

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["metrics_server", "tracing_provider"]


@contextlib.contextmanager
def tracing_provider() -> Iterator[None]:
    """Set up a tracer provider from the environment, if none is set (see the module
    docstring); flush and shut it down afterwards."""
    import click
    from opentelemetry import trace

    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        yield  # someone (opentelemetry-instrument, sitecustomize) configured one: use it
        return
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise click.UsageError(
            "--trace needs a tracer provider: install the OpenTelemetry SDK "
            "(pip install opentelemetry-sdk), or run under opentelemetry-instrument"
        ) from None
    provider = TracerProvider(resource=Resource.create())
    for name in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(","):
        exporter = _exporter(name.strip())
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        provider.shutdown()  # exports what is left


def _exporter(name: str) -> Any:
    import click

    if name in ("", "none"):
        return None
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        kind = "grpc" if protocol == "grpc" else "http"
        try:
            module = importlib.import_module(
                f"opentelemetry.exporter.otlp.proto.{kind}.trace_exporter"
            )
        except ImportError:
            raise click.UsageError(
                "OTEL_TRACES_EXPORTER=otlp needs an exporter: pip install "
                "opentelemetry-exporter-otlp (or set OTEL_TRACES_EXPORTER=console)"
            ) from None
        return module.OTLPSpanExporter()
    raise click.UsageError(
        f"OTEL_TRACES_EXPORTER names {name!r}, which plait does not know; use otlp, console or none"
    )


@contextlib.contextmanager
def metrics_server(port: int) -> Iterator[None]:
    """Serve prometheus_client's default registry on ``port`` (``/metrics``) meanwhile."""
    import click

    try:
        from prometheus_client import start_http_server
    except ImportError:
        raise click.UsageError(
            "--metrics-port needs prometheus_client: pip install 'plait[prometheus]'"
        ) from None
    try:
        server, thread = start_http_server(port)
    except OSError as error:
        raise click.UsageError(f"--metrics-port {port}: cannot listen there ({error})") from None
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
