"""Kafka handlers: learn declared capacity; hold a place for each proposal, or refuse and
waitlist."""

from __future__ import annotations

from capacity.store import CapacityStore
from linkwell.messaging import Consumer
from linkwell_schemas.events import AssetChanged, MatchProposed


def register(consumer: Consumer, places: CapacityStore) -> None:
    async def on_asset_changed(event: AssetChanged) -> None:
        await places.declare(event)

    async def on_match_proposed(event: MatchProposed) -> None:
        if not event.candidates:
            return  # nothing to hold; matching has said why
        await places.start_placement(event)
        # always advance: a redelivery resumes a placement a crash left half-way
        await places.advance(event.referral_id)

    consumer.subscribe(AssetChanged, on_asset_changed)
    consumer.subscribe(MatchProposed, on_match_proposed)
