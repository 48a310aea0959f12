"""Log lines are JSON, carry the trace they belong to, and never personal data."""

from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from linkwell.logs import JsonFormatter


def line(logger: logging.Logger, formatter: JsonFormatter, *args, **kwargs) -> dict:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger.addHandler(handler)
    try:
        logger.warning(*args, **kwargs)
    finally:
        logger.removeHandler(handler)
    return json.loads(formatter.format(records[0]))


def test_a_log_line_names_its_trace_and_masks_personal_data() -> None:
    formatter = JsonFormatter("referral-intake")
    logger = logging.getLogger("linkwell.test")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("handling") as span:
        entry = line(
            logger,
            formatter,
            "could not reach %s about 943 476 5919 on 07700 900123",
            "ann.smith@example.org",
            extra={"referral_id": "r-1"},
        )
    assert entry["service"] == "referral-intake" and entry["level"] == "warning"
    assert entry["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert entry["referral_id"] == "r-1"
    assert "9434765919" not in json.dumps(entry).replace(" ", "")
    assert "ann.smith" not in entry["message"] and "900123" not in entry["message"]
    assert entry["message"] == "could not reach [email] about [number] on [number]"


async def test_a_request_is_logged_once_inside_its_span_by_route_never_by_its_path() -> None:
    import httpx
    from fastapi import FastAPI
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from linkwell.telemetry import TracingMiddleware

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI()

    @app.get("/actions/{token}")
    async def action(token: str) -> dict:
        return {"ok": True}

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    app.add_middleware(TracingMiddleware, service="lw-test", tracer_provider=provider)
    formatter = JsonFormatter("referral-intake")
    lines: list[dict] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(formatter.format(record)))

    logger = logging.getLogger("linkwell.lw-test.http")
    logger.addHandler(handler := Keep())
    logger.setLevel(logging.INFO)
    token = "eyJhbGciOiJFUzI1NiJ9.eyJyZWYiOiJyLTEifQ.c2lnbmF0dXJlMTIz"
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            assert (await client.get(f"/actions/{token}")).status_code == 200
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/nowhere/8f0c2d5e-1111")).status_code == 404
    finally:
        logger.removeHandler(handler)

    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"GET /actions/{token}", "GET /healthz", "GET /nowhere/{id}"}
    assert [(e["message"], e["status"]) for e in lines] == [
        ("GET /actions/{token} 200", 200),
        ("GET /nowhere/{id} 404", 404),
    ]
    action_span = spans["GET /actions/{token}"]
    assert lines[0]["trace_id"] == f"{action_span.context.trace_id:032x}"
    assert lines[0]["span_id"] == f"{action_span.context.span_id:016x}"
    assert token not in json.dumps(lines) + json.dumps(
        [dict(s.attributes or {}) | {"name": s.name} for s in spans.values()]
    )
