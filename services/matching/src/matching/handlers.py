"""Kafka handlers: propose assets for each referral; keep live capacity for scoring."""

from __future__ import annotations

from linkwell.messaging import Consumer
from linkwell_schemas.events import CapacityChanged, ReferralReceived
from matching.directory import SERVICE, Directory

__all__ = ["SERVICE", "register"]


def register(consumer: Consumer, directory: Directory) -> None:
    async def on_referral_received(referral: ReferralReceived) -> None:
        await directory.match(referral)

    async def on_capacity_changed(event: CapacityChanged) -> None:
        await directory.store.record_capacity(event)

    consumer.subscribe(ReferralReceived, on_referral_received)
    consumer.subscribe(CapacityChanged, on_capacity_changed)
