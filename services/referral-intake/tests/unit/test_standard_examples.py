"""Every example from the standards that Linkwell ships is either accepted or answered with a
clear OperationOutcome: never a 500, never its personal data echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
FHIR = {"Content-Type": "application/fhir+json"}

# file -> (what a sender would do with it, expected status)
EXPECTED = {
    # a social prescribing-style referral (Gravity SDOH): accepted
    "01_sdohcc_servicerequest_food_pantry.json": ("create", 201),
    # already completed: not a new referral
    "02_sdohcc_servicerequest_subreferral_garden.json": ("create", 422),
    # a colonoscopy referral, and a request with no service at all: not for this network
    "33_ukcore_servicerequest_gp_colonoscopy_referral.json": ("create", 422),
    "34_ukcore_servicerequest_source_of_request_ext.json": ("create", 422),
    # does not conform to FHIR R4
    "29_INVALID_bars_api_servicerequest_put_body.json": ("create", 400),
}


def examples() -> list[str]:
    return sorted(p.name for p in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("name", examples())
async def test_standard_example_is_accepted_or_cleanly_answered(edge, fhir_example, name) -> None:
    client, _, _ = edge
    resource = fhir_example(name)
    rtype = resource["resourceType"]
    if rtype == "ServiceRequest":
        answer = await client.post("/fhir/ServiceRequest", json=resource, headers=FHIR)
    elif rtype == "Task":  # a partner updating a Task this server never issued
        answer = await client.put(f"/fhir/Task/{resource['id']}", json=resource, headers=FHIR)
    else:  # resources this server does not take on their own
        answer = await client.post(f"/fhir/{rtype}", json=resource, headers=FHIR)
    assert answer.status_code < 500
    expected = EXPECTED.get(name, ("other", 404))[1]
    if expected is not None:
        assert answer.status_code == expected, answer.text
    if answer.status_code >= 400:
        outcome = answer.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert all(issue.get("diagnostics") for issue in outcome["issue"])
        for identifier in resource.get("identifier", []) or []:
            if isinstance(identifier, dict) and identifier.get("value"):
                assert identifier["value"] not in answer.text
        names = [n.get("family") for c in resource.get("contained", []) for n in c.get("name", [])]
        assert not any(n and n in answer.text for n in names)


def test_every_shared_example_is_shipped() -> None:
    shared = Path(__file__).resolve().parents[5] / "shared" / "data" / "fhir"
    if not shared.exists():
        pytest.skip("the shared reference data is not beside this checkout")
    assert {p.name for p in shared.glob("*.json")} <= set(examples())
