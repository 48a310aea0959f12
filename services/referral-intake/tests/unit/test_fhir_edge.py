"""The FHIR edge with FastStream's in-memory broker and the in-memory store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from linkwell.auth import PartnerAuth, generate_key
from linkwell_schemas.events import PlaceReserved

HEADERS = {"Content-Type": "application/fhir+json"}


async def relay(client) -> None:
    app = client._transport.app  # noqa: SLF001 - the app under test
    await app.state.runtime.relay.relay_once()


async def test_referral_is_accepted_with_location_and_published_once(edge, fhir_example) -> None:
    client, _, received = edge
    body = json.dumps(fhir_example("social-prescribing-referral.json"))
    first = await client.post("/fhir/ServiceRequest", content=body, headers=HEADERS)
    assert first.status_code == 201, first.text
    referral_id = first.json()["id"]
    assert first.headers["location"].endswith(f"/fhir/ServiceRequest/{referral_id}")
    again = await client.post("/fhir/ServiceRequest", content=body, headers=HEADERS)
    assert again.status_code == 200 and again.json()["id"] == referral_id
    await relay(client)
    assert [e.referral_id for e in received] == [referral_id]
    event = received[0]
    assert event.location and event.location.postcode_sector == "LS6 3"
    assert "9000000009" not in event.model_dump_json()  # no NHS number leaves intake

    tasks = await client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}", headers=HEADERS)
    task = tasks.json()["entry"][0]["resource"]
    assert (
        task["status"] == "requested" and task["businessStatus"]["coding"][0]["code"] == "received"
    )
    assert task["code"]["coding"][0]["code"] == "fulfill"
    assert task["focus"]["reference"] == f"ServiceRequest/{referral_id}"


async def test_downstream_event_updates_task_once_even_when_redelivered(edge, fhir_example) -> None:
    client, broker, _ = edge
    created = await client.post(
        "/fhir/ServiceRequest",
        headers=HEADERS,
        content=json.dumps(fhir_example("social-prescribing-referral.json")),
    )
    referral_id = created.json()["id"]
    event = PlaceReserved(
        producer="capacity",
        tenant="demo-region",
        correlation_id=referral_id,
        referral_id=referral_id,
        asset_id="hyde-park-walking-for-health",
        asset_name="Hyde Park Walking for Health",
        provider_org="vcse-walk",
        hold_expires_at=datetime.now(UTC) + timedelta(days=3),
    )
    for _ in range(2):
        await broker.publish(
            event.model_dump_json().encode(), PlaceReserved.topic, key=referral_id.encode()
        )
    task = (await client.get(f"/fhir/Task/{referral_id}", headers=HEADERS)).json()
    assert task["businessStatus"]["coding"][0]["code"] == "place-held"
    assert task["output"][0]["valueReference"]["display"] == "Hyde Park Walking for Health"
    doc = await client._transport.app.state.referrals.get(referral_id)  # noqa: SLF001
    assert [h["event"] for h in doc["history"]].count(PlaceReserved.topic) == 1


async def test_invalid_nhs_bars_body_is_refused_naming_the_bad_elements(edge, fhir_example) -> None:
    client, _, received = edge
    response = await client.post(
        "/fhir/ServiceRequest",
        headers=HEADERS,
        content=json.dumps(fhir_example("29_INVALID_bars_api_servicerequest_put_body.json")),
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    paths = {e for issue in outcome["issue"] for e in issue.get("expression", [])}
    assert {"ServiceRequest.basedOn", "ServiceRequest.PatientInstruction"} <= paths
    assert "ADVICE GIVEN" not in response.text  # the submitted values are never echoed
    await relay(client)
    assert received == []


async def test_completed_request_is_not_a_new_referral(edge, fhir_example) -> None:
    client, _, _ = edge
    response = await client.post(
        "/fhir/ServiceRequest",
        headers=HEADERS,
        content=json.dumps(fhir_example("02_sdohcc_servicerequest_subreferral_garden.json")),
    )
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["ServiceRequest.status"]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Type": "text/plain"}, "{}", 415),
        (HEADERS, "{not json", 400),
        (HEADERS, json.dumps({"resourceType": "Patient"}), 400),
        (
            HEADERS,
            json.dumps({"resourceType": "ServiceRequest", "status": "active", "intent": "order"}),
            400,
        ),
        (HEADERS, "x" * 1_000_001, 413),
    ],
    ids=[
        "content-type",
        "not-json",
        "wrong-type",
        "no-subject",
        "too-large",
    ],
)
async def test_bad_requests_get_specific_status_and_operation_outcome(
    edge, headers, body, status
) -> None:
    client, _, _ = edge
    response = await client.post("/fhir/ServiceRequest", headers=headers, content=body)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_another_tenant_cannot_read_the_referral(edge, fhir_example, sign) -> None:
    client, _, _ = edge
    created = await client.post(
        "/fhir/ServiceRequest",
        headers=HEADERS,
        content=json.dumps(fhir_example("social-prescribing-referral.json")),
    )
    referral_id = created.json()["id"]
    other = sign("gp-elsewhere")
    assert (await client.get(f"/fhir/Task/{referral_id}", auth=other)).status_code == 404
    assert (await client.get(f"/fhir/ServiceRequest/{referral_id}", auth=other)).status_code == 404


async def test_capability_statement_tells_the_truth_about_every_route(edge) -> None:
    client, _, _ = edge
    statement = (await client.get("/fhir/metadata")).json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    rest = statement["rest"][0]
    declared = (
        {(r["type"], i["code"]) for r in rest["resource"] for i in r["interaction"]}
        | {("system", i["code"]) for i in rest["interaction"]}
        | {("system", f"${o['name']}") for o in rest["operation"]}
    )
    routes = {
        (route.path, method)
        for route in client._transport.app.routes  # noqa: SLF001
        for method in getattr(route, "methods", set())
        if route.path.startswith("/fhir") and "{resource_type}" not in route.path
    }
    served = {
        ("/fhir/ServiceRequest", "POST"): ("ServiceRequest", "create"),
        ("/fhir/ServiceRequest/{referral_id}", "GET"): ("ServiceRequest", "read"),
        ("/fhir/Task/{referral_id}", "GET"): ("Task", "read"),
        ("/fhir/Task/{referral_id}", "PUT"): ("Task", "update"),
        ("/fhir/Task/{referral_id}", "PATCH"): ("Task", "patch"),
        ("/fhir/Task", "GET"): ("Task", "search-type"),
        ("/fhir/Task/{referral_id}/_history", "GET"): ("Task", "history-instance"),
        ("/fhir", "POST"): ("system", "transaction"),
        ("/fhir/$process-message", "POST"): ("system", "$process-message"),
    }
    routes.discard(("/fhir/metadata", "GET"))
    assert routes == set(served)  # every route is described ...
    assert declared == set(served.values())  # ... and nothing else is claimed


async def test_task_search_by_several_referrals_answers_each_once(edge, fhir_example) -> None:
    client, _, _ = edge
    ids = []
    for reference in ("or-1", "or-2"):
        resource = fhir_example("social-prescribing-referral.json")
        resource["identifier"][0]["value"] = reference
        created = await client.post("/fhir/ServiceRequest", json=resource, headers=HEADERS)
        ids.append(created.json()["id"])
    focus = ",".join(f"ServiceRequest/{i}" for i in [*ids, ids[0], "unknown"])
    bundle = (await client.get("/fhir/Task", params={"focus": focus}, headers=HEADERS)).json()
    assert bundle["total"] == 2
    assert [e["resource"]["focus"]["reference"] for e in bundle["entry"]] == [
        f"ServiceRequest/{i}" for i in ids
    ]

    too_many = ",".join(f"ServiceRequest/{n}" for n in range(101))
    refused = await client.get("/fhir/Task", params={"focus": too_many}, headers=HEADERS)
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["code"] == "too-costly"


async def test_requests_without_a_valid_partner_token_are_refused(edge, sign, fhir_example) -> None:
    client, _, received = edge
    body = json.dumps(fhir_example("social-prescribing-referral.json"))
    stranger = PartnerAuth(generate_key()[0], "gp-demo-headingley", "http://localhost:8080/fhir")
    for auth, why in [
        (None, "bearer token is required"),
        (stranger, "signature does not match"),
        (
            PartnerAuth(generate_key()[0], "nobody", "http://localhost:8080/fhir"),
            "not a registered",
        ),
    ]:
        refused = await client.post(
            "/fhir/ServiceRequest", content=body, headers=HEADERS, auth=auth
        )
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert why in refused.json()["issue"][0]["diagnostics"]
    await relay(client)
    assert received == []


async def test_a_token_cannot_be_replayed(edge, sign, fhir_example) -> None:
    client, _, _ = edge
    token = {}

    class Capture(httpx.Auth):
        def auth_flow(self, request):
            signed = next(sign("gp-demo-headingley").auth_flow(request))
            token["value"] = signed.headers["authorization"]
            yield signed

    first = await client.get("/fhir/Task", params={"focus": "ServiceRequest/x"}, auth=Capture())
    assert first.status_code == 200
    again = await client.get(
        "/fhir/Task",
        params={"focus": "ServiceRequest/x"},
        headers={"Authorization": token["value"]},
        auth=None,
    )
    assert again.status_code == 401
    assert "used before" in again.json()["issue"][0]["diagnostics"]


async def test_only_parties_to_a_referral_and_link_workers_see_it(edge, sign, fhir_example) -> None:
    client, broker, _ = edge
    created = await client.post(
        "/fhir/ServiceRequest",
        headers=HEADERS,
        content=json.dumps(fhir_example("social-prescribing-referral.json")),
    )
    referral_id = created.json()["id"]
    task_url = f"/fhir/Task/{referral_id}"
    assert (await client.get(task_url, auth=sign("gp-next-door"))).status_code == 403
    assert (await client.get(task_url, auth=sign("vcse-walk"))).status_code == 403
    assert (await client.get(task_url, auth=sign("link-worker"))).status_code == 200
    search = await client.get(
        "/fhir/Task", params={"focus": f"ServiceRequest/{referral_id}"}, auth=sign("gp-next-door")
    )
    assert search.json()["total"] == 0

    held = PlaceReserved(
        producer="capacity",
        tenant="demo-region",
        correlation_id=referral_id,
        referral_id=referral_id,
        asset_id="hyde-park-walking-for-health",
        asset_name="Hyde Park Walking for Health",
        provider_org="vcse-walk",
        hold_expires_at=datetime.now(UTC) + timedelta(days=3),
    )
    await broker.publish(held.model_dump_json().encode(), PlaceReserved.topic)
    # the provider holding the place is now a party: it sees the Task
    assert (await client.get(task_url, auth=sign("vcse-walk"))).status_code == 200
