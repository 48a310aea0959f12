"""Referrals as Bundles, built from the standards' own examples: a transaction carrying the
Patient (UK Core), Condition, Goal and Consent (Gravity SDOH) by urn:uuid, and BaRS-style
messages to refer, re-send and withdraw."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

FHIR = {"Content-Type": "application/fhir+json"}


async def relay(client) -> None:
    await client._transport.app.state.runtime.relay.relay_once()  # noqa: SLF001


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def transaction(fhir_example, reference: str = "bundle-1") -> dict[str, Any]:
    """A GP system's transaction: the referral plus what supports it, linked by urn:uuid."""
    patient_url, condition_url, goal_url, consent_url, sr_url = (urn() for _ in range(5))
    patient = fhir_example("36_ukcore_patient_richard_smith.json")
    condition = fhir_example("08_sdohcc_condition_food_insecurity.json")
    goal = fhir_example("09_sdohcc_goal_food_security.json")
    consent = fhir_example("07_sdohcc_consent_information_disclosure.json")
    for resource in (condition, goal):
        resource["subject"] = {"reference": patient_url}
    consent["patient"] = {"reference": patient_url}
    goal["addresses"] = [{"reference": condition_url}]
    service_request = fhir_example("social-prescribing-referral.json")
    service_request.pop("contained")
    service_request["identifier"][0]["value"] = reference
    service_request["subject"] = {"reference": patient_url}
    service_request["reasonReference"] = [{"reference": condition_url}]
    entries = [
        (patient_url, patient),
        (condition_url, condition),
        (goal_url, goal),
        (consent_url, consent),
        (sr_url, service_request),
    ]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": url,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
            for url, resource in entries
        ],
    }


def message(fhir_example, status: str = "active", reference: str = "bars-1") -> dict[str, Any]:
    bundle = transaction(fhir_example, reference)
    for entry in bundle["entry"]:
        entry.pop("request")
    sr = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest")
    sr["resource"]["status"] = status
    header = {
        "resourceType": "MessageHeader",
        "id": str(uuid.uuid4()),
        "eventCoding": {
            "system": "https://fhir.nhs.uk/CodeSystem/message-events-bars",
            "code": "servicerequest-request",
        },
        "source": {"endpoint": "https://gp-system.example/fhir"},
        "focus": [{"reference": sr["fullUrl"]}],
    }
    bundle["type"] = "message"
    bundle["entry"].insert(0, {"fullUrl": urn(), "resource": header})
    return bundle


async def test_transaction_bundle_becomes_one_referral(edge, fhir_example) -> None:
    client, _, received = edge
    bundle = transaction(fhir_example)
    answer = await client.post("/fhir", json=bundle, headers=FHIR)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["type"] == "transaction-response"
    assert [e["response"]["status"] for e in body["entry"]] == ["201 Created"] * 5
    location = body["entry"][4]["response"]["location"]
    referral_id = location.split("/")[1]

    stored = (await client.get(f"/fhir/ServiceRequest/{referral_id}")).json()
    contained = {c["resourceType"]: c for c in stored["contained"]}
    assert set(contained) == {"Patient", "Condition", "Goal", "Consent"}
    assert stored["subject"]["reference"] == f"#{contained['Patient']['id']}"
    assert contained["Goal"]["addresses"][0]["reference"] == f"#{contained['Condition']['id']}"
    assert "urn:uuid" not in json.dumps(stored)

    await relay(client)
    [event] = received
    assert event.location is not None and event.location.postcode_sector == "LS17 7"
    assert "food" in {n.category for n in event.needs}  # from the Condition's SNOMED code
    assert event.goals == ["Food security"]
    assert event.language == "bfi"  # British Sign Language, from Patient.communication
    assert "9912003888" not in event.model_dump_json()

    again = await client.post("/fhir", json=bundle, headers=FHIR)
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK"] * 5


@pytest.mark.parametrize(
    ("change", "status", "path"),
    [
        (lambda b: b.__setitem__("type", "batch"), 422, "Bundle.type"),
        (
            lambda b: b["entry"][1].__setitem__("fullUrl", b["entry"][0]["fullUrl"]),
            422,
            "Bundle.entry[1].fullUrl",
        ),
        (
            lambda b: b["entry"][4]["resource"].__setitem__("subject", {"reference": urn()}),
            422,
            "Bundle.entry[4].resource",
        ),
        (
            lambda b: b["entry"][0]["request"].__setitem__("method", "PUT"),
            422,
            "Bundle.entry[0].request",
        ),
        (
            lambda b: b["entry"].append(
                {
                    "fullUrl": urn(),
                    "resource": {"resourceType": "Basic", "code": {"text": "x"}},
                    "request": {"method": "POST", "url": "Basic"},
                }
            ),
            422,
            "Bundle.entry[5].resource",
        ),
        (lambda b: b["entry"].pop(4), 422, "Bundle.entry"),
        (lambda b: b["entry"][0]["resource"].__setitem__("birthDate", "11/09/1970"), 400, None),
        (
            lambda b: b["entry"][0]["resource"]["identifier"][0].__setitem__("value", "9912003887"),
            422,
            "ServiceRequest.contained[0].identifier[0].value",
        ),
    ],
    ids=[
        "not-transaction",
        "fullurl-repeated",
        "unresolved-urn",
        "not-post",
        "unknown-type",
        "no-service-request",
        "bad-date",
        "bad-nhs-number",
    ],
)
async def test_bad_bundles_are_refused_naming_the_element(
    edge, fhir_example, change, status, path
) -> None:
    client, _, received = edge
    bundle = transaction(fhir_example)
    change(bundle)
    answer = await client.post("/fhir", json=bundle, headers=FHIR)
    assert answer.status_code == status, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    if path:
        assert path in outcome["issue"][0]["expression"]
    assert "9912003887" not in answer.text and "Richard" not in answer.text
    await relay(client)
    assert received == []


async def test_message_refers_and_echoes_request_ids(edge, fhir_example) -> None:
    client, _, received = edge
    sent = message(fhir_example)
    ids = {"X-Request-ID": str(uuid.uuid4()), "X-Correlation-ID": str(uuid.uuid4())}
    answer = await client.post("/fhir/$process-message", json=sent, headers={**FHIR, **ids})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-request-id"] == ids["X-Request-ID"]
    assert answer.headers["x-correlation-id"] == ids["X-Correlation-ID"]
    reply = answer.json()
    assert reply["type"] == "message"
    header = reply["entry"][0]["resource"]
    assert header["response"] == {"identifier": sent["entry"][0]["resource"]["id"], "code": "ok"}
    referral_id = header["focus"][0]["reference"].rsplit("/", 1)[-1]
    task = (await client.get(f"/fhir/Task/{referral_id}")).json()
    assert task["status"] == "requested"
    await relay(client)
    assert len(received) == 1


async def test_message_withdrawing_a_referral_cancels_its_task(edge, fhir_example, sign) -> None:
    client, _, _ = edge
    first = await client.post("/fhir/$process-message", json=message(fhir_example), headers=FHIR)
    referral_id = first.json()["entry"][0]["resource"]["focus"][0]["reference"].rsplit("/", 1)[-1]

    # another organisation cannot withdraw it
    elsewhere = await client.post(
        "/fhir/$process-message",
        json=message(fhir_example, status="revoked"),
        headers=FHIR,
        auth=sign("gp-next-door"),
    )
    assert elsewhere.status_code == 404

    for _ in range(2):  # withdrawing twice is the same as once
        withdrawn = await client.post(
            "/fhir/$process-message", json=message(fhir_example, status="revoked"), headers=FHIR
        )
        assert withdrawn.status_code == 200, withdrawn.text
    task = (await client.get(f"/fhir/Task/{referral_id}")).json()
    assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == (
        "cancelled",
        "revoked",
    )
    await relay(client)
    updates = client._transport.app.state.published_updates  # noqa: SLF001
    assert [u.status.value for u in updates] == ["revoked"]


async def test_message_rules(edge, fhir_example) -> None:
    client, _, _ = edge
    no_header = message(fhir_example)
    no_header["entry"].append(no_header["entry"].pop(0))
    answer = await client.post("/fhir/$process-message", json=no_header, headers=FHIR)
    assert answer.status_code == 422
    assert answer.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource"]

    other_event = message(fhir_example)
    other_event["entry"][0]["resource"]["eventCoding"]["code"] = "booking-request"
    answer = await client.post("/fhir/$process-message", json=other_event, headers=FHIR)
    assert answer.status_code == 422

    transaction_sent = transaction(fhir_example)
    answer = await client.post("/fhir/$process-message", json=transaction_sent, headers=FHIR)
    assert answer.status_code == 422
    assert answer.json()["issue"][0]["expression"] == ["Bundle.type"]


async def test_a_resource_that_is_not_a_bundle_is_refused(edge, fhir_example) -> None:
    client, _, _ = edge
    for path in ("/fhir", "/fhir/$process-message"):
        answer = await client.post(
            path, json=fhir_example("social-prescribing-referral.json"), headers=FHIR
        )
        assert answer.status_code == 400
        assert answer.json()["issue"][0]["expression"] == ["resourceType"]
