"""Composition root of notifications: Kafka handlers, channels, outbox relay, HTTP API."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from faststream.kafka import KafkaBroker

from linkwell.documents import DocumentStore, MongoDocumentStore
from linkwell.partners import Partner, load_partners
from linkwell.runtime import ServiceRuntime
from notifications import __version__, handlers
from notifications.channels import WebhookChannel
from notifications.config import NotifySettings
from notifications.store import REFERRALS, NotificationStore

SERVICE = handlers.SERVICE


def build(
    settings: NotifySettings,
    store: DocumentStore | None = None,
    broker: KafkaBroker | None = None,
    partners: list[Partner] | None = None,
) -> tuple[FastAPI, ServiceRuntime]:
    documents = store or MongoDocumentStore(settings.mongodb_url, settings.database)
    runtime = ServiceRuntime(
        SERVICE,
        documents,
        [REFERRALS],
        settings.kafka_bootstrap_servers,
        broker=broker,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    registry = {
        p.org_id: p
        for p in (partners if partners is not None else load_partners(settings.partners_file))
    }
    notices = NotificationStore(documents, on_written=runtime.relay.wake)
    webhooks = WebhookChannel(settings.webhook_timeout_seconds, settings.webhook_attempts)
    notifier = handlers.Notifier(notices, registry, webhooks, settings.intake_fhir_base)
    handlers.register(runtime.consumer, notifier)

    app = runtime.http_app("Linkwell notifications", version=__version__)
    app.state.notifier = notifier

    @app.get("/referrals/{referral_id}/deliveries")
    async def deliveries(referral_id: str) -> dict[str, Any]:
        doc = await notices.get(referral_id)
        if doc is None:
            raise HTTPException(404, "nothing known about this referral")
        return {
            "referral_id": referral_id,
            "deliveries": doc.get("deliveries", {}),
            "pending": len(doc.get("pending", [])),
        }

    return app, runtime
