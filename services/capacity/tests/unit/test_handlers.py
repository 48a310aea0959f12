"""capacity's handlers on FastStream's in-memory broker."""

from __future__ import annotations

from faststream.kafka import TestKafkaBroker

from capacity.app import build
from capacity.config import CapacitySettings
from linkwell.documents import MemoryDocumentStore
from linkwell_schemas.events import (
    AssetChanged,
    Candidate,
    CapacityChanged,
    MatchProposed,
    PlaceRefused,
    PlaceReserved,
    Waitlisted,
)


async def test_proposals_hold_until_full_then_refuse_and_waitlist() -> None:
    _, runtime = build(CapacitySettings(), store=MemoryDocumentStore())
    seen: dict[str, list[dict]] = {
        t: []
        for t in (PlaceReserved.topic, PlaceRefused.topic, Waitlisted.topic, CapacityChanged.topic)
    }

    def observer(topic: str):
        async def observe(body: dict) -> None:
            seen[topic].append(body)

        return observe

    for topic in seen:
        runtime.broker.subscriber(topic, group_id="observer")(observer(topic))

    asset = AssetChanged(
        producer="matching",
        tenant="t",
        correlation_id="lunch",
        asset_id="lunch",
        provider_org="vcse-lunch",
        asset_name="Lunch club",
        declared_capacity=1,
    )
    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        await broker.publish(asset.model_dump_json().encode(), AssetChanged.topic, key=b"lunch")
        for referral_id in ("r1", "r2"):
            event = MatchProposed(
                producer="matching",
                tenant="t",
                correlation_id=referral_id,
                referral_id=referral_id,
                candidates=[
                    Candidate(
                        asset_id="lunch",
                        asset_name="Lunch club",
                        provider_org="vcse-lunch",
                        score=0.9,
                        reasons=[],
                    )
                ],
            )
            await broker.publish(
                event.model_dump_json().encode(), MatchProposed.topic, key=referral_id.encode()
            )
            await broker.publish(
                event.model_dump_json().encode(), MatchProposed.topic, key=referral_id.encode()
            )  # redelivered
        for _ in range(3):
            await runtime.relay.relay_once()
        await runtime.stop()

    assert [
        (e["referral_id"], e["asset_id"], e["asset_name"]) for e in seen[PlaceReserved.topic]
    ] == [("r1", "lunch", "Lunch club")]
    assert [e["referral_id"] for e in seen[PlaceRefused.topic]] == ["r2"]
    assert seen[PlaceRefused.topic][0]["refusals"] == [
        {"asset_id": "lunch", "reason": "at-capacity"}
    ]
    assert [(e["referral_id"], e["position"], e["band"]) for e in seen[Waitlisted.topic]] == [
        ("r2", 1, "unknown")
    ]
    last_level = seen[CapacityChanged.topic][-1]
    assert (last_level["capacity"], last_level["held"], last_level["waitlist_length"]) == (1, 1, 1)
