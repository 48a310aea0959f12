"""What every service counts, for Prometheus at GET /metrics: messages handled by topic and
outcome, how long handling took, dead letters, events relayed from the outbox and how many
wait there. Labels carry topics and outcomes only, never ids."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
