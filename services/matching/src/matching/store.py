"""The directory and per-referral proposals, over any DocumentStore."""

from __future__ import annotations

from typing import Any

from linkwell.documents import DocumentStore, add_event, change, has_seen, mark_seen
from linkwell_schemas.events import AssetChanged, CapacityChanged, Event

ASSETS = "assets"
PROPOSALS = "proposals"

DIRECTORY_FIELDS = (
    "name",
    "provider_org",
    "provider_name",
    "categories",
    "description",
    "postcode",
    "lat",
    "lon",
    "schedule",
    "declared_capacity",
    "interests",
    "verified",
    "assured_date",
    "source",
)


class DirectoryStore:
    def __init__(self, documents: DocumentStore, on_written: Any = None) -> None:
        self.documents = documents
        self.on_written = on_written

    async def assets(self) -> list[dict[str, Any]]:
        return await self.documents.find(ASSETS, {})

    async def upsert_asset(self, asset_id: str, fields: dict[str, Any], tenant: str) -> bool:
        """Store an asset; announce it on directory.asset-changed.v1 only when it changed."""
        changed = False

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal changed
            doc = current or {}
            if all(doc.get(k) == fields.get(k) for k in DIRECTORY_FIELDS):
                return None
            changed = True
            doc.update({k: fields.get(k) for k in DIRECTORY_FIELDS})
            add_event(
                doc,
                AssetChanged(
                    producer="matching",
                    tenant=tenant,
                    correlation_id=asset_id,
                    asset_id=asset_id,
                    provider_org=fields["provider_org"],
                    asset_name=fields["name"],
                    declared_capacity=fields.get("declared_capacity"),
                ),
            )
            return doc

        await change(self.documents, ASSETS, asset_id, apply, on_written=self.on_written)
        return changed

    async def record_capacity(self, event: CapacityChanged) -> None:
        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or has_seen(current, str(event.event_id)):
                return None
            live = current.get("live") or {}
            if live.get("at") and live["at"] > event.occurred_at.isoformat():
                mark_seen(current, str(event.event_id))  # older news: keep the newer level
                return current
            current["live"] = {
                "capacity": event.capacity,
                "in_use": event.in_use,
                "held": event.held,
                "waitlist_length": event.waitlist_length,
                "accepting_referrals": event.accepting_referrals,
                "at": event.occurred_at.isoformat(),
            }
            mark_seen(current, str(event.event_id))
            return current

        await change(self.documents, ASSETS, event.asset_id, apply)

    async def propose_once(self, referral_id: str, source: Event, outcome: Event) -> bool:
        """Record the proposal for a referral and queue its event, unless already done."""
        done = False

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal done
            if current is not None and has_seen(current, str(source.event_id)):
                return None
            doc = current or {}
            doc["last_outcome"] = outcome.topic
            mark_seen(doc, str(source.event_id))
            add_event(doc, outcome)
            done = True
            return doc

        await change(self.documents, PROPOSALS, referral_id, apply, on_written=self.on_written)
        return done

    async def proposed(self, referral_id: str) -> dict[str, Any] | None:
        return await self.documents.get(PROPOSALS, referral_id)
