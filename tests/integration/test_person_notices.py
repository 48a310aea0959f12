"""The person referred hears from the network only if they agreed to, never when they asked
not to be contacted, by the channel they prefer and in plain words. Their address stays with
referral-intake: notifications asks for it at the moment of sending and keeps none."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from linkwell.auth import PartnerAuth, generate_key
from linkwell.documents import MemoryDocumentStore
from linkwell.partners import Partner
from linkwell_schemas.events import PlaceReserved, ReferralReceived
from notifications.app import build as build_notifications
from notifications.channels import ContactBook
from notifications.config import NotifySettings
from referral_intake.app import build as build_intake
from referral_intake.config import IntakeSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "examples" / "fhir" / "social-prescribing-referral.json").read_text())
FHIR = "http://localhost:8080/fhir"
GP_KEY, GP_PUBLIC = generate_key()
SERVICE_KEY, SERVICE_PUBLIC = generate_key()
GP = Partner(org_id="gp-demo-headingley", name="GP", kind="gp", tenant="t", public_key=GP_PUBLIC)
SERVICE = Partner(
    org_id="linkwell-notifications",
    name="notifications",
    kind="service",
    tenant="*",
    public_key=SERVICE_PUBLIC,
)


def bundle(reference: str, provision: str, email: str) -> dict:
    patient = copy.deepcopy(SAMPLE["contained"][0])
    patient.pop("id", None)
    patient["telecom"] = [{"system": "email", "value": email}]
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient_url},
        "provision": {"type": provision},
    }
    request = copy.deepcopy(SAMPLE)
    request.pop("contained")
    request["identifier"][0]["value"] = reference
    request["subject"] = {"reference": patient_url}
    entries = [
        (patient_url, patient),
        (f"urn:uuid:{uuid.uuid4()}", consent),
        (f"urn:uuid:{uuid.uuid4()}", request),
    ]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for url, r in entries
        ],
    }


async def test_person_is_told_only_with_consent_and_their_address_is_not_kept(smtp) -> None:
    mailbox, port = smtp
    intake_app, intake = build_intake(
        IntakeSettings(redrive_after_seconds=3600),
        store=MemoryDocumentStore(),
        partners=[GP, SERVICE],
    )
    received: list[ReferralReceived] = []

    @intake.broker.subscriber(ReferralReceived.topic, group_id="observer")
    async def observe(body: dict) -> None:
        received.append(ReferralReceived.model_validate(body))

    contacts = ContactBook(
        FHIR,
        PartnerAuth(SERVICE_KEY, SERVICE.org_id, FHIR),
        transport=httpx.ASGITransport(app=intake_app),
    )
    notify_app, notify = build_notifications(
        NotifySettings(smtp_host="127.0.0.1", smtp_port=port),
        store=MemoryDocumentStore(),
        partners=[GP],
        contact_book=contacts,
    )
    async with TestKafkaBroker(intake.broker), TestKafkaBroker(notify.broker) as notify_broker:
        await intake.start()
        await notify.start()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=intake_app),
            base_url="http://localhost:8080",
            auth=PartnerAuth(GP_KEY, GP.org_id, FHIR),
        ) as client:
            for reference, provision, address in (
                ("agreed", "permit", "ann@example.org"),
                ("refused", "deny", "bob@example.org"),
            ):
                answer = await client.post(
                    "/fhir",
                    json=bundle(reference, provision, address),
                    headers={"Content-Type": "application/fhir+json"},
                )
                assert answer.status_code == 200, answer.text
            await intake.relay.relay_once()
            by_consent = {e.consent.contact_person: e for e in received}
            assert set(by_consent) == {True, False}
            assert by_consent[False].consent.do_not_contact is True

            for event in received:
                await notify_broker.publish(event.model_dump_json().encode(), event.topic)
                held = PlaceReserved(
                    producer="capacity",
                    tenant="t",
                    correlation_id=event.referral_id,
                    referral_id=event.referral_id,
                    asset_id="lunch",
                    asset_name="Friendship Lunch Club",
                    hold_expires_at=datetime.now(UTC) + timedelta(days=3),
                )
                await notify_broker.publish(held.model_dump_json().encode(), held.topic)

            # the GP (a partner, not a service) cannot ask for anyone's contact details
            refused = await client.get(
                f"/internal/referrals/{by_consent[True].referral_id}/contact"
            )
            assert refused.status_code == 403
        await intake.relay.stop()
        await notify.relay.stop()

    [message] = mailbox.messages
    assert message["To"] == "ann@example.org"
    text = message.get_payload(decode=True).decode()
    assert "a place has been kept for you at Friendship Lunch Club" in text
    deliveries = await notify_app.state.notifier.deliveries.listing(
        referral_id=by_consent[True].referral_id
    )
    person = [d for d in deliveries if d["recipient"] == "person"]
    assert [(d["channel"], d["state"]) for d in person] == [("email", "delivered")]
    assert "ann@example.org" not in json.dumps(person, default=str)  # no address kept
    none_for_bob = await notify_app.state.notifier.deliveries.listing(
        referral_id=by_consent[False].referral_id
    )
    assert [d for d in none_for_bob if d["recipient"] == "person"] == []
