"""Kafka handlers: learn each referral's referrer, then plan a delivery for everyone who must
hear about each step, and attempt it."""

from __future__ import annotations

import logging
import time
from typing import Any

from linkwell.actions import ActionSigner
from linkwell.messaging import Consumer
from linkwell.partners import Partner
from linkwell_schemas import events as ev
from notifications import domain
from notifications.channels import (
    Attempted,
    ContactBook,
    EmailChannel,
    SmsChannel,
    WebhookChannel,
    rest_hook_bundle,
)
from notifications.config import NotifySettings
from notifications.deliveries import DeliveryStore
from notifications.store import NotificationStore

SERVICE = "notifications"
NOTIFIABLE: tuple[type[ev.Event], ...] = (
    ev.PlaceReserved,
    ev.Waitlisted,
    ev.PlaceRefused,
    ev.ReferralEscalated,
    ev.MatchProposed,
    ev.PlaceReleased,
    ev.Reminder,
)
log = logging.getLogger(__name__)


class Notifier:
    def __init__(
        self,
        store: NotificationStore,
        deliveries: DeliveryStore,
        partners: dict[str, Partner],
        webhooks: WebhookChannel,
        settings: NotifySettings,
        email: EmailChannel | None = None,
        actions: ActionSigner | None = None,
        sms: SmsChannel | None = None,
        contacts: ContactBook | None = None,
        catalogue: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.contacts = contacts
        self.catalogue = catalogue or {}
        self.email = email
        self.sms = sms
        self.actions = actions
        self.store = store
        self.deliveries = deliveries
        self.partners = partners
        self.webhooks = webhooks
        self.settings = settings
        self.intake_fhir_base = (settings.intake_public_base or settings.intake_fhir_base).rstrip(
            "/"
        )

    async def on_referral_received(self, event: ev.ReferralReceived) -> None:
        doc = await self.store.know_referral(event)
        await self.store.track(event)
        for pending in list((doc or {}).get("pending", [])):
            held = ev.TOPICS[pending["topic"]].model_validate(pending["payload"])
            await self.notify(held)

    def recipients(self, role: str, doc: dict[str, Any], event: ev.Event) -> list[Partner]:
        if role == "referrer":
            found = self.partners.get(doc.get("referrer", ""))
            return [found] if found else []
        if role == "provider":
            found = self.partners.get(getattr(event, "provider_org", None) or "")
            return [found] if found else []
        if role == "link-worker":
            return [
                p
                for p in self.partners.values()
                if p.kind == "link-worker" and p.tenant == doc.get("tenant", event.tenant)
            ]
        return []  # the person: by consent, through email or SMS (not yet)

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
        task_url = f"{self.intake_fhir_base}/Task/{referral_id}"
        for notice in notices:
            if notice.role == "person":
                await self.plan_for_person(event, notice, doc)
                continue
            for partner in self.recipients(notice.role, doc, event):
                common = {
                    "referral_id": referral_id,
                    "tenant": doc.get("tenant", event.tenant),
                    "correlation_id": event.correlation_id,
                    "role": notice.role,
                }
                planned: list[tuple[str, dict[str, Any]]] = []
                if partner.callback_url:
                    planned.append(
                        (
                            "webhook",
                            {
                                "url": partner.callback_url,
                                "body": domain.webhook_body(event, notice, task_url),
                            },
                        )
                    )
                if partner.fhir_rest_hook_url and notice.role == "referrer":
                    planned.append(
                        (
                            "fhir-rest-hook",
                            {
                                "url": partner.fhir_rest_hook_url,
                                "body": rest_hook_bundle(
                                    f"Subscription/{partner.org_id}",
                                    task_url,
                                    int(time.time() * 1000),
                                ),
                            },
                        )
                    )
                if partner.sms_number and self.sms is not None:
                    planned.append(
                        ("sms", {"to": partner.sms_number, "text": notice.summary[:300]})
                    )
                if partner.email and self.email is not None:
                    links = self.action_links(event, notice, partner)
                    planned.append(
                        (
                            "email",
                            {
                                "to": partner.email,
                                "subject": domain.email_subject(notice),
                                "text": domain.email_text(notice, links, task_url),
                            },
                        )
                    )
                # with neither, nobody can be told here; the Task still shows it
                for channel, how in planned:
                    await self.deliver(event, partner.org_id, channel, {**common, **how})
        await self.store.drop_pending(referral_id, str(event.event_id))

    async def plan_for_person(
        self, event: ev.Event, notice: domain.Notice, doc: dict[str, Any]
    ) -> None:
        """Only with consent (never with "do not contact"), by the channel they prefer, in
        plain words. The address is looked up at the moment of sending and not kept."""
        if not doc.get("contact_person") or self.contacts is None:
            return
        channel = doc.get("preferred_channel")
        if (
            channel not in ("sms", "email")
            or (channel == "sms" and self.sms is None)
            or (channel == "email" and self.email is None)
        ):
            return
        text, language = domain.person_text(notice, doc.get("language"), self.catalogue)
        await self.deliver(
            event,
            "person",
            channel,
            {
                "referral_id": event.referral_id,  # type: ignore[attr-defined]
                "tenant": doc.get("tenant", event.tenant),
                "correlation_id": event.correlation_id,
                "role": "person",
                "subject": "About your referral",
                "text": text,
                "language": language,
            },
        )

    async def send_to_person(self, delivery: dict[str, Any], key: str) -> Attempted:
        assert self.contacts is not None
        contact = await self.contacts.lookup(delivery["referral_id"])
        if contact is None:
            return Attempted(False, "contact details not available yet")
        address = contact.get(delivery["channel"]) if contact.get("may_contact") else None
        if not address:
            return Attempted(False, "no consent or no address for this channel", retryable=False)
        if delivery["channel"] == "sms" and self.sms is not None:
            return await self.sms.send(address, delivery["text"], key)
        if delivery["channel"] == "email" and self.email is not None:
            return await self.email.send(address, delivery["subject"], delivery["text"], key)
        return Attempted(False, "channel not configured", retryable=False)

    async def deliver(
        self, event: ev.Event, recipient: str, channel: str, delivery: dict[str, Any]
    ) -> None:
        """Plan the delivery of this event to this recipient by this channel (once, however
        often the event arrives) and make the first attempt."""
        key = domain.delivery_key(str(event.event_id), recipient, channel)
        planned = await self.deliveries.plan(
            key,
            {
                **delivery,
                "recipient": recipient,
                "channel": channel,
                "about_event_id": str(event.event_id),
                "about_topic": event.topic,
            },
        )
        if planned:
            await self.attempt(key)

    async def attempt(self, key: str) -> None:
        """One attempt at one delivery, if it is due and no other instance has it."""
        delivery = await self.deliveries.claim(key, self.settings.webhook_timeout_seconds * 3)
        if delivery is None:
            return
        partner = self.partners.get(delivery["recipient"])
        if delivery["recipient"] == "person":
            result = await self.send_to_person(delivery, key)
        elif delivery["channel"] == "email" and self.email is not None:
            result = await self.email.send(
                delivery["to"], delivery["subject"], delivery["text"], key
            )
        elif delivery["channel"] == "sms" and self.sms is not None:
            result = await self.sms.send(delivery["to"], delivery["text"], key)
        elif delivery["channel"] == "fhir-rest-hook":
            result = await self.webhooks.send(
                delivery["url"],
                key,
                delivery["body"],
                partner.webhook_secret if partner else None,
                content_type="application/fhir+json",
            )
        else:
            result = await self.webhooks.send(
                delivery["url"], key, delivery["body"], partner.webhook_secret if partner else None
            )
        settled = await self.deliveries.settle(
            key,
            result.delivered,
            result.retryable,
            result.detail,
            self.settings.max_attempts,
            self.settings.retry_base_seconds,
            self.settings.retry_cap_seconds,
        )
        if settled is not None and settled["state"] == "dead":
            log.warning(
                "delivery to partner %s failed for good after %d attempts (%s)",
                delivery["recipient"],
                settled["attempts"],
                result.detail,
            )

    def action_links(
        self, event: ev.Event, notice: domain.Notice, partner: Partner
    ) -> dict[str, str]:
        """Links that let the provider act without logging in: accept or decline the held
        place until the hold expires; record attendance for 90 days."""
        if self.actions is None or notice.role != "provider":
            return {}
        if not isinstance(event, ev.PlaceReserved):
            return {}
        base = self.settings.actions_base_url
        hold_ends = event.hold_expires_at.timestamp()
        attend_ends = time.time() + 90 * 86400
        return {
            "Accept": self.actions.link(
                base, event.referral_id, partner.org_id, "accept", hold_ends
            ),
            "Decline": self.actions.link(
                base, event.referral_id, partner.org_id, "decline", hold_ends
            ),
            "Record attendance (once accepted)": self.actions.link(
                base, event.referral_id, partner.org_id, "attended", attend_ends
            ),
        }

    async def dispatch_due(self) -> int:
        due = await self.deliveries.due()
        for delivery in due:
            await self.attempt(delivery["_id"])
        return len(due)

    async def on_step(self, event: ev.Event) -> None:
        await self.store.track(event)
        await self.notify(event)

    async def on_capacity_stale(self, event: ev.CapacityStale) -> None:
        """Ask the provider to confirm capacity nobody has confirmed for too long."""
        partner = self.partners.get(event.provider_org)
        if partner is None:
            return
        summary = (
            f"Please confirm how many places {event.asset_name or event.asset_id} has: until "
            "you do, no new referrals are sent there"
        )
        channels: list[tuple[str, dict[str, Any]]] = []
        if partner.callback_url:
            body = {
                "type": event.topic,
                "event_id": str(event.event_id),
                "occurred_at": event.occurred_at.isoformat(),
                "asset_id": event.asset_id,
                "summary": summary,
            }
            channels.append(("webhook", {"url": partner.callback_url, "body": body}))
        if partner.email and self.email is not None:
            channels.append(
                (
                    "email",
                    {
                        "to": partner.email,
                        "subject": "Linkwell: please confirm your capacity",
                        "text": summary + ".\n\n-- Linkwell social prescribing network",
                    },
                )
            )
        for channel, how in channels:
            await self.deliver(
                event,
                partner.org_id,
                channel,
                {"referral_id": None, "tenant": event.tenant, "role": "provider", **how},
            )

    async def on_referral_updated(self, event: ev.ReferralUpdated) -> None:
        await self.store.track(event)  # a partner answered: nothing is awaited any more

    async def remind(self) -> int:
        s = self.settings
        return await self.store.due_reminders(
            s.provider_reminder_days * 86400,
            s.hold_expiring_hours * 3600,
            s.stalled_after_days * 86400,
        )


def register(consumer: Consumer, notifier: Notifier) -> None:
    consumer.subscribe(ev.ReferralReceived, notifier.on_referral_received)
    consumer.subscribe(ev.ReferralUpdated, notifier.on_referral_updated)
    consumer.subscribe(ev.CapacityStale, notifier.on_capacity_stale)
    for event_type in NOTIFIABLE:
        consumer.subscribe(event_type, notifier.on_step)
