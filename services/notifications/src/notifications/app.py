"""Composition root of notifications: Kafka handlers, channels, outbox relay, HTTP API."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, HTTPException
from faststream.kafka import KafkaBroker

from linkwell.actions import ActionSigner
from linkwell.auth import PartnerAuth
from linkwell.documents import DocumentStore, MongoDocumentStore
from linkwell.partners import Partner, load_partners
from linkwell.runtime import ServiceRuntime
from notifications import __version__, handlers
from notifications.channels import (
    CircuitBreaker,
    ContactBook,
    EmailChannel,
    SmsChannel,
    WebhookChannel,
)
from notifications.config import NotifySettings
from notifications.deliveries import DELIVERIES, DeliveryStore
from notifications.store import REFERRALS, NotificationStore

SERVICE = handlers.SERVICE


def build(
    settings: NotifySettings,
    store: DocumentStore | None = None,
    broker: KafkaBroker | None = None,
    partners: list[Partner] | None = None,
    contact_book: ContactBook | None = None,
) -> tuple[FastAPI, ServiceRuntime]:
    documents = store or MongoDocumentStore(settings.mongodb_url, settings.database)
    runtime = ServiceRuntime(
        SERVICE,
        documents,
        [REFERRALS, DELIVERIES],
        settings.kafka_bootstrap_servers,
        broker=broker,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    registry = {
        p.org_id: p
        for p in (partners if partners is not None else load_partners(settings.partners_file))
    }

    async def deliveries_by_state() -> dict[str, float]:
        """pending (first try due), retrying (failed before, next try scheduled), sending,
        delivered, dead (no more tries: failed, replayable)."""
        counts = {
            state: float(await documents.count(DELIVERIES, {"state": state}))
            for state in ("pending", "sending", "delivered", "dead")
        }
        retrying = await documents.count(DELIVERIES, {"state": "pending", "attempts": {"$gt": 0}})
        counts["retrying"] = float(retrying)
        counts["pending"] -= retrying
        return counts

    runtime.metrics.observe(
        "linkwell_deliveries",
        "Deliveries by state; dead ones failed for good and wait to be replayed",
        "state",
        deliveries_by_state,
    )
    notices = NotificationStore(documents, on_written=runtime.relay.wake)
    deliveries = DeliveryStore(documents, on_written=runtime.relay.wake)
    webhooks = WebhookChannel(
        settings.webhook_timeout_seconds,
        CircuitBreaker(settings.breaker_failures, settings.breaker_cool_off_seconds),
    )
    email = (
        EmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            settings.smtp_starttls,
            settings.smtp_username,
            settings.smtp_password,
        )
        if settings.smtp_host
        else None
    )
    actions = (
        ActionSigner(settings.action_signing_key_file.read_text(), settings.actions_base_url)
        if settings.action_signing_key_file
        else None
    )
    sms = (
        SmsChannel(settings.sms_base_url, settings.sms_api_key, settings.sms_template_id or "")
        if settings.sms_base_url and settings.sms_api_key
        else None
    )
    contacts = (
        contact_book
        if contact_book is not None
        else ContactBook(
            settings.intake_fhir_base,
            PartnerAuth(
                settings.service_key_file.read_text(),
                settings.service_id,
                (settings.intake_public_base or settings.intake_fhir_base).rstrip("/"),
            ),
        )
        if settings.service_key_file
        else None
    )
    notifier = handlers.Notifier(
        notices,
        deliveries,
        registry,
        webhooks,
        settings,
        email=email,
        actions=actions,
        sms=sms,
        contacts=contacts,
        catalogue=(
            json.loads(settings.messages_file.read_text()) if settings.messages_file else None
        ),
    )
    handlers.register(runtime.consumer, notifier)
    runtime.on_startup(deliveries.setup)
    runtime.every("dispatch-due-deliveries", settings.dispatch_every_seconds, notifier.dispatch_due)
    runtime.every("publish-due-reminders", settings.remind_every_seconds, notifier.remind)

    app = runtime.http_app("Linkwell notifications", version=__version__)
    app.state.notifier = notifier

    def shown(delivery: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": delivery["_id"],
            "referral_id": delivery.get("referral_id"),
            "recipient": delivery["recipient"],
            "role": delivery["role"],
            "channel": delivery["channel"],
            "about": delivery["about_topic"],
            "state": delivery["state"],
            "attempts": delivery["attempts"],
            "last_detail": delivery.get("last_detail"),
        }

    @app.get("/referrals/{referral_id}/deliveries")
    async def referral_deliveries(referral_id: str) -> dict[str, Any]:
        doc = await notices.get(referral_id)
        if doc is None:
            raise HTTPException(404, "nothing known about this referral")
        found = await deliveries.listing(referral_id=referral_id)
        return {
            "referral_id": referral_id,
            "deliveries": [shown(d) for d in found],
            "pending": len(doc.get("pending", [])),
        }

    @app.get("/deliveries")
    async def list_deliveries(state: str = "dead", limit: int = 100) -> dict[str, Any]:
        """For operators: deliveries by state (dead: every attempt failed)."""
        found = await deliveries.listing(state=state, limit=min(max(limit, 1), 500))
        return {"state": state, "deliveries": [shown(d) for d in found]}

    @app.post("/deliveries/{key}/replay")
    async def replay(key: str) -> dict[str, Any]:
        """Try a dead delivery again from the start (same webhook-id: receivers drop repeats)."""
        if not await deliveries.replay(key):
            raise HTTPException(409, "only a dead delivery can be replayed")
        await notifier.attempt(key)
        delivery = await deliveries.get(key)
        assert delivery is not None
        return shown(delivery)

    return app, runtime
