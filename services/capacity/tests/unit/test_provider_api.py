"""Providers keep their own capacity current: set it, pause and resume, signed with their own
key. Raising capacity offers the new places to whoever waits; capacity nobody confirms for too
long is treated as unknown and the provider is asked to confirm it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from capacity.app import build
from capacity.config import CapacitySettings
from linkwell.auth import PartnerAuth, generate_key
from linkwell.documents import MemoryDocumentStore, change
from linkwell.partners import Partner
from linkwell_schemas.events import (
    AssetChanged,
    Candidate,
    CapacityChanged,
    CapacityStale,
    MatchProposed,
    PlaceReserved,
)

AUDIENCE = "http://localhost:8082"
KEYS = {org: generate_key() for org in ("vcse-lunch", "vcse-walk")}
PARTNERS = [
    Partner(org_id=o, name=o, kind="vcse", tenant="t", public_key=k[1]) for o, k in KEYS.items()
]


def signed(org: str) -> PartnerAuth:
    return PartnerAuth(KEYS[org][0], org, AUDIENCE)


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, Any, dict[str, list[dict]]]]:
    app, runtime = build(
        CapacitySettings(resume_after_seconds=3600), store=MemoryDocumentStore(), partners=PARTNERS
    )
    seen: dict[str, list[dict]] = {
        t.topic: [] for t in (PlaceReserved, CapacityChanged, CapacityStale)
    }
    for topic in seen:

        def observer(name: str):
            async def observe(body: dict) -> None:
                seen[name].append(body)

            return observe

        runtime.broker.subscriber(topic, group_id="observer")(observer(topic))
    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        lunch = AssetChanged(
            producer="matching",
            tenant="t",
            correlation_id="lunch",
            asset_id="lunch",
            provider_org="vcse-lunch",
            asset_name="Lunch club",
            declared_capacity=1,
        )
        await broker.publish(lunch.model_dump_json().encode(), AssetChanged.topic)
        for n in range(3):
            proposal = MatchProposed(
                producer="matching",
                tenant="t",
                correlation_id=f"r{n}",
                referral_id=f"r{n}",
                candidates=[
                    Candidate(
                        asset_id="lunch",
                        asset_name="Lunch club",
                        provider_org="vcse-lunch",
                        score=1,
                        reasons=[],
                    )
                ],
            )
            await broker.publish(proposal.model_dump_json().encode(), MatchProposed.topic)
        await runtime.relay.relay_once()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://capacity") as client:
            yield client, app, seen
        await runtime.relay.stop()


async def test_provider_raises_capacity_and_the_waiting_get_places(api) -> None:
    client, app, seen = api
    before = (await client.get("/assets/lunch/capacity")).json()
    assert before["service_capacity"]["maximum"] == 1
    assert before["waitlist_length"] == 2

    answer = await client.put(
        "/assets/lunch/capacity",
        json={"maximum": 3, "funded": 2, "unit": "places"},
        auth=signed("vcse-lunch"),
    )
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["service_capacity"]["maximum"] == 3
    assert view["service_capacity"]["available"] == 0
    assert (view["held"], view["waitlist_length"], view["funded"]) == (3, 0, 2)
    await app.state.runtime.relay.relay_once()
    assert sorted(e["referral_id"] for e in seen[PlaceReserved.topic]) == ["r0", "r1", "r2"]
    placement = await app.state.places.placement("r2")
    assert (placement["state"], placement["asset_id"]) == ("held", "lunch")
    assert seen[CapacityChanged.topic][-1]["capacity"] == 3


async def test_only_the_provider_with_a_valid_token_changes_capacity(api) -> None:
    client, _, _ = api
    body = {"maximum": 9}
    assert (await client.put("/assets/lunch/capacity", json=body)).status_code == 401
    other = await client.put("/assets/lunch/capacity", json=body, auth=signed("vcse-walk"))
    assert other.status_code == 403
    unknown = await client.put("/assets/nope/capacity", json=body, auth=signed("vcse-lunch"))
    assert unknown.status_code == 404
    silly = await client.put(
        "/assets/lunch/capacity", json={"maximum": -1}, auth=signed("vcse-lunch")
    )
    assert silly.status_code == 422
    assert (await client.get("/assets/lunch/capacity")).json()["service_capacity"]["maximum"] == 1


async def test_paused_asset_refuses_new_holds_until_resumed(api) -> None:
    client, app, _ = api
    paused = await client.put(
        "/assets/lunch/capacity",
        json={
            "maximum": 5,
            "accepting_referrals": False,
            "paused_reason": "summer break",
            "resume_on": "2099-09-01",
        },
        auth=signed("vcse-lunch"),
    )
    view = paused.json()
    assert (view["accepting_referrals"], view["paused_reason"]) == (False, "summer break")
    assert view["held"] == 1 and view["waitlist_length"] == 2  # nobody offered while paused
    resumed = await client.put(
        "/assets/lunch/capacity", json={"maximum": 5}, auth=signed("vcse-lunch")
    )
    assert (resumed.json()["held"], resumed.json()["waitlist_length"]) == (3, 0)
    assert resumed.json()["paused_reason"] is None


async def test_unconfirmed_capacity_goes_stale_and_the_provider_is_asked(api) -> None:
    client, app, seen = api
    places = app.state.places

    def long_ago(doc):
        doc["confirmed_at"] = time.time() - 200 * 86400
        return doc

    await change(places.documents, "assets", "lunch", long_ago)
    assert await places.flag_stale(older_than_days=90) == 1
    assert await places.flag_stale(older_than_days=90) == 0  # asked once
    await app.state.runtime.relay.relay_once()
    [prompt] = seen[CapacityStale.topic]
    assert (prompt["asset_id"], prompt["provider_org"]) == ("lunch", "vcse-lunch")
    assert seen[CapacityChanged.topic][-1]["stale"] is True
    assert seen[CapacityChanged.topic][-1]["capacity"] is None
    view = (await client.get("/assets/lunch/capacity")).json()
    assert view["stale"] is True and view["service_capacity"]["maximum"] is None

    confirmed = await client.put(
        "/assets/lunch/capacity", json={"maximum": 1}, auth=signed("vcse-lunch")
    )
    assert confirmed.json()["stale"] is False
