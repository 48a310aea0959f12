"""Kafka handlers: every downstream event about a referral updates its Task."""

from __future__ import annotations

from linkwell.messaging import Consumer
from linkwell.telemetry import current_trace_id
from linkwell_schemas.events import (
    DeliveryRecorded,
    Event,
    MatchProposed,
    PlaceRefused,
    PlaceReleased,
    PlaceReserved,
    ReferralEscalated,
    Waitlisted,
)
from referral_intake.store import ReferralStore

TASK_EVENTS: tuple[type[Event], ...] = (
    MatchProposed,
    ReferralEscalated,
    PlaceReserved,
    PlaceRefused,
    Waitlisted,
    PlaceReleased,
    DeliveryRecorded,
)


def register(consumer: Consumer, referrals: ReferralStore) -> None:
    async def update_task(event: Event) -> None:
        await referrals.record(
            event.referral_id,  # type: ignore[attr-defined]
            event,
            trace_id=current_trace_id(),
        )

    for event_type in TASK_EVENTS:
        consumer.subscribe(event_type, update_task)
