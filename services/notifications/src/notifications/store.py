"""Per-referral notification state: who the referrer is, what is waiting to be told, what has
been delivered, and the delivery-recorded events, over any DocumentStore."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from linkwell.documents import DocumentStore, add_event, change, has_seen, mark_seen
from linkwell_schemas.events import (
    DeliveryRecorded,
    Event,
    MatchProposed,
    PlaceReserved,
    ReferralReceived,
    Reminder,
)

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
            doc["preferred_channel"] = event.consent.preferred_channel
            doc["language"] = event.language
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

    # ------------------------------------------------------------ what is awaited

    async def track(self, event: Event) -> None:
        """Remember what each referral is waiting for, so reminders can be due: a held place
        waits for the provider; anything settled waits for nothing."""
        at = event.occurred_at.timestamp()
        if isinstance(event, (Reminder, DeliveryRecorded)):
            return  # about the wait, not a step in it

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            doc = current or {}
            if at < doc.get("tracked_at", 0):
                return None  # an older event arriving late changes nothing
            doc["tracked_at"] = at
            if isinstance(event, PlaceReserved):
                doc["awaiting"] = {
                    "what": "provider",
                    "since": at,
                    "asset_id": event.asset_id,
                    "asset_name": event.asset_name,
                    "provider_org": event.provider_org,
                    "hold_expires_at": event.hold_expires_at.timestamp(),
                    "reminded": [],
                }
            elif isinstance(event, ReferralReceived):
                doc.setdefault("awaiting", {"what": "placement", "since": at, "reminded": []})
            elif isinstance(event, MatchProposed) and event.candidates:
                return None  # still to be placed: the wait goes on
            else:
                doc["awaiting"] = None
            return doc

        await change(self.documents, REFERRALS, event.referral_id, apply)  # type: ignore[attr-defined]

    async def due_reminders(
        self, unanswered_after: float, expiring_within: float, stalled_after: float
    ) -> int:
        """Publish the reminders that have come due (each once per referral and kind)."""
        now = time.time()
        waiting = await self.documents.find(
            REFERRALS,
            {"awaiting.since": {"$lt": now - min(unanswered_after, stalled_after)}},
            limit=500,
        )
        expiring = await self.documents.find(
            REFERRALS, {"awaiting.hold_expires_at": {"$lt": now + expiring_within}}, limit=500
        )
        count = 0
        for doc in {d["_id"]: d for d in waiting + expiring}.values():

            def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
                nonlocal count
                awaiting = (current or {}).get("awaiting")
                if not awaiting:
                    return None
                kinds = []
                if awaiting["what"] == "provider":
                    if now - awaiting["since"] > unanswered_after:
                        kinds.append("provider-unanswered")
                    if awaiting["hold_expires_at"] - now < expiring_within:
                        kinds.append("hold-expiring")
                elif now - awaiting["since"] > stalled_after:
                    kinds.append("referral-stalled")
                kinds = [k for k in kinds if k not in awaiting["reminded"]]
                if not kinds:
                    return None
                for kind in kinds:
                    awaiting["reminded"].append(kind)
                    due = awaiting.get("hold_expires_at")
                    add_event(
                        current,
                        Reminder(
                            producer="notifications",
                            tenant=current.get("tenant", ""),
                            correlation_id=current["_id"],
                            referral_id=current["_id"],
                            kind=kind,
                            asset_id=awaiting.get("asset_id"),
                            asset_name=awaiting.get("asset_name"),
                            provider_org=awaiting.get("provider_org"),
                            due_at=datetime.fromtimestamp(due, UTC) if due else None,
                        ),
                    )
                    count += 1
                return current

            await change(self.documents, REFERRALS, doc["_id"], apply, on_written=self.on_written)
        return count
