"""After the hold: the provider takes the place up, or it is given back (declined, expired,
cancelled, completed). A freed place goes to whoever waits there (urgent first, then longest
waiting); a declined or lapsed hold moves the referral to its next candidate by itself."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from capacity.app import build
from capacity.config import CapacitySettings
from linkwell.documents import MemoryDocumentStore, change
from linkwell_schemas.events import (
    AssetChanged,
    Candidate,
    CapacityChanged,
    Event,
    Location,
    MatchProposed,
    Organisation,
    PlaceRefused,
    PlaceReleased,
    PlaceReserved,
    Priority,
    ReferralReceived,
    ReferralStatus,
    ReferralUpdated,
    Waitlisted,
)

TOPICS = (PlaceReserved, PlaceRefused, PlaceReleased, Waitlisted, CapacityChanged)


class Capacity:
    def __init__(self, runtime: Any, broker: Any, seen: dict[str, list[dict]]) -> None:
        self.runtime, self.broker, self.seen = runtime, broker, seen
        self.places_store: Any = None

    async def send(self, event: Event) -> None:
        await self.broker.publish(event.model_dump_json().encode(), event.topic)
        await self.runtime.relay.relay_once()

    async def asset(self, asset_id: str, name: str, capacity: int) -> None:
        await self.send(
            AssetChanged(
                producer="matching",
                tenant="t",
                correlation_id=asset_id,
                asset_id=asset_id,
                provider_org=f"vcse-{asset_id}",
                asset_name=name,
                declared_capacity=capacity,
            )
        )

    async def refer(self, referral_id: str, *assets: str, priority: str = "routine") -> None:
        await self.send(
            ReferralReceived(
                producer="referral-intake",
                tenant="t",
                correlation_id=referral_id,
                referral_id=referral_id,
                source=Organisation(org_id="gp", kind="gp"),
                priority=Priority(priority),
                location=Location(lat=53.8, lon=-1.57),
                fhir_reference=f"ServiceRequest/{referral_id}",
            )
        )
        await self.send(
            MatchProposed(
                producer="matching",
                tenant="t",
                correlation_id=referral_id,
                referral_id=referral_id,
                candidates=[
                    Candidate(
                        asset_id=a,
                        asset_name=a,
                        provider_org=f"vcse-{a}",
                        score=1.0 - n / 10,
                        reasons=["near"],
                    )
                    for n, a in enumerate(assets)
                ],
            )
        )

    async def update(self, referral_id: str, status: str) -> ReferralUpdated:
        event = ReferralUpdated(
            producer="referral-intake",
            tenant="t",
            correlation_id=referral_id,
            referral_id=referral_id,
            status=ReferralStatus(status),
            by="vcse",
        )
        await self.send(event)
        return event

    def held(self, referral_id: str) -> list[str]:
        return [
            e["asset_id"] for e in self.seen[PlaceReserved.topic] if e["referral_id"] == referral_id
        ]

    def released(self, referral_id: str) -> list[tuple[str, str]]:
        return [
            (e["asset_id"], e["reason"])
            for e in self.seen[PlaceReleased.topic]
            if e["referral_id"] == referral_id
        ]

    async def level(self, asset_id: str) -> dict[str, Any]:
        asset = await self.runtime.store.get("assets", asset_id)
        return {
            "held": sorted(asset["holds"]),
            "in_use": sorted(asset["in_use"]),
            "waitlist": list(asset["waitlist"]),
        }


@pytest.fixture
async def capacity() -> AsyncIterator[Capacity]:
    app, runtime = build(
        CapacitySettings(hold_hours=72, resume_after_seconds=3600), store=MemoryDocumentStore()
    )
    seen: dict[str, list[dict]] = {t.topic: [] for t in TOPICS}
    for event_type in TOPICS:

        def observer(topic: str):
            async def observe(body: dict) -> None:
                seen[topic].append(body)

            return observe

        runtime.broker.subscriber(event_type.topic, group_id="observer")(observer(event_type.topic))
    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        harness = Capacity(runtime, broker, seen)
        harness.places_store = app.state.places
        yield harness
        await runtime.relay.stop()


async def test_accepting_turns_the_hold_into_a_place_in_use(capacity) -> None:
    await capacity.asset("walk", "Walking group", 2)
    await capacity.refer("r1", "walk")
    update = await capacity.update("r1", "accepted")
    assert await capacity.level("walk") == {"held": [], "in_use": ["r1"], "waitlist": []}
    await capacity.send(update)  # redelivered: nothing changes
    assert await capacity.level("walk") == {"held": [], "in_use": ["r1"], "waitlist": []}
    last = capacity.seen[CapacityChanged.topic][-1]
    assert (last["held"], last["in_use"]) == (0, 1)


async def test_declined_hold_moves_to_the_next_candidate_then_waitlists(capacity) -> None:
    await capacity.asset("walk", "Walking group", 1)
    await capacity.asset("choir", "Community choir", 1)
    await capacity.refer("other", "choir")  # fills the choir
    await capacity.refer("r1", "walk", "choir")
    assert capacity.held("r1") == ["walk"]

    await capacity.update("r1", "declined")
    assert capacity.released("r1") == [("walk", "declined")]
    # the choir is full: refused there and waitlisted at the best full candidate
    refused = [e for e in capacity.seen[PlaceRefused.topic] if e["referral_id"] == "r1"]
    assert [(r["asset_id"], r["reason"]) for r in refused[0]["refusals"]] == [
        ("walk", "declined"),
        ("choir", "at-capacity"),
    ]
    assert await capacity.level("choir") == {"held": ["other"], "in_use": [], "waitlist": ["r1"]}
    assert await capacity.level("walk") == {"held": [], "in_use": [], "waitlist": []}


async def test_freed_place_goes_to_the_urgent_referral_first(capacity) -> None:
    await capacity.asset("lunch", "Lunch club", 1)
    await capacity.refer("first", "lunch")
    await capacity.refer("routine-early", "lunch")
    await capacity.refer("urgent-late", "lunch", priority="urgent")
    assert (await capacity.level("lunch"))["waitlist"] == ["routine-early", "urgent-late"]
    waitlisted = {e["referral_id"]: e["position"] for e in capacity.seen[Waitlisted.topic]}
    assert waitlisted == {"routine-early": 1, "urgent-late": 1}  # the urgent one goes ahead

    await capacity.update("first", "cancelled")
    assert capacity.released("first") == [("lunch", "cancelled")]
    assert capacity.held("urgent-late") == ["lunch"]
    assert await capacity.level("lunch") == {
        "held": ["urgent-late"],
        "in_use": [],
        "waitlist": ["routine-early"],
    }
    placement = await capacity.runtime.store.get("placements", "urgent-late")
    assert (placement["state"], placement["asset_id"]) == ("held", "lunch")


async def test_completion_frees_the_place_for_whoever_waits(capacity) -> None:
    await capacity.asset("shed", "Men's shed", 1)
    await capacity.refer("r1", "shed")
    await capacity.update("r1", "accepted")
    await capacity.refer("r2", "shed")
    await capacity.update("r1", "completed")
    assert capacity.released("r1") == [("shed", "completed")]
    assert await capacity.level("shed") == {"held": ["r2"], "in_use": [], "waitlist": []}


async def test_lapsed_hold_is_released_and_the_next_candidate_offered(capacity) -> None:
    await capacity.asset("walk", "Walking group", 1)
    await capacity.asset("choir", "Community choir", 1)
    await capacity.refer("r1", "walk", "choir")

    def lapse(doc):
        doc["hold_expires_at"] = time.time() - 1
        return doc

    await change(capacity.runtime.store, "placements", "r1", lapse)
    assert await capacity.places_store.expire_holds() == 1
    await capacity.runtime.relay.relay_once()
    assert capacity.released("r1") == [("walk", "expired")]
    assert capacity.held("r1") == ["walk", "choir"]
    assert await capacity.level("walk") == {"held": [], "in_use": [], "waitlist": []}


async def test_cancelled_before_any_proposal_is_never_given_a_place(capacity) -> None:
    await capacity.asset("walk", "Walking group", 3)
    await capacity.update("r1", "cancelled")
    await capacity.refer("r1", "walk")
    assert capacity.held("r1") == []
    assert await capacity.level("walk") == {"held": [], "in_use": [], "waitlist": []}


async def test_cancelling_a_waitlisted_referral_takes_it_off_the_list(capacity) -> None:
    await capacity.asset("lunch", "Lunch club", 1)
    await capacity.refer("first", "lunch")
    await capacity.refer("second", "lunch")
    await capacity.update("second", "cancelled")
    assert await capacity.level("lunch") == {"held": ["first"], "in_use": [], "waitlist": []}
    await capacity.update("first", "declined")
    assert capacity.held("second") == []  # nobody waiting is offered the freed place
