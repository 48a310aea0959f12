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
    CapacityStale,
    MatchProposed,
    PlaceRefused,
    PlaceReleased,
    PlaceReserved,
    ReferralReceived,
    ReferralUpdated,
    Refusal,
    Waitlisted,
)

ASSETS = "assets"
PLACEMENTS = "placements"
SERVICE = "capacity"


def _capacity_changed(
    asset_id: str,
    asset: dict[str, Any],
    tenant: str,
    correlation_id: str,
    causation_id: str | None,
) -> CapacityChanged:
    confirmed = asset.get("confirmed_at")
    return CapacityChanged(
        producer=SERVICE,
        tenant=tenant,
        correlation_id=correlation_id,
        causation_id=causation_id,
        asset_id=asset_id,
        capacity=None if asset.get("stale") else asset.get("capacity"),
        in_use=len(asset.get("in_use", {})),
        held=len(asset.get("holds", {})),
        waitlist_length=len(asset.get("waitlist", [])),
        accepting_referrals=domain.accepting(asset),
        funded=asset.get("funded"),
        unit=asset.get("unit") or "places",
        paused_reason=asset.get("paused_reason"),
        resume_on=asset.get("resume_on"),
        stale=bool(asset.get("stale")),
        confirmed_at=datetime.fromtimestamp(confirmed, UTC) if confirmed else None,
    )


class CapacityStore:
    def __init__(
        self, documents: DocumentStore, hold_hours: float = 72.0, on_written: Any = None
    ) -> None:
        self.documents = documents
        self.hold_hours = hold_hours
        self.on_written = on_written

    async def setup(self) -> None:
        await self.documents.ensure_indexes(PLACEMENTS, ["state", "moved_at", "hold_expires_at"])
        await self.documents.ensure_indexes(ASSETS, ["stale", "confirmed_at"])

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
            asset["tenant"] = event.tenant
            if asset.get("capacity_source", "directory") == "directory":
                # the directory supplies the first figure; once the provider has set its own
                # capacity, a directory re-import does not overwrite it
                asset["capacity"] = event.declared_capacity
                asset["accepting_referrals"] = event.accepting_referrals
                asset["confirmed_at"] = event.occurred_at.timestamp()
                asset["stale"] = False
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
                has_seen(current, str(event.event_id))
                or current.get("state", "awaiting-proposal") != "awaiting-proposal"
            ):
                # a placement only ever starts once: restarting one that is under way (or
                # waitlisted, or ended) could leave the referral with two places
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
            outcome, expires = await self._try_hold(candidate["asset_id"], referral_id, placement)
            if outcome in ("held", "already-held"):
                settled = await self._settle(
                    referral_id, cursor, "held", candidate["asset_id"], expires
                )
                if not settled:
                    # the placement moved on meanwhile (cancelled): give the place back
                    await self._undo_orphan_hold(referral_id, candidate["asset_id"])
                continue
            await self._pass_over(referral_id, cursor, candidate["asset_id"], outcome)

    async def _try_hold(
        self, asset_id: str, referral_id: str, placement: dict[str, Any]
    ) -> tuple[domain.HoldOutcome, float | None]:
        outcome: domain.HoldOutcome = "unknown-asset"
        expires_at: float | None = None
        tenant, correlation = placement["tenant"], placement["correlation_id"]
        cause = placement.get("proposal_event_id")

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal outcome, expires_at
            outcome = domain.hold_outcome(current, referral_id)
            if outcome == "already-held" and current is not None:
                held = current.get("holds", {}).get(referral_id) or {}
                if held.get("expires_at"):
                    expires_at = datetime.fromisoformat(held["expires_at"]).timestamp()
            if outcome != "held" or current is None:
                return None
            expires_at = self._hold(current, asset_id, referral_id, tenant, correlation, cause)
            add_event(current, _capacity_changed(asset_id, current, tenant, correlation, cause))
            return current

        await change(self.documents, ASSETS, asset_id, apply, on_written=self.on_written)
        return outcome, expires_at

    async def _settle(
        self, referral_id: str, cursor: int, state: str, asset_id: str, expires_at: float | None
    ) -> bool:
        settled = False

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal settled
            if current is None or current.get("state") != "seeking" or current["cursor"] != cursor:
                settled = bool(
                    current
                    and current.get("state") == state
                    and current.get("asset_id") == asset_id
                )
                return None
            current["state"] = state
            current["asset_id"] = asset_id
            current["hold_expires_at"] = expires_at
            current["moved_at"] = time.time()
            settled = True
            return current

        await change(self.documents, PLACEMENTS, referral_id, apply)
        return settled

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
        # waitlist at the best-ranked candidate that exists and is accepting
        waitlist_at = next((r.asset_id for r in refusals if r.reason == "at-capacity"), None)
        refused = PlaceRefused(
            producer=SERVICE,
            tenant=tenant,
            correlation_id=correlation,
            causation_id=cause,
            referral_id=referral_id,
            refusals=refusals,
            waitlisted_at=waitlist_at,
        )
        if waitlist_at is not None:

            def join(current: dict[str, Any] | None) -> dict[str, Any] | None:
                if current is None:
                    return None
                before = list(current.get("waitlist", []))
                position = domain.join_waitlist(
                    current, referral_id, placement.get("priority") or "routine"
                )
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

    # ------------------------------------------------------------ after the hold

    async def note_referral(self, event: ReferralReceived) -> None:
        """Remember the referral's priority (it orders waitlists) before any proposal."""

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is not None and has_seen(current, str(event.event_id)):
                return None
            doc = current or {
                "state": "awaiting-proposal",
                "tenant": event.tenant,
                "correlation_id": event.correlation_id,
                "moved_at": time.time(),
            }
            doc["priority"] = event.priority.value
            mark_seen(doc, str(event.event_id))
            return doc

        await change(self.documents, PLACEMENTS, event.referral_id, apply)

    async def on_update(self, event: ReferralUpdated) -> None:
        """A partner's change to the referral: the place is taken up, or given back."""
        status = event.status.value
        if status == "accepted":
            await self._take_up(event)
        elif status == "declined":
            await self.release(event.referral_id, "declined", str(event.event_id), reroute=True)
        elif status in ("cancelled", "revoked"):
            await self.release(event.referral_id, "cancelled", str(event.event_id), reroute=False)
        elif status == "completed":
            await self.release(event.referral_id, "completed", str(event.event_id), reroute=False)
        # attended: the place stays in use

    async def _take_up(self, event: ReferralUpdated) -> None:
        placement = await self.placement(event.referral_id)
        if placement is None or not placement.get("asset_id"):
            return
        asset_id = placement["asset_id"]
        tenant = placement.get("tenant", event.tenant)

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or not domain.take_up(current, event.referral_id):
                return None
            current["updated_at"] = time.time()
            add_event(
                current,
                _capacity_changed(
                    asset_id, current, tenant, event.correlation_id, str(event.event_id)
                ),
            )
            return current

        await change(self.documents, ASSETS, asset_id, apply, on_written=self.on_written)

        def settle(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or current.get("state") != "held":
                return None
            current["state"] = "in-use"
            current["hold_expires_at"] = None
            current["moved_at"] = time.time()
            return current

        await change(self.documents, PLACEMENTS, event.referral_id, settle)

    async def release(self, referral_id: str, reason: str, cause: str, reroute: bool) -> None:
        """Give back what the referral has (hold, place in use, or waitlist spot), offer the
        freed place to the next person waiting there, and then either try the referral's next
        candidate (declined, expired) or end its placement (cancelled, completed).

        Three steps, each one write and each safe to repeat: the placement records that it is
        releasing (so a crash is resumed by the sweep), the asset frees and re-offers the
        place, the placement moves on."""

        def begin(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is not None and has_seen(current, cause):
                return None
            if current is None:
                if reroute:
                    return None  # nothing was ever held
                # ended before any proposal arrived: no place must be held later
                current = {"state": "awaiting-proposal", "moved_at": time.time()}
            if current.get("state") in ("cancelled", "completed"):
                mark_seen(current, cause)
                return current
            if reroute and current.get("state") not in ("held", "in-use"):
                return None  # nothing held to decline
            current["release"] = {
                "reason": reason,
                "reroute": reroute,
                "asset_id": current.get("asset_id"),
                "from_state": current.get("state"),
            }
            current["state"] = "releasing"
            current["moved_at"] = time.time()
            mark_seen(current, cause)
            return current

        written = await change(self.documents, PLACEMENTS, referral_id, begin)
        if written is not None and written.get("state") == "releasing":
            await self._finish_release(referral_id, written)

    async def _finish_release(self, referral_id: str, placement: dict[str, Any]) -> None:
        release = placement["release"]
        reason = release["reason"]
        tenant = placement.get("tenant", "")
        correlation = placement.get("correlation_id", referral_id)
        # a placement still seeking may have just made a hold anywhere among its candidates
        assets = {release.get("asset_id")} if release.get("from_state") != "seeking" else set()
        if release.get("from_state") == "seeking":
            assets |= {c["asset_id"] for c in placement.get("candidates", [])}
        for asset_id in sorted(a for a in assets if a):
            await self._free_at(asset_id, referral_id, reason, tenant, correlation)

        def finish(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or current.get("state") != "releasing":
                return None
            current["moved_at"] = time.time()
            current["hold_expires_at"] = None
            if release["reroute"]:
                candidates = [c["asset_id"] for c in current.get("candidates", [])]
                passed = release.get("asset_id")
                current["cursor"] = (
                    candidates.index(passed) + 1 if passed in candidates else len(candidates)
                )
                current.setdefault("refusals", []).append({"asset_id": passed, "reason": reason})
                current["state"] = "seeking"
                current["asset_id"] = None
            else:
                current["state"] = reason  # cancelled or completed
            current.pop("release", None)
            return current

        done = await change(self.documents, PLACEMENTS, referral_id, finish)
        if done is not None and done.get("state") == "seeking":
            await self.advance(referral_id)

    async def _free_at(
        self, asset_id: str, referral_id: str, reason: str, tenant: str, correlation: str
    ) -> None:
        promoted: str | None = None
        expires: float | None = None

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal promoted, expires
            if current is None:
                return None
            released = domain.release(current, referral_id)
            if released is None:
                return None
            current["updated_at"] = time.time()
            if released in ("hold", "in_use"):
                domain.note_freed(current, time.time())
                add_event(
                    current,
                    PlaceReleased(
                        producer=SERVICE,
                        tenant=tenant,
                        correlation_id=correlation,
                        referral_id=referral_id,
                        asset_id=asset_id,
                        reason=reason,  # type: ignore[arg-type]
                    ),
                )
            offered = self._offer_freed_places(current, asset_id, tenant, limit=1)
            promoted, expires = offered[0] if offered else (None, None)
            add_event(current, _capacity_changed(asset_id, current, tenant, correlation, None))
            return current

        await change(self.documents, ASSETS, asset_id, apply, on_written=self.on_written)
        if promoted is not None and expires is not None:
            await self._settle_promoted(promoted, asset_id, expires)

    def _offer_freed_places(
        self, asset: dict[str, Any], asset_id: str, tenant: str, limit: int | None = None
    ) -> list[tuple[str, float]]:
        """Hold free places for whoever waits (in the asset document being written)."""
        offered: list[tuple[str, float]] = []
        while limit is None or len(offered) < limit:
            promoted = domain.next_from_waitlist(asset)
            if promoted is None:
                break
            expires_at = self._hold(asset, asset_id, promoted, tenant, promoted, None)
            offered.append((promoted, expires_at))
        return offered

    def _hold(
        self,
        asset: dict[str, Any],
        asset_id: str,
        referral_id: str,
        tenant: str,
        correlation: str,
        cause: str | None,
    ) -> float:
        """Hold a place on the asset document being written, with its PlaceReserved event.
        The hold's expiry, as a timestamp."""
        expires = (datetime.now(UTC) + timedelta(hours=self.hold_hours)).replace(microsecond=0)
        domain.hold(asset, referral_id, expires.isoformat())
        add_event(
            asset,
            PlaceReserved(
                producer=SERVICE,
                tenant=tenant,
                correlation_id=correlation,
                causation_id=cause,
                referral_id=referral_id,
                asset_id=asset_id,
                asset_name=asset.get("name"),
                provider_org=asset.get("provider_org"),
                hold_expires_at=expires,
            ),
        )
        return expires.timestamp()

    # ------------------------------------------------------------ providers

    async def set_capacity(
        self, asset_id: str, provider_org: str, update: dict[str, Any]
    ) -> dict[str, Any]:
        """The provider sets its capacity, pauses or resumes. Raising capacity or resuming
        offers the freed places to whoever waits. Raises LookupError (no such asset) or
        PermissionError (not the asset's provider)."""
        offered: list[tuple[str, float]] = []

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal offered
            if current is None:
                raise LookupError(asset_id)
            if current.get("provider_org") != provider_org:
                raise PermissionError(asset_id)
            current.update(update)
            current["capacity_source"] = "provider"
            current["confirmed_at"] = time.time()
            current["stale"] = False
            current["updated_at"] = time.time()
            tenant = current.get("tenant", "")
            offered = self._offer_freed_places(current, asset_id, tenant)
            add_event(current, _capacity_changed(asset_id, current, tenant, asset_id, None))
            return current

        written = await change(self.documents, ASSETS, asset_id, apply, on_written=self.on_written)
        for referral_id, expires in offered:
            await self._settle_promoted(referral_id, asset_id, expires)
        assert written is not None
        return written

    async def flag_stale(self, older_than_days: float) -> int:
        """Capacity nobody has confirmed for too long is treated as unknown, and its provider
        is asked to confirm it."""
        cutoff = time.time() - older_than_days * domain.DAY
        old = await self.documents.find(
            ASSETS, {"stale": False, "confirmed_at": {"$lt": cutoff}}, limit=500
        )
        for doc in old:
            await self._flag_one(doc["_id"], cutoff)
        return len(old)

    async def _flag_one(self, asset_id: str, cutoff: float) -> None:
        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or current.get("stale"):
                return None
            confirmed = current.get("confirmed_at")
            if confirmed is None or confirmed >= cutoff:
                return None
            current["stale"] = True
            tenant = current.get("tenant", "")
            add_event(current, _capacity_changed(asset_id, current, tenant, asset_id, None))
            add_event(
                current,
                CapacityStale(
                    producer=SERVICE,
                    tenant=tenant,
                    correlation_id=asset_id,
                    asset_id=asset_id,
                    provider_org=current.get("provider_org", ""),
                    asset_name=current.get("name"),
                    confirmed_at=datetime.fromtimestamp(confirmed, UTC),
                ),
            )
            return current

        await change(self.documents, ASSETS, asset_id, apply, on_written=self.on_written)

    async def _settle_promoted(self, referral_id: str, asset_id: str, expires_at: float) -> None:
        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or current.get("state") != "waitlisted":
                return None
            current["state"] = "held"
            current["asset_id"] = asset_id
            current["hold_expires_at"] = expires_at
            current["moved_at"] = time.time()
            return current

        await change(self.documents, PLACEMENTS, referral_id, apply)

    async def _undo_orphan_hold(self, referral_id: str, asset_id: str) -> None:
        placement = await self.placement(referral_id) or {}
        if placement.get("state") in ("held", "in-use") and placement.get("asset_id") == asset_id:
            return
        await self._free_at(
            asset_id,
            referral_id,
            "cancelled",
            placement.get("tenant", ""),
            placement.get("correlation_id", referral_id),
        )

    async def expire_holds(self) -> int:
        """Holds nobody took up in time are released and the referral moves to its next
        candidate."""
        lapsed = await self.documents.find(
            PLACEMENTS, {"state": "held", "hold_expires_at": {"$lt": time.time()}}, limit=500
        )
        for doc in lapsed:
            await self.release(doc["_id"], "expired", f"expiry:{doc.get('hold_expires_at')}", True)
        return len(lapsed)

    async def resume_stalled(self, older_than_seconds: float) -> int:
        """Finish placements a crashed instance left half-way (self-healing)."""
        cutoff = time.time() - older_than_seconds
        stalled = await self.documents.find(
            PLACEMENTS, {"state": "seeking", "moved_at": {"$lt": cutoff}}, limit=500
        )
        for doc in stalled:
            await self.advance(doc["_id"])
        releasing = await self.documents.find(
            PLACEMENTS, {"state": "releasing", "moved_at": {"$lt": cutoff}}, limit=500
        )
        for doc in releasing:
            await self._finish_release(doc["_id"], doc)
        return len(stalled) + len(releasing)
