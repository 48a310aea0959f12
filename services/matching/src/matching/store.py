"""The directory and per-referral proposals, over any DocumentStore."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from linkwell.documents import DocumentStore, add_event, change, has_seen, mark_seen
from linkwell_schemas.events import AssetChanged, CapacityChanged, Event
from matching.model import STORED_FIELDS

ASSETS = "assets"
PROPOSALS = "proposals"
DIRECTORY_FIELDS = STORED_FIELDS


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _announcement(asset_id: str, fields: dict[str, Any], tenant: str) -> AssetChanged:
    return AssetChanged(
        producer="matching",
        tenant=tenant,
        correlation_id=asset_id,
        asset_id=asset_id,
        provider_org=fields["provider_org"],
        asset_name=fields["name"],
        declared_capacity=fields.get("declared_capacity"),
        # the directory's own statement: an inactive or closed service takes no referrals
        # (pauses are capacity's to announce, not echoed back here)
        accepting_referrals=(fields.get("status") or "active") == "active",
        verified=bool(fields.get("verified", True)),
    )


class DirectoryStore:
    def __init__(self, documents: DocumentStore, on_written: Any = None) -> None:
        self.documents = documents
        self.on_written = on_written

    async def setup(self) -> None:
        await self.documents.ensure_indexes(ASSETS, ["changed_at", "provider_org", "feed"])
        await self.documents.ensure_indexes(PROPOSALS, ["at"])

    async def assets(self) -> list[dict[str, Any]]:
        return await self.documents.find(ASSETS, {})

    async def asset(self, asset_id: str) -> dict[str, Any] | None:
        return await self.documents.get(ASSETS, asset_id)

    async def changed_since(self, since: str) -> list[dict[str, Any]]:
        if not since:
            return await self.assets()
        return await self.documents.find(ASSETS, {"changed_at": {"$gte": since}})

    async def active_from_feed(self, feed: str) -> list[dict[str, Any]]:
        return await self.documents.find(ASSETS, {"feed": feed, "status": "active"})

    async def proposals_since(self, since: str) -> list[dict[str, Any]]:
        return await self.documents.find(PROPOSALS, {"at": {"$gte": since}})

    async def upsert_asset(
        self,
        asset_id: str,
        fields: dict[str, Any],
        tenant: str,
        only_provider: str | None = None,
        feed: str | None = None,
    ) -> bool:
        """Store an asset; announce it on directory.asset-changed.v1 only when it changed.

        With `only_provider`, an existing asset of another provider is not touched
        (PermissionError). `feed` records which import source lists the asset, so that a
        later import of the same source can withdraw what it no longer lists."""
        changed = False

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal changed
            doc = current or {}
            if only_provider and doc.get("name") and doc.get("provider_org") != only_provider:
                raise PermissionError(asset_id)
            same = doc.get("name") and all(doc.get(k) == fields.get(k) for k in DIRECTORY_FIELDS)
            if same and (feed is None or doc.get("feed") == feed):
                return None
            if feed is not None:
                doc["feed"] = feed
            if same:
                return doc  # only the feed it came from is new: nothing to announce
            changed = True
            doc.update({k: fields.get(k) for k in DIRECTORY_FIELDS})
            doc["changed_at"] = _now()
            add_event(doc, _announcement(asset_id, doc, tenant))
            return doc

        await change(self.documents, ASSETS, asset_id, apply, on_written=self.on_written)
        return changed

    async def withdraw(self, asset_id: str, tenant: str, feed: str) -> bool:
        """Mark an asset its feed no longer lists as inactive, and announce that once."""
        withdrawn = False

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal withdrawn
            if not current or current.get("feed") != feed or current.get("status") != "active":
                return None
            withdrawn = True
            current["status"] = "inactive"
            current["changed_at"] = _now()
            add_event(current, _announcement(asset_id, current, tenant))
            return current

        await change(self.documents, ASSETS, asset_id, apply, on_written=self.on_written)
        return withdrawn

    async def record_capacity(self, event: CapacityChanged) -> None:
        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is not None and has_seen(current, str(event.event_id)):
                return None
            doc = current or {}
            live = doc.get("live") or {}
            if live.get("at") and live["at"] > event.occurred_at.isoformat():
                mark_seen(doc, str(event.event_id))  # older news: keep the newer level
                return doc
            doc["live"] = {
                "capacity": event.capacity,
                "in_use": event.in_use,
                "held": event.held,
                "waitlist_length": event.waitlist_length,
                "accepting_referrals": event.accepting_referrals,
                "paused_reason": event.paused_reason,
                "resume_on": event.resume_on.isoformat() if event.resume_on else None,
                "stale": event.stale,
                "at": event.occurred_at.isoformat(),
            }
            doc["changed_at"] = _now()
            mark_seen(doc, str(event.event_id))
            return doc

        await change(self.documents, ASSETS, event.asset_id, apply)

    async def propose_once(
        self, referral_id: str, source: Event, outcome: Event, first_choice: str | None = None
    ) -> bool:
        """Record the proposal for a referral and queue its event, unless already done."""
        done = False

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal done
            if current is not None and has_seen(current, str(source.event_id)):
                return None
            doc = current or {}
            doc["last_outcome"] = outcome.topic
            doc["first_choice"] = first_choice
            doc["at"] = _now()
            mark_seen(doc, str(source.event_id))
            add_event(doc, outcome)
            done = True
            return doc

        await change(self.documents, PROPOSALS, referral_id, apply, on_written=self.on_written)
        return done

    async def proposed(self, referral_id: str) -> dict[str, Any] | None:
        return await self.documents.get(PROPOSALS, referral_id)
