"""Per-referral notification state: who the referrer is, what is waiting to be told, what has
been delivered, and the delivery-recorded events, over any DocumentStore."""

from __future__ import annotations

from typing import Any

from linkwell.documents import DocumentStore, add_event, change, has_seen, mark_seen
from linkwell_schemas.events import DeliveryRecorded, Event, ReferralReceived

REFERRALS = "referrals"


class NotificationStore:
    def __init__(self, documents: DocumentStore, on_written: Any = None) -> None:
        self.documents = documents
        self.on_written = on_written

    async def get(self, referral_id: str) -> dict[str, Any] | None:
        return await self.documents.get(REFERRALS, referral_id)

    async def know_referral(self, event: ReferralReceived) -> dict[str, Any] | None:
        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if has_seen(current, str(event.event_id)):
                return None
            doc = current or {}
            doc["referrer"] = event.source.org_id
            doc["tenant"] = event.tenant
            doc["contact_person"] = (
                event.consent.contact_person and not event.consent.do_not_contact
            )
            mark_seen(doc, str(event.event_id))
            return doc

        return await change(self.documents, REFERRALS, event.referral_id, apply)

    async def hold_until_known(self, referral_id: str, event: Event) -> bool:
        """Keep an event whose referral is not known yet. True if it was kept."""
        kept = False

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal kept
            if current is not None and current.get("referrer"):
                return None
            doc = current or {}
            pending = doc.setdefault("pending", [])
            if any(p["event_id"] == str(event.event_id) for p in pending):
                kept = True
                return None
            pending.append(
                {
                    "event_id": str(event.event_id),
                    "topic": event.topic,
                    "payload": event.model_dump(mode="json"),
                }
            )
            kept = True
            return doc

        await change(self.documents, REFERRALS, referral_id, apply)
        return kept

    async def record(
        self, referral_id: str, key: str, recorded: DeliveryRecorded, about_event_id: str
    ) -> None:
        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or key in current.get("deliveries", {}):
                return None
            current.setdefault("deliveries", {})[key] = recorded.outcome
            current["pending"] = [
                p for p in current.get("pending", []) if p["event_id"] != about_event_id
            ]
            add_event(current, recorded)
            return current

        await change(self.documents, REFERRALS, referral_id, apply, on_written=self.on_written)

    async def drop_pending(self, referral_id: str, event_id: str) -> None:
        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None:
                return None
            before = len(current.get("pending", []))
            current["pending"] = [
                p for p in current.get("pending", []) if p["event_id"] != event_id
            ]
            return current if len(current["pending"]) != before else None

        await change(self.documents, REFERRALS, referral_id, apply)
