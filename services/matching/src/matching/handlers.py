"""Kafka handlers: propose assets for each referral; keep live capacity for scoring."""

from __future__ import annotations

from linkwell.messaging import Consumer
from linkwell_schemas.events import (
    CapacityChanged,
    Event,
    MatchProposed,
    ReferralEscalated,
    ReferralReceived,
)
from matching.domain import Asset, decide
from matching.store import DirectoryStore

SERVICE = "matching"


def outcome_for(referral: ReferralReceived, assets: list[Asset], max_candidates: int) -> Event:
    decision = decide(referral, assets, max_candidates)
    common = {
        "producer": SERVICE,
        "tenant": referral.tenant,
        "correlation_id": referral.correlation_id,
        "causation_id": str(referral.event_id),
        "referral_id": referral.referral_id,
    }
    if decision.escalate:
        reason, route = decision.escalate
        return ReferralEscalated(**common, reason=reason, route_to=route)  # type: ignore[arg-type]
    return MatchProposed(
        **common, candidates=decision.candidates, no_match_reason=decision.no_match_reason
    )


def register(consumer: Consumer, directory: DirectoryStore, max_candidates: int = 5) -> None:
    async def on_referral_received(referral: ReferralReceived) -> None:
        existing = await directory.proposed(referral.referral_id)
        if existing is not None and str(referral.event_id) in existing.get("_seen", []):
            return
        assets = [Asset.from_doc(d) for d in await directory.assets()]
        outcome = outcome_for(referral, assets, max_candidates)
        await directory.propose_once(referral.referral_id, referral, outcome)

    async def on_capacity_changed(event: CapacityChanged) -> None:
        await directory.record_capacity(event)

    consumer.subscribe(ReferralReceived, on_referral_received)
    consumer.subscribe(CapacityChanged, on_capacity_changed)
