"""What the FHIR library does not check for us: NHS number check digits, ODS codes,
conditional create, and two-way referrals naming a performer in the network."""

from __future__ import annotations

import json

import pytest

from referral_intake.domain import valid_nhs_number

FHIR = {"Content-Type": "application/fhir+json"}


async def relay(client) -> None:
    await client._transport.app.state.runtime.relay.relay_once()  # noqa: SLF001


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("9000000009", True),  # the NHS test number in the examples
        ("943 476 5919", True),
        ("9434765918", False),  # wrong check digit
        ("1234567890", False),  # check digit would be 10: never issued
        ("94347659", False),
        ("94347659AB", False),
    ],
)
def test_nhs_number_check_digit(number, valid) -> None:
    assert valid_nhs_number(number) is valid


async def test_a_mistyped_nhs_number_is_refused_without_repeating_it(edge, fhir_example) -> None:
    client, _, received = edge
    resource = fhir_example("social-prescribing-referral.json")
    resource["contained"][0]["identifier"][0]["value"] = "9000000008"
    refused = await client.post("/fhir/ServiceRequest", json=resource, headers=FHIR)
    assert refused.status_code == 422
    issue = refused.json()["issue"][0]
    assert issue["expression"] == ["ServiceRequest.contained[0].identifier[0].value"]
    assert "Modulus 11" in issue["diagnostics"]
    assert "9000000008" not in refused.text
    await relay(client)
    assert received == []


async def test_a_malformed_ods_code_is_refused(edge, fhir_example) -> None:
    client, _, _ = edge
    resource = fhir_example("social-prescribing-referral.json")
    resource["requester"] = {
        "identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "b8!"}
    }
    refused = await client.post("/fhir/ServiceRequest", json=resource, headers=FHIR)
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["ServiceRequest.requester.identifier.value"]


async def test_conditional_create_returns_the_existing_referral(edge, fhir_example) -> None:
    client, _, received = edge
    resource = fhir_example("social-prescribing-referral.json")
    condition = {"If-None-Exist": "identifier=https://linkwell.example/Id/demo-gp-referral|c-1"}
    resource["identifier"][0]["value"] = "c-1"
    first = await client.post("/fhir/ServiceRequest", json=resource, headers={**FHIR, **condition})
    assert first.status_code == 201
    resource["note"] = [{"text": "sent again by a retrying system"}]
    second = await client.post("/fhir/ServiceRequest", json=resource, headers={**FHIR, **condition})
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert "note" not in second.json()  # the referral as first received
    await relay(client)
    assert len(received) == 1

    bad = await client.post(
        "/fhir/ServiceRequest", json=resource, headers={**FHIR, "If-None-Exist": "status=active"}
    )
    assert bad.status_code == 400


async def test_vcse_refers_back_to_a_link_worker_service(edge, sign, fhir_example) -> None:
    client, _, received = edge
    resource = fhir_example("social-prescribing-referral.json")
    resource["identifier"][0]["value"] = "two-way-1"
    resource["performer"] = [
        {"identifier": {"system": "https://linkwell.example/Id/partner", "value": "link-worker"}}
    ]
    created = await client.post(
        "/fhir/ServiceRequest", json=resource, headers=FHIR, auth=sign("vcse-walk")
    )
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    await relay(client)
    [event] = received
    assert event.source.org_id == "vcse-walk" and event.source.kind == "vcse"
    assert event.requested_performer == "link-worker"

    task_url = f"/fhir/Task/{referral_id}"
    assert (await client.get(task_url, auth=sign("vcse-walk"))).status_code == 200
    assert (await client.get(task_url, auth=sign("link-worker"))).status_code == 200
    assert (await client.get(task_url, auth=sign("gp-next-door"))).status_code == 403
    # the requested performer may accept it
    task = (await client.get(task_url, auth=sign("link-worker"))).json()
    task["status"] = "accepted"
    accepted = await client.put(
        task_url, content=json.dumps(task), headers=FHIR, auth=sign("link-worker")
    )
    assert accepted.status_code == 200


async def test_a_performer_outside_the_network_is_refused(edge, sign, fhir_example) -> None:
    client, _, _ = edge
    resource = fhir_example("social-prescribing-referral.json")
    resource["performer"] = [
        {"identifier": {"system": "https://linkwell.example/Id/partner", "value": "nobody"}}
    ]
    refused = await client.post("/fhir/ServiceRequest", json=resource, headers=FHIR)
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["ServiceRequest.performer[0]"]
