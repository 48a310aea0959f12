"""matching's handlers on FastStream's in-memory broker."""

from __future__ import annotations

from pathlib import Path

import httpx
from faststream.kafka import TestKafkaBroker

from linkwell.documents import MemoryDocumentStore
from linkwell_schemas.events import (
    AssetChanged,
    Location,
    MatchProposed,
    Need,
    Organisation,
    ReferralEscalated,
    ReferralReceived,
)
from matching.app import build, import_directory
from matching.config import MatchingSettings
from matching.directory import Directory
from matching.store import DirectoryStore

DEMO = Path(__file__).resolve().parents[4] / "config" / "demo-directory.json"


def referral(needs: list[str], referral_id: str = "r1") -> ReferralReceived:
    return ReferralReceived(
        producer="referral-intake",
        tenant="demo-region",
        correlation_id=referral_id,
        referral_id=referral_id,
        source=Organisation(org_id="gp", kind="gp"),
        needs=[Need(category=n) for n in needs],
        barriers=["transport"],
        location=Location(postcode_sector="LS6 3", lat=53.8208, lon=-1.58549, precision_km=0.9),
        fhir_reference=f"ServiceRequest/{referral_id}",
    )


async def test_demo_directory_import_announces_each_asset_once_and_matches_a_referral() -> None:
    _, runtime = build(MatchingSettings(directory_file=DEMO), store=MemoryDocumentStore())
    proposals: list[MatchProposed] = []
    announced: list[str] = []

    @runtime.broker.subscriber(MatchProposed.topic, group_id="observer")
    async def on_proposed(body: dict) -> None:
        proposals.append(MatchProposed.model_validate(body))

    @runtime.broker.subscriber(AssetChanged.topic, group_id="observer")
    async def on_asset(body: dict) -> None:
        announced.append(body["asset_id"])

    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        await runtime.relay.relay_once()
        assert len(announced) == 74 and len(set(announced)) == 74
        # importing the same directory again changes nothing and announces nothing
        assert (
            await import_directory(
                Directory(DirectoryStore(runtime.store)), MatchingSettings(directory_file=DEMO)
            )
            == 0
        )

        event = referral(["loneliness", "bereavement"])
        for _ in range(2):  # a redelivery proposes nothing new
            await broker.publish(
                event.model_dump_json().encode(), ReferralReceived.topic, key=b"r1"
            )
        await runtime.relay.relay_once()
        await runtime.stop()

    assert len(proposals) == 1
    proposal = proposals[0]
    assert proposal.causation_id == str(event.event_id)
    assert proposal.candidates, proposal.no_match_reason
    assert all(c.distance_km is not None and c.distance_km <= 2.1 for c in proposal.candidates)
    assert proposal.candidates[0].asset_id in {
        "headingley-lunch-club",
        "kirkstall-bereavement-cafe",
        "headingley-befriending",
    }


async def test_crisis_referral_is_escalated_and_counted() -> None:
    app, runtime = build(MatchingSettings(directory_file=DEMO), store=MemoryDocumentStore())
    escalations: list[ReferralEscalated] = []

    @runtime.broker.subscriber(ReferralEscalated.topic, group_id="observer")
    async def on_escalated(body: dict) -> None:
        escalations.append(ReferralEscalated.model_validate(body))

    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        await broker.publish(
            referral(["mental-health-crisis"]).model_dump_json().encode(),
            ReferralReceived.topic,
            key=b"r1",
        )
        await broker.publish(
            referral([], referral_id="r2").model_dump_json().encode(),
            ReferralReceived.topic,
            key=b"r2",
        )
        await runtime.relay.relay_once()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://matching"
        ) as client:
            scraped = (await client.get("/metrics")).text
        await runtime.stop()
    assert [e.route_to for e in escalations] == ["clinician"]
    assert (
        'linkwell_match_outcomes_total{gap="none",outcome="escalated",service="matching"} 1.0'
        in scraped
    )
    assert (
        'linkwell_match_outcomes_total{gap="no-needs",outcome="no-match",service="matching"} 1.0'
        in scraped
    )
