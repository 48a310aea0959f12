"""notifications' handlers on FastStream's in-memory broker, delivering to a real loopback
webhook receiver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from faststream.kafka import TestKafkaBroker

from linkwell.documents import MemoryDocumentStore
from linkwell.partners import Partner
from linkwell_schemas.events import DeliveryRecorded, Organisation, PlaceReserved, ReferralReceived
from notifications.app import build
from notifications.config import NotifySettings


async def test_event_before_its_referral_is_delivered_once_the_referrer_is_known(
    webhook_receiver,
) -> None:
    gp = Partner(
        org_id="gp-1",
        name="GP",
        kind="gp",
        tenant="t",
        callback_url=webhook_receiver.url("/webhooks/gp-1"),
    )
    _, runtime = build(NotifySettings(), store=MemoryDocumentStore(), partners=[gp])
    recorded: list[DeliveryRecorded] = []

    @runtime.broker.subscriber(DeliveryRecorded.topic, group_id="observer")
    async def observe(body: dict) -> None:
        recorded.append(DeliveryRecorded.model_validate(body))

    reserved = PlaceReserved(
        producer="capacity",
        tenant="t",
        correlation_id="r1",
        referral_id="r1",
        asset_id="a1",
        asset_name="Walking group",
        hold_expires_at=datetime.now(UTC) + timedelta(days=3),
    )
    received = ReferralReceived(
        producer="referral-intake",
        tenant="t",
        correlation_id="r1",
        referral_id="r1",
        source=Organisation(org_id="gp-1", kind="gp"),
        fhir_reference="ServiceRequest/r1",
    )
    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        await broker.publish(reserved.model_dump_json().encode(), PlaceReserved.topic, key=b"r1")
        assert webhook_receiver.received == []  # referrer not known yet: held, not lost
        await broker.publish(received.model_dump_json().encode(), ReferralReceived.topic, key=b"r1")
        await broker.publish(
            reserved.model_dump_json().encode(), PlaceReserved.topic, key=b"r1"
        )  # redelivered
        await runtime.relay.relay_once()
        await runtime.stop()

    assert len(webhook_receiver.received) == 1
    delivery = webhook_receiver.received[0]
    assert delivery["path"] == "/webhooks/gp-1"
    assert delivery["body"]["summary"].startswith("A place is held at Walking group")
    assert delivery["headers"]["webhook-id"] == f"{reserved.event_id}:gp-1:webhook"
    assert [(r.recipient, r.outcome, r.about_topic) for r in recorded] == [
        ("gp-1", "delivered", PlaceReserved.topic)
    ]


async def test_endpoint_down_for_a_while_gets_the_message_once_it_recovers(
    webhook_receiver,
) -> None:
    webhook_receiver.fail_first = 2  # down for two attempts, then back
    gp = Partner(
        org_id="gp-1", name="GP", kind="gp", tenant="t", callback_url=webhook_receiver.url()
    )
    app, runtime = build(
        NotifySettings(retry_base_seconds=0.01, retry_cap_seconds=0.02, max_attempts=5),
        store=MemoryDocumentStore(),
        partners=[gp],
    )
    recorded: list[DeliveryRecorded] = []

    @runtime.broker.subscriber(DeliveryRecorded.topic, group_id="observer")
    async def observe(body: dict) -> None:
        recorded.append(DeliveryRecorded.model_validate(body))

    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        await broker.publish(referral_received().model_dump_json().encode(), ReferralReceived.topic)
        reserved = place_reserved()
        await broker.publish(reserved.model_dump_json().encode(), PlaceReserved.topic)
        for _ in range(3):
            await asyncio.sleep(0.05)
            await app.state.notifier.dispatch_due()
        await broker.publish(reserved.model_dump_json().encode(), PlaceReserved.topic)  # again
        await app.state.notifier.dispatch_due()
        await runtime.relay.relay_once()
        await runtime.stop()
    assert len(webhook_receiver.received) == 1  # delivered once, however often it was tried
    assert [(r.outcome, r.attempts) for r in recorded] == [
        ("retrying", 1),
        ("retrying", 2),
        ("delivered", 3),
    ]
    assert recorded[0].next_attempt_at is not None


async def test_endpoint_that_always_fails_ends_in_dead_letters_and_can_be_replayed(
    webhook_receiver,
) -> None:
    webhook_receiver.fail_first = 1000
    gp = Partner(
        org_id="gp-1", name="GP", kind="gp", tenant="t", callback_url=webhook_receiver.url()
    )
    app, runtime = build(
        NotifySettings(retry_base_seconds=0.01, retry_cap_seconds=0.02, max_attempts=2),
        store=MemoryDocumentStore(),
        partners=[gp],
    )
    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        await broker.publish(referral_received().model_dump_json().encode(), ReferralReceived.topic)
        await broker.publish(place_reserved().model_dump_json().encode(), PlaceReserved.topic)
        await asyncio.sleep(0.05)
        await app.state.notifier.dispatch_due()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://notifications"
        )
        dead = (await client.get("/deliveries", params={"state": "dead"})).json()["deliveries"]
        assert [(d["recipient"], d["attempts"], d["last_detail"]) for d in dead] == [
            ("gp-1", 2, "HTTP 503")
        ]
        webhook_receiver.fail_first = 0  # the partner fixes its endpoint
        replayed = await client.post(f"/deliveries/{dead[0]['id']}/replay")
        assert replayed.json()["state"] == "delivered"
        again = await client.post(f"/deliveries/{dead[0]['id']}/replay")
        assert again.status_code == 409  # only dead deliveries are replayed
        await client.aclose()
        await runtime.stop()
    assert len(webhook_receiver.received) == 1


def referral_received() -> ReferralReceived:
    return ReferralReceived(
        producer="referral-intake",
        tenant="t",
        correlation_id="r1",
        referral_id="r1",
        source=Organisation(org_id="gp-1", kind="gp"),
        fhir_reference="ServiceRequest/r1",
    )


def place_reserved() -> PlaceReserved:
    return PlaceReserved(
        producer="capacity",
        tenant="t",
        correlation_id="r1",
        referral_id="r1",
        asset_id="a1",
        hold_expires_at=datetime.now(UTC),
    )
