"""The directory API: professionals search it, providers keep their own entries, the community
panel suggests new ones, ops import feeds. Every change is announced on
directory.asset-changed.v1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from linkwell.auth import PartnerAuth, generate_key
from linkwell.documents import MemoryDocumentStore
from linkwell.partners import Partner
from linkwell_schemas.events import AssetChanged, CapacityChanged
from matching.app import build
from matching.config import MatchingSettings

DEMO = Path(__file__).resolve().parents[4] / "config" / "demo-directory.json"
AUDIENCE = "http://localhost:8081"
KINDS = {
    "vcse-meanwood-memory-cafe": "vcse",
    "vcse-kirkstall-mens-shed": "vcse",
    "gp-hyde-park": "gp",
    "lw-leeds": "link-worker",
    "ops-leeds": "ops",
}
KEYS = {org: generate_key() for org in KINDS}
PARTNERS = [
    Partner(org_id=o, name=o, kind=KINDS[o], tenant="demo-region", public_key=KEYS[o][1])
    for o in KINDS
]


def signed(org: str) -> PartnerAuth:
    return PartnerAuth(KEYS[org][0], org, AUDIENCE)


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, Any, list[dict]]]:
    app, runtime = build(
        MatchingSettings(directory_file=DEMO, refresh_every_seconds=0),
        store=MemoryDocumentStore(),
        partners=PARTNERS,
    )
    announced: list[dict] = []

    @runtime.broker.subscriber(AssetChanged.topic, group_id="observer")
    async def on_asset(body: dict) -> None:
        announced.append(body)

    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        await runtime.relay.relay_once()
        announced.clear()
        full = CapacityChanged(
            producer="capacity",
            tenant="demo-region",
            correlation_id="meanwood-memory-cafe",
            asset_id="meanwood-memory-cafe",
            capacity=10,
            in_use=10,
            held=0,
            waitlist_length=3,
            accepting_referrals=True,
        )
        await broker.publish(full.model_dump_json().encode(), CapacityChanged.topic)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://matching") as client:
            yield client, runtime, announced
        await runtime.stop()


async def test_search_near_a_postcode_by_category_and_day_shows_live_room(api) -> None:
    client, _, _ = api
    answer = await client.get(
        "/assets/search",
        params={"postcode": "LS6 4AA", "radius_km": 2, "category": "dementia"},
        auth=signed("gp-hyde-park"),
    )
    assert answer.status_code == 200, answer.text
    found = answer.json()["assets"]
    names = [a["name"] for a in found]
    assert "Meanwood Memory Café" in names
    assert all(a["distance_km"] <= 2 for a in found)
    assert [a["distance_km"] for a in found] == sorted(a["distance_km"] for a in found)
    cafe = next(a for a in found if a["id"] == "meanwood-memory-cafe")
    assert cafe["live"]["available"] == 0 and cafe["live"]["waitlist"] == 3
    assert cafe["schedule"] == "last Friday of the month, 14:00-16:00"

    fridays = await client.get(
        "/assets/search",
        params={"postcode": "LS6 4AA", "radius_km": 2, "category": "dementia", "open_on": "monday"},
        auth=signed("gp-hyde-park"),
    )
    assert [a["id"] for a in fridays.json()["assets"]] == ["headingley-dementia-singing"]

    singing = await client.get(
        "/assets/search", params={"postcode": "LS7 3", "q": "singing"}, auth=signed("lw-leeds")
    )
    assert "chapeltown-breathe-choir" in [a["id"] for a in singing.json()["assets"]]

    with_room = await client.get(
        "/assets/search",
        params={"postcode": "LS6 4AA", "radius_km": 2, "category": "dementia", "with_room": "1"},
        auth=signed("gp-hyde-park"),
    )
    assert "meanwood-memory-cafe" not in [a["id"] for a in with_room.json()["assets"]]


async def test_search_needs_a_partner_and_valid_terms(api) -> None:
    client, _, _ = api
    assert (await client.get("/assets/search")).status_code == 401
    bad_postcode = await client.get(
        "/assets/search", params={"postcode": "NOT A POSTCODE"}, auth=signed("gp-hyde-park")
    )
    assert bad_postcode.status_code == 422
    bad_category = await client.get(
        "/assets/search", params={"category": "mental-health-crisis"}, auth=signed("lw-leeds")
    )
    assert bad_category.status_code == 422


SHED = {
    "name": "Kirkstall Men's Shed",
    "provider_name": "Kirkstall Men's Shed",
    "categories": ["loneliness", "low-mood", "employment"],
    "interests": ["making and mending"],
    "postcode": "LS5 3",
    "sessions": [{"day": "MO", "opens": "10:00", "closes": "15:00"}],
    "accessibility": ["step-free"],
    "free": True,
    "capacity": 14,
}


async def test_a_provider_updates_its_own_asset_and_the_change_is_announced(api) -> None:
    client, runtime, announced = api
    answer = await client.put(
        "/assets/kirkstall-mens-shed", json=SHED, auth=signed("vcse-kirkstall-mens-shed")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["changed"] is True and body["declared_capacity"] == 14
    assert body["schedule"] == "Monday mornings, 10:00-15:00"
    await runtime.relay.relay_once()
    assert [(e["asset_id"], e["declared_capacity"]) for e in announced] == [
        ("kirkstall-mens-shed", 14)
    ]
    again = await client.put(
        "/assets/kirkstall-mens-shed", json=SHED, auth=signed("vcse-kirkstall-mens-shed")
    )
    assert again.json()["changed"] is False
    await runtime.relay.relay_once()
    assert len(announced) == 1


async def test_a_provider_cannot_change_another_providers_asset(api) -> None:
    client, _, _ = api
    other = await client.put(
        "/assets/kirkstall-mens-shed", json=SHED, auth=signed("vcse-meanwood-memory-cafe")
    )
    assert other.status_code == 403
    gp = await client.put("/assets/kirkstall-mens-shed", json=SHED, auth=signed("gp-hyde-park"))
    assert gp.status_code == 403
    assert (await client.put("/assets/kirkstall-mens-shed", json=SHED)).status_code == 401


async def test_invalid_asset_statements_are_refused_with_the_field(api) -> None:
    client, _, _ = api
    for change, field in [
        ({"categories": ["mental-health-crisis"]}, "categories"),
        ({"accessibility": ["teleporter"]}, "accessibility"),
        ({"min_age": 70, "max_age": 18}, ""),
        ({"sessions": [{"day": "XX"}]}, "sessions"),
    ]:
        answer = await client.put(
            "/assets/kirkstall-mens-shed",
            json=SHED | change,
            auth=signed("vcse-kirkstall-mens-shed"),
        )
        assert answer.status_code == 422, change
        assert field in str(answer.json()["detail"])


async def test_a_suggestion_starts_unverified_until_ops_verify_it(api) -> None:
    client, _, announced = api
    suggestion = SHED | {"name": "Bramley Repair Café", "provider_name": "Bramley Repair Café"}
    made = await client.post("/assets/suggestions", json=suggestion, auth=signed("lw-leeds"))
    assert made.status_code == 201, made.text
    asset = made.json()
    assert (
        asset["verified"] is False and asset["provider_org"] == "unregistered:bramley-repair-cafe"
    )
    forbidden = await client.post(
        f"/assets/{asset['id']}/verification", auth=signed("vcse-kirkstall-mens-shed")
    )
    assert forbidden.status_code == 403
    verified = await client.post(f"/assets/{asset['id']}/verification", auth=signed("ops-leeds"))
    assert verified.status_code == 200 and verified.json()["verified"] is True


async def test_ops_import_a_feed_by_url_and_get_a_report_per_record(api, feed_server) -> None:
    client, runtime, announced = api
    body = {"url": f"{feed_server}/v1/services", "namespace": "kirkstall"}
    assert (
        await client.post("/directory/imports", json=body, auth=signed("lw-leeds"))
    ).status_code == 403
    answer = await client.post("/directory/imports", json=body, auth=signed("ops-leeds"))
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["shape"], report["read"], report["assets"], report["changed"]) == (
        "oruk1",
        4,
        4,
        4,
    )
    assert report["rejected_records"] == 1
    assert {p["path"] for p in report["rejected"]} == {
        "$.organization",
        "$.organization.id",
        "$.status",
    }
    await runtime.relay.relay_once()
    assert len([e for e in announced if e["asset_id"].startswith("kirkstall:")]) == 4
    again = await client.post("/directory/imports", json=body, auth=signed("ops-leeds"))
    assert again.json()["changed"] == 0
    unreachable = await client.post(
        "/directory/imports",
        json={"url": f"{feed_server}/nowhere"},
        auth=signed("ops-leeds"),
    )
    assert unreachable.status_code == 422 and "could not be read" in unreachable.text
