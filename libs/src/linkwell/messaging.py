"""Kafka at the edge of every service: the outbox relay and idempotent, dead-lettering consumers.

Consumers commit only after the handler returns (at-least-once), handlers are idempotent, so the
effect is exactly-once. A message that can never be processed (it does not decode, or the
handler keeps failing for a reason that is not transient) goes to `<service>.dead-lettered.v1`
with its origin and is then committed, so it never blocks its partition. Transient failures
(database or broker unreachable) are retried with backoff and, if they persist, the message is
left uncommitted and redelivered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from linkwell.documents import ConcurrentChangeError, DocumentStore, change
from linkwell.metrics import ServiceMetrics
from linkwell_schemas.events import DeadLettered, Event, dead_letter_topic

log = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    PyMongoError,
    ConnectionError,
    TimeoutError,
    OSError,
    ConcurrentChangeError,
)


class PermanentError(Exception):
    """The message is well formed but can never be processed (dead-letter it)."""


def describe_validation_error(error: ValidationError) -> str:
    """Element paths and what is wrong, never the submitted values."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in item["loc"]) or "(body)"
        parts.append(f"{loc}: {item['msg']}")
    return "; ".join(parts)


class Publisher:
    """Publishes serialised events to Kafka, keyed by subject, with retries."""

    def __init__(self, broker: KafkaBroker, attempts: int = 8) -> None:
        self.broker = broker
        self.attempts = attempts

    async def publish_raw(
        self, topic: str, key: str, payload: bytes, headers: dict[str, str]
    ) -> None:
        delay = 0.05
        for attempt in range(1, self.attempts + 1):
            try:
                await self.broker.publish(payload, topic, key=key.encode(), headers=headers)
                return
            except Exception:  # the broker client raises many types; all are retried
                if attempt == self.attempts:
                    raise
                log.warning("publish to %s failed (attempt %d), retrying", topic, attempt)
                await asyncio.sleep(delay + random.uniform(0, delay))
                delay = min(delay * 2, 2.0)


class OutboxRelay:
    """Moves events from documents' outboxes to Kafka, then removes them from the document.

    A crash between publish and removal republishes the same event (same `event_id`), which
    consumers drop as already seen.
    """

    def __init__(
        self,
        store: DocumentStore,
        collections: Sequence[str],
        publisher: Publisher,
        poll_interval: float = 0.25,
    ) -> None:
        self.store = store
        self.collections = list(collections)
        self.metrics: ServiceMetrics | None = None
        self.publisher = publisher
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        for collection in self.collections:
            await self.store.ensure_indexes(collection, ["_outbox_pending"])
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)

    async def _run(self) -> None:
        backoff = self.poll_interval
        while not self._stopping:
            try:
                moved = await self.relay_once()
                backoff = self.poll_interval
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                moved = 0
                backoff = min(backoff * 2, 5.0)
            if moved:
                continue
            self._wake.clear()
            try:
                # asyncio.timeout, not wait_for: wait_for can swallow a cancellation (3.11)
                async with asyncio.timeout(backoff):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def relay_once(self) -> int:
        moved = 0
        waiting = 0
        for collection in self.collections:
            docs = await self.store.find(collection, {"_outbox_pending": True}, limit=200)
            waiting += len(docs)
            for doc in docs:
                moved += await self._relay_doc(collection, doc)
        if self.metrics is not None:
            self.metrics.outbox_waiting.labels(self.metrics.service).set(waiting)
        return moved

    async def _relay_doc(self, collection: str, doc: dict[str, Any]) -> int:
        records = list(doc.get("_outbox", []))
        published: set[str] = set()
        tracer = trace.get_tracer("linkwell.outbox")
        for record in records:
            parent = propagate.extract(record.get("trace") or {})
            token = otel_context.attach(parent)
            try:
                with tracer.start_as_current_span(
                    f"{record['topic']} relay",
                    attributes={"messaging.destination.name": record["topic"]},
                ):
                    headers = {"event_id": record["event_id"]}
                    propagate.inject(headers)
                    await self.publisher.publish_raw(
                        record["topic"],
                        record["key"],
                        json.dumps(record["payload"], separators=(",", ":")).encode(),
                        headers,
                    )
            finally:
                otel_context.detach(token)
            published.add(record["event_id"])
            if self.metrics is not None:
                self.metrics.relayed.labels(self.metrics.service, record["topic"]).inc()

        def remove(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None:
                return None
            remaining = [r for r in current.get("_outbox", []) if r["event_id"] not in published]
            if len(remaining) == len(current.get("_outbox", [])):
                return None
            current["_outbox"] = remaining
            return current

        await change(self.store, collection, doc["_id"], remove)
        return len(published)


Handler = Callable[[Any], Awaitable[None]]


class Consumer:
    """Registers idempotent, dead-lettering subscribers for one service."""

    def __init__(
        self,
        broker: KafkaBroker,
        service: str,
        publisher: Publisher,
        attempts: int = 5,
        session_timeout_ms: int = 6000,
    ) -> None:
        self.broker = broker
        self.service = service
        self.publisher = publisher
        self.attempts = attempts
        self.session_timeout_ms = session_timeout_ms
        self.dead_letter_topic = dead_letter_topic(service)
        self.metrics: ServiceMetrics | None = None
        self.groups: dict[str, str] = {}  # topic -> consumer group, for ops and deployment

    def measured(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def group_id(self, topic: str) -> str:
        return f"{self.service}.{topic}"

    def subscribe(self, model: type[Event], handler: Handler) -> None:
        topic = model.topic
        group_id = self.group_id(topic)
        self.groups[topic] = group_id

        async def on_message(msg: KafkaMessage) -> None:
            await self.process(model, handler, group_id, msg)

        on_message.__name__ = f"{self.service}_{topic.replace('.', '_').replace('-', '_')}"
        self.broker.subscriber(
            topic,
            group_id=group_id,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(self.session_timeout_ms // 6, 500),
            rebalance_timeout_ms=self.session_timeout_ms,
            title=f"{self.service}: {topic}",
        )(on_message)

    async def process(
        self, model: type[Event], handler: Handler, group_id: str, msg: KafkaMessage
    ) -> None:
        began = time.perf_counter()
        outcome = "retried-later"
        try:
            outcome = await self._process(model, handler, group_id, msg)
        finally:
            seconds = time.perf_counter() - began
            if self.metrics is not None:
                labels = (self.metrics.service, model.topic)
                self.metrics.handled.labels(*labels, outcome).inc()
                self.metrics.handling_seconds.labels(*labels).observe(seconds)
            # inside the consumer span: the line carries the trace and span ids
            ids = getattr(trace.get_current_span(), "attributes", None) or {}
            extra = {"topic": model.topic, "outcome": outcome, "ms": round(seconds * 1000, 1)}
            for name in ("event_id", "referral_id"):
                if value := ids.get(f"linkwell.{name}"):
                    extra[name] = value
            log.info("handled %s: %s", model.topic, outcome, extra=extra)

    async def _process(
        self, model: type[Event], handler: Handler, group_id: str, msg: KafkaMessage
    ) -> str:
        raw = msg.raw_message
        body: bytes = msg.body
        try:
            event = model.model_validate_json(body)
        except ValidationError as exc:
            await self.dead_letter(
                model.topic, group_id, raw, body, "ValidationError", describe_validation_error(exc)
            )
            return "dead-lettered"
        span = trace.get_current_span()
        span.set_attribute("linkwell.event_id", str(event.event_id))
        span.set_attribute("linkwell.correlation_id", event.correlation_id)
        if referral_id := getattr(event, "referral_id", None):
            span.set_attribute("linkwell.referral_id", referral_id)
        delay = 0.05
        for attempt in range(1, self.attempts + 1):
            try:
                await handler(event)
                return "ok"
            except PermanentError as exc:
                await self.dead_letter(
                    model.topic, group_id, raw, body, type(exc).__name__, str(exc)
                )
                return "dead-lettered"
            except TRANSIENT_ERRORS:
                if attempt == self.attempts:
                    # leave it uncommitted: redelivered once the dependency is back
                    raise
            except Exception as exc:
                if attempt == self.attempts:
                    log.exception("handler for %s failed %d times", model.topic, attempt)
                    await self.dead_letter(
                        model.topic,
                        group_id,
                        raw,
                        body,
                        type(exc).__name__,
                        "handler failed repeatedly",
                    )
                    return "dead-lettered"
            await asyncio.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 2.0)
        return "retried-later"

    async def dead_letter(
        self, topic: str, group_id: str, raw: Any, body: bytes, error_type: str, error: str
    ) -> None:
        key = getattr(raw, "key", None)
        letter = DeadLettered(
            producer=self.service,
            tenant="unknown",
            correlation_id=key.decode(errors="replace") if key else "unknown",
            origin_topic=topic,
            origin_partition=getattr(raw, "partition", None),
            origin_offset=getattr(raw, "offset", None),
            origin_key=key.decode(errors="replace") if key else None,
            consumer_group=group_id,
            error_type=error_type,
            error=error[:2000],
            payload=body.decode(errors="replace"),
        )
        log.warning("dead-lettered a message from %s: %s", topic, error_type)
        if self.metrics is not None:
            self.metrics.dead_lettered.labels(self.metrics.service, topic).inc()
        headers = {"event_id": str(letter.event_id)}
        await self.publisher.publish_raw(
            self.dead_letter_topic,
            letter.origin_key or "",
            letter.model_dump_json().encode(),
            headers,
        )
