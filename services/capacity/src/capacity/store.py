"""Assets' levels and each referral's placement, over any DocumentStore.

Placing a referral is a resumable sequence of single-document steps. The placement document
records which candidate is being tried (`cursor`); a candidate is only passed over after the
placement has recorded that it refused, and the asset document is the only place a hold is
written (keyed by referral). So whatever crashes or redeliveries happen, a referral is only ever
trying one asset at a time and can hold at most one place.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from capacity import domain
from linkwell.documents import DocumentStore, add_event, change, has_seen, mark_seen
from linkwell_schemas.events import (
    AssetChanged,
    CapacityChanged,
    MatchProposed,
    PlaceRefused,
    PlaceReserved,
    Refusal,
    Waitlisted,
)

ASSETS = "assets"
PLACEMENTS = "placements"
SERVICE = "capacity"


def _capacity_changed(
    asset_id: str, asset: dict[str, Any], tenant: str, correlation_id: str, causation_id: str | None
) -> CapacityChanged:
    return CapacityChanged(
        producer=SERVICE,
        tenant=tenant,
        correlation_id=correlation_id,
        causation_id=causation_id,
        asset_id=asset_id,
        capacity=asset.get("capacity"),
        in_use=len(asset.get("in_use", {})),
        held=len(asset.get("holds", {})),
        waitlist_length=len(asset.get("waitlist", [])),
        accepting_referrals=bool(asset.get("accepting_referrals", True)),
    )


class CapacityStore:
    def __init__(
        self, documents: DocumentStore, hold_hours: float = 72.0, on_written: Any = None
    ) -> None:
        self.documents = documents
        self.hold_hours = hold_hours
        self.on_written = on_written

    async def setup(self) -> None:
        await self.documents.ensure_indexes(PLACEMENTS, ["state", "moved_at"])

    async def asset(self, asset_id: str) -> dict[str, Any] | None:
        return await self.documents.get(ASSETS, asset_id)

    async def placement(self, referral_id: str) -> dict[str, Any] | None:
        return await self.documents.get(PLACEMENTS, referral_id)

    # ------------------------------------------------------------ directory

    async def declare(self, event: AssetChanged) -> None:
        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if has_seen(current, str(event.event_id)):
                return None
            asset = current or domain.new_asset(event.asset_name, event.provider_org, None)
            asset["name"] = event.asset_name
            asset["provider_org"] = event.provider_org
            asset["capacity"] = event.declared_capacity
            asset["updated_at"] = time.time()
            mark_seen(asset, str(event.event_id))
            add_event(
                asset,
                _capacity_changed(
                    event.asset_id, asset, event.tenant, event.correlation_id, str(event.event_id)
                ),
            )
            return asset

        await change(self.documents, ASSETS, event.asset_id, apply, on_written=self.on_written)

    # ------------------------------------------------------------ placing a referral

    async def start_placement(self, event: MatchProposed) -> bool:
        """Record the proposal to work through. False when this proposal was already taken up."""
        started = False

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal started
            if current is not None and (
                has_seen(current, str(event.event_id)) or current.get("state") in ("held",)
            ):
                return None
            doc = current or {}
            doc.update(
                {
                    "state": "seeking",
                    "cursor": 0,
                    "refusals": [],
                    "candidates": [c.model_dump(mode="json") for c in event.candidates],
                    "tenant": event.tenant,
                    "correlation_id": event.correlation_id,
                    "proposal_event_id": str(event.event_id),
                    "moved_at": time.time(),
                }
            )
            mark_seen(doc, str(event.event_id))
            started = True
            return doc

        await change(self.documents, PLACEMENTS, event.referral_id, apply)
        return started

    async def advance(self, referral_id: str) -> str:
        """Try candidates from the placement's cursor until one holds, or all refuse."""
        while True:
            placement = await self.placement(referral_id)
            if placement is None or placement.get("state") != "seeking":
                return (placement or {}).get("state", "unknown")
            cursor = int(placement["cursor"])
            candidates = placement["candidates"]
            if cursor >= len(candidates):
                await self._refuse_and_waitlist(referral_id, placement)
                continue
            candidate = candidates[cursor]
            outcome = await self._try_hold(candidate["asset_id"], referral_id, placement)
            if outcome in ("held", "already-held"):
                await self._settle(referral_id, cursor, "held", candidate["asset_id"])
                continue
            await self._pass_over(referral_id, cursor, candidate["asset_id"], outcome)

    async def _try_hold(
        self, asset_id: str, referral_id: str, placement: dict[str, Any]
    ) -> domain.HoldOutcome:
        outcome: domain.HoldOutcome = "unknown-asset"
        tenant, correlation = placement["tenant"], placement["correlation_id"]
        cause = placement.get("proposal_event_id")

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal outcome
            outcome = domain.hold_outcome(current, referral_id)
            if outcome != "held" or current is None:
                return None
            expires = (datetime.now(UTC) + timedelta(hours=self.hold_hours)).replace(microsecond=0)
            domain.hold(current, referral_id, expires.isoformat())
            add_event(
                current,
                PlaceReserved(
                    producer=SERVICE,
                    tenant=tenant,
                    correlation_id=correlation,
                    causation_id=cause,
                    referral_id=referral_id,
                    asset_id=asset_id,
                    asset_name=current.get("name"),
                    provider_org=current.get("provider_org"),
                    hold_expires_at=expires,
                ),
            )
            add_event(current, _capacity_changed(asset_id, current, tenant, correlation, cause))
            return current

        await change(self.documents, ASSETS, asset_id, apply, on_written=self.on_written)
        return outcome

    async def _settle(self, referral_id: str, cursor: int, state: str, asset_id: str) -> None:
        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or current.get("state") != "seeking" or current["cursor"] != cursor:
                return None
            current["state"] = state
            current["asset_id"] = asset_id
            current["moved_at"] = time.time()
            return current

        await change(self.documents, PLACEMENTS, referral_id, apply)

    async def _pass_over(self, referral_id: str, cursor: int, asset_id: str, reason: str) -> None:
        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or current.get("state") != "seeking" or current["cursor"] != cursor:
                return None
            current["cursor"] = cursor + 1
            current["refusals"].append({"asset_id": asset_id, "reason": reason})
            current["moved_at"] = time.time()
            return current

        await change(self.documents, PLACEMENTS, referral_id, apply)

    async def _refuse_and_waitlist(self, referral_id: str, placement: dict[str, Any]) -> None:
        tenant, correlation = placement["tenant"], placement["correlation_id"]
        cause = placement.get("proposal_event_id")
        refusals = [
            Refusal(asset_id=r["asset_id"], reason=r["reason"]) for r in placement["refusals"]
        ]
        refused = PlaceRefused(
            producer=SERVICE,
            tenant=tenant,
            correlation_id=correlation,
            causation_id=cause,
            referral_id=referral_id,
            refusals=refusals,
        )
        # waitlist at the best-ranked candidate that exists and is accepting
        waitlist_at = next((r.asset_id for r in refusals if r.reason == "at-capacity"), None)
        if waitlist_at is not None:

            def join(current: dict[str, Any] | None) -> dict[str, Any] | None:
                if current is None:
                    return None
                before = list(current.get("waitlist", []))
                position = domain.join_waitlist(current, referral_id)
                if current["waitlist"] == before:
                    return None  # already waiting here (a resumed placement)
                add_event(
                    current,
                    Waitlisted(
                        producer=SERVICE,
                        tenant=tenant,
                        correlation_id=correlation,
                        causation_id=cause,
                        referral_id=referral_id,
                        asset_id=waitlist_at,
                        position=position,
                        band=domain.waitlist_band(current, position),
                    ),
                )
                add_event(
                    current, _capacity_changed(waitlist_at, current, tenant, correlation, cause)
                )
                return current

            await change(self.documents, ASSETS, waitlist_at, join, on_written=self.on_written)

        def finish(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or current.get("state") != "seeking":
                return None
            current["state"] = "waitlisted" if waitlist_at else "refused"
            current["asset_id"] = waitlist_at
            current["moved_at"] = time.time()
            add_event(current, refused)
            return current

        await change(self.documents, PLACEMENTS, referral_id, finish, on_written=self.on_written)

    async def resume_stalled(self, older_than_seconds: float) -> int:
        """Finish placements a crashed instance left half-way (self-healing)."""
        cutoff = time.time() - older_than_seconds
        stalled = await self.documents.find(
            PLACEMENTS, {"state": "seeking", "moved_at": {"$lt": cutoff}}, limit=500
        )
        for doc in stalled:
            await self.advance(doc["_id"])
        return len(stalled)
