"""Kafka handlers: learn declared capacity and each referral's priority; hold a place for each
proposal, or refuse and waitlist; take up or give back places as partners accept, decline,
cancel or complete."""

from __future__ import annotations

from capacity.store import CapacityStore
from linkwell.messaging import Consumer
from linkwell_schemas.events import AssetChanged, MatchProposed, ReferralReceived, ReferralUpdated


def register(consumer: Consumer, places: CapacityStore) -> None:
    async def on_asset_changed(event: AssetChanged) -> None:
        await places.declare(event)

    async def on_match_proposed(event: MatchProposed) -> None:
        if not event.candidates:
            return  # nothing to hold; matching has said why
        await places.start_placement(event)
        # always advance: a redelivery resumes a placement a crash left half-way
        await places.advance(event.referral_id)

    async def on_referral_received(event: ReferralReceived) -> None:
        await places.note_referral(event)

    async def on_referral_updated(event: ReferralUpdated) -> None:
        await places.on_update(event)

    consumer.subscribe(AssetChanged, on_asset_changed)
    consumer.subscribe(MatchProposed, on_match_proposed)
    consumer.subscribe(ReferralReceived, on_referral_received)
    consumer.subscribe(ReferralUpdated, on_referral_updated)
