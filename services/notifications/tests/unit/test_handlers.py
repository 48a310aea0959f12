"""notifications' handlers on FastStream's in-memory broker, delivering to a real loopback
webhook receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    _, runtime = build(
        NotifySettings(webhook_attempts=1), store=MemoryDocumentStore(), partners=[gp]
    )
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


async def test_failing_endpoint_is_recorded_as_failed(webhook_receiver) -> None:
    webhook_receiver.fail_first = 10
    gp = Partner(
        org_id="gp-1", name="GP", kind="gp", tenant="t", callback_url=webhook_receiver.url()
    )
    _, runtime = build(
        NotifySettings(webhook_attempts=2), store=MemoryDocumentStore(), partners=[gp]
    )
    recorded: list[DeliveryRecorded] = []

    @runtime.broker.subscriber(DeliveryRecorded.topic, group_id="observer")
    async def observe(body: dict) -> None:
        recorded.append(DeliveryRecorded.model_validate(body))

    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        await broker.publish(
            ReferralReceived(
                producer="referral-intake",
                tenant="t",
                correlation_id="r1",
                referral_id="r1",
                source=Organisation(org_id="gp-1", kind="gp"),
                fhir_reference="ServiceRequest/r1",
            )
            .model_dump_json()
            .encode(),
            ReferralReceived.topic,
            key=b"r1",
        )
        await broker.publish(
            PlaceReserved(
                producer="capacity",
                tenant="t",
                correlation_id="r1",
                referral_id="r1",
                asset_id="a1",
                hold_expires_at=datetime.now(UTC),
            )
            .model_dump_json()
            .encode(),
            PlaceReserved.topic,
            key=b"r1",
        )
        await runtime.relay.relay_once()
        await runtime.stop()
    assert [(r.outcome, r.attempts, r.detail) for r in recorded] == [("failed", 2, "HTTP 503")]
