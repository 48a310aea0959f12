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
