"""What every service counts, for Prometheus at GET /metrics: messages handled by topic and
outcome, how long handling took, dead letters, events relayed from the outbox and how many
wait there. Labels carry topics and outcomes only, never ids."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Observer = Callable[[], Awaitable[dict[str, float]]]
OBSERVE_EVERY = 10.0  # seconds between database reads for observed gauges
log = logging.getLogger(__name__)


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.handled = Counter(
            "linkwell_messages_handled",
            "Kafka messages handled, by topic and outcome (ok, dead-lettered, retried-later)",
            ["service", "topic", "outcome"],
            registry=self.registry,
        )
        self.handling_seconds = Histogram(
            "linkwell_handling_seconds",
            "Time to handle one message, by topic",
            ["service", "topic"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "linkwell_dead_lettered",
            "Messages sent to this service's dead-letter topic, by origin topic",
            ["service", "topic"],
            registry=self.registry,
        )
        self.relayed = Counter(
            "linkwell_outbox_relayed",
            "Events published from the outbox, by topic",
            ["service", "topic"],
            registry=self.registry,
        )
        self.outbox_waiting = Gauge(
            "linkwell_outbox_documents_waiting",
            "Documents with events not yet acknowledged by the broker",
            ["service"],
            registry=self.registry,
        )
        self.service = service
        self._observed: list[tuple[Gauge, str, Observer]] = []
        self._observed_at = 0.0

    def observe(self, name: str, help_text: str, label: str, observer: Observer) -> None:
        """A gauge whose values are read (from the database) when /metrics is scraped, at most
        every OBSERVE_EVERY seconds: right across every instance of the service."""
        gauge = Gauge(name, help_text, ["service", label], registry=self.registry)
        self._observed.append((gauge, label, observer))

    async def refresh(self) -> None:
        if not self._observed or time.monotonic() - self._observed_at < OBSERVE_EVERY:
            return
        self._observed_at = time.monotonic()
        for gauge, label, observer in self._observed:
            try:
                values = await observer()
            except Exception as exc:  # one source down (broker, database): report the rest
                log.warning("metric %s not refreshed: %s", gauge._name, type(exc).__name__)
                continue
            for value_label, value in values.items():
                gauge.labels(service=self.service, **{label: value_label}).set(value)
