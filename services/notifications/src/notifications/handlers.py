"""Kafka handlers: learn each referral's referrer, then tell them about every step."""

from __future__ import annotations

import logging

from linkwell.messaging import Consumer
from linkwell.partners import Partner
from linkwell_schemas import events as ev
from notifications import domain
from notifications.channels import WebhookChannel
from notifications.store import NotificationStore

SERVICE = "notifications"
NOTIFIABLE: tuple[type[ev.Event], ...] = (
    ev.PlaceReserved,
    ev.Waitlisted,
    ev.PlaceRefused,
    ev.ReferralEscalated,
    ev.MatchProposed,
)
log = logging.getLogger(__name__)


class Notifier:
    def __init__(
        self,
        store: NotificationStore,
        partners: dict[str, Partner],
        webhooks: WebhookChannel,
        intake_fhir_base: str,
    ) -> None:
        self.store = store
        self.partners = partners
        self.webhooks = webhooks
        self.intake_fhir_base = intake_fhir_base.rstrip("/")

    async def on_referral_received(self, event: ev.ReferralReceived) -> None:
        doc = await self.store.know_referral(event)
        for pending in list((doc or {}).get("pending", [])):
            held = ev.TOPICS[pending["topic"]].model_validate(pending["payload"])
            await self.notify(held)

    async def notify(self, event: ev.Event) -> None:
        referral_id: str = event.referral_id  # type: ignore[attr-defined]
        notices = domain.notices_for(event)
        if not notices:
            return
        doc = await self.store.get(referral_id)
        if doc is None or not doc.get("referrer"):
            if await self.store.hold_until_known(referral_id, event):
                return
            doc = await self.store.get(referral_id)
        assert doc is not None
        for notice in notices:
            if notice.role != "referrer":
                continue
            partner = self.partners.get(doc["referrer"])
            key = domain.delivery_key(str(event.event_id), doc["referrer"], "webhook")
            if key in doc.get("deliveries", {}):
                continue
            if partner is None or not partner.callback_url:
                await self.store.drop_pending(referral_id, str(event.event_id))
                continue  # nowhere registered to tell them; the Task still shows it
            body = domain.webhook_body(event, notice, f"{self.intake_fhir_base}/Task/{referral_id}")
            result = await self.webhooks.send(partner.callback_url, key, body)
            if not result.delivered:
                log.warning(
                    "webhook to partner %s failed after %d attempts (%s)",
                    partner.org_id,
                    result.attempts,
                    result.detail,
                )
            recorded = ev.DeliveryRecorded(
                producer=SERVICE,
                tenant=doc.get("tenant", event.tenant),
                correlation_id=event.correlation_id,
                causation_id=str(event.event_id),
                referral_id=referral_id,
                recipient=partner.org_id,
                role="referrer",
                channel="webhook",
                about_event_id=str(event.event_id),
                about_topic=event.topic,
                outcome="delivered" if result.delivered else "failed",
                attempts=result.attempts,
                detail=result.detail,
            )
            await self.store.record(referral_id, key, recorded, str(event.event_id))


def register(consumer: Consumer, notifier: Notifier) -> None:
    consumer.subscribe(ev.ReferralReceived, notifier.on_referral_received)
    for event_type in NOTIFIABLE:
        consumer.subscribe(event_type, notifier.notify)
