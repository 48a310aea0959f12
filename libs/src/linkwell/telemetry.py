"""Traces that follow one referral through every service.

With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans go to an OpenTelemetry collector. Without it (the
embedded default) each service appends its spans as JSON lines to one local file, which
`linkwell trace <referral-id>` reads back as a tree. Spans carry ids and codes, never personal data.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a file shared by every service of the network."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            lines.append(
                json.dumps(
                    {
                        "trace_id": f"{ctx.trace_id:032x}",
                        "span_id": f"{ctx.span_id:016x}",
                        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
                        "name": span.name,
                        "kind": span.kind.name if span.kind else None,
                        "service": span.resource.attributes.get("service.name"),
                        "start": span.start_time,
                        "end": span.end_time,
                        "status": span.status.status_code.name,
                        "attributes": {k: _plain(v) for k, v in (span.attributes or {}).items()},
                    },
                    separators=(",", ":"),
                )
            )
        data = ("\n".join(lines) + "\n").encode()
        with self._lock:
            # O_APPEND keeps whole lines from several processes from interleaving
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def current_trace_id() -> str | None:
    """The id of the trace being recorded now (for audit records), if any."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


def default_trace_file() -> Path:
    return Path(os.environ.get("LINKWELL_TRACE_FILE", "data/traces/spans.jsonl")).resolve()


def setup_tracing(service: str, otlp_endpoint: str | None = None) -> TracerProvider:
    """Install the process's tracer provider. Called from `__main__`, never at import."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces"))
        )
    else:
        # simple processor: a span is on disk when the work it describes is done, so a
        # trace survives the process being killed
        provider.add_span_processor(
            SimpleSpanProcessor(JsonLinesSpanExporter(default_trace_file()))
        )
    trace.set_tracer_provider(provider)
    return provider


QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: no log line
_ID_LIKE = re.compile(r"[0-9]|^.{25,}$")


class TracingMiddleware:
    """A server span per HTTP request, joining the caller's trace when it sends `traceparent`,
    and one log line per request inside it (so the line carries the trace and span ids).

    Spans and log lines name the route template (`/fhir/Task/{referral_id}`), never the path
    as sent: a path can hold a one-time action token."""

    def __init__(
        self, app: ASGIApp, service: str, tracer_provider: trace.TracerProvider | None = None
    ) -> None:
        self.app = app
        self.tracer = trace.get_tracer(f"linkwell.{service}.http", tracer_provider=tracer_provider)
        self.log = logging.getLogger(f"linkwell.{service}.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        parent = propagate.extract(carrier)
        path = scope.get("path", "")
        method = scope["method"]
        began = time.perf_counter()
        with self.tracer.start_as_current_span(
            f"{method} {_path_template(path)}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:
            status: dict[str, int] = {}

            async def send_with_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_with_status)
            finally:
                route = getattr(scope.get("route"), "path", None) or _path_template(path)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                if path not in QUIET_PATHS:
                    code = status.get("code", 500)
                    self.log.log(
                        logging.WARNING if code >= 500 else logging.INFO,
                        "%s %s %d",
                        method,
                        route,
                        code,
                        extra={
                            "http_method": method,
                            "route": route,
                            "status": code,
                            "ms": round((time.perf_counter() - began) * 1000, 1),
                        },
                    )


def _path_template(path: str) -> str:
    """A path with anything id-like (digits, or long) replaced, for requests no route matched."""
    parts = path.strip("/").split("/")
    return "/" + "/".join(
        p if i == 0 or not _ID_LIKE.search(p) else "{id}" for i, p in enumerate(parts)
    )


# ---------------------------------------------------------------- reading traces back


def read_spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    spans = []
    with path.open() as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    spans.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut short by a killed process
    return spans


def referral_traces(spans: Iterable[dict[str, Any]], referral_id: str) -> dict[str, list[dict]]:
    """trace id -> spans, for every trace that touched the referral."""
    spans = list(spans)
    trace_ids = {
        s["trace_id"] for s in spans if s["attributes"].get("linkwell.referral_id") == referral_id
    }
    grouped: dict[str, list[dict]] = defaultdict(list)
    for span in spans:
        if span["trace_id"] in trace_ids:
            grouped[span["trace_id"]].append(span)
    return dict(grouped)


def render_tree(spans: list[dict[str, Any]]) -> str:
    by_parent: dict[str | None, list[dict]] = defaultdict(list)
    ids = {s["span_id"] for s in spans}
    for span in spans:
        parent = span["parent_id"] if span["parent_id"] in ids else None
        by_parent[parent].append(span)
    start0 = min(s["start"] for s in spans)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(by_parent.get(parent, []), key=lambda s: s["start"]):
            offset = (span["start"] - start0) / 1e6
            took = (span["end"] - span["start"]) / 1e6
            lines.append(
                f"{'  ' * depth}{span['service']:<16} {span['name']}  "
                f"+{offset:.1f}ms ({took:.1f}ms){'' if span['status'] != 'ERROR' else ' ERROR'}"
            )
            walk(span["span_id"], depth + 1)

    walk(None, 0)
    return "\n".join(lines)
