"""Partners change a referral's Task: the provider holding the place accepts, declines with a
reason, records attendance and completes with an outcome; the referrer cancels. Each change is
checked, audited, and published as intake.referral-updated.v1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from linkwell_schemas.events import PlaceReserved

FHIR = {"Content-Type": "application/fhir+json"}
PATCH = {"Content-Type": "application/json-patch+json"}
PROVIDER = "vcse-walk"


async def relay(client) -> None:
    await client._transport.app.state.runtime.relay.relay_once()  # noqa: SLF001


def published(client) -> list:
    return client._transport.app.state.published_updates  # noqa: SLF001


async def referral_with_place_held(client, broker, fhir_example, reference: str) -> str:
    resource = fhir_example("social-prescribing-referral.json")
    resource["identifier"][0]["value"] = reference
    created = await client.post("/fhir/ServiceRequest", json=resource, headers=FHIR)
    referral_id = created.json()["id"]
    held = PlaceReserved(
        producer="capacity",
        tenant="demo-region",
        correlation_id=referral_id,
        referral_id=referral_id,
        asset_id="hyde-park-walking-for-health",
        asset_name="Hyde Park Walking for Health",
        provider_org=PROVIDER,
        hold_expires_at=datetime.now(UTC) + timedelta(days=3),
    )
    await broker.publish(held.model_dump_json().encode(), PlaceReserved.topic)
    return referral_id


async def put_status(client, sign, referral_id, org, status, **elements):
    task = (await client.get(f"/fhir/Task/{referral_id}", auth=sign(org))).json()
    task["status"] = status
    task.update(elements)
    return await client.put(
        f"/fhir/Task/{referral_id}", content=json.dumps(task), headers=FHIR, auth=sign(org)
    )


@pytest.fixture
async def held(edge, fhir_example, request):
    client, broker, _ = edge
    return client, await referral_with_place_held(client, broker, fhir_example, request.node.name)


async def test_provider_accepts_and_the_network_hears_it(held, sign) -> None:
    client, referral_id = held
    accepted = await put_status(client, sign, referral_id, PROVIDER, "accepted")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert accepted.headers["etag"] == f'W/"{accepted.json()["meta"]["versionId"]}"'
    await relay(client)
    [update] = published(client)
    assert (update.referral_id, update.status.value, update.by) == (
        referral_id,
        "accepted",
        PROVIDER,
    )

    history = (await client.get(f"/fhir/Task/{referral_id}/_history")).json()
    assert history["type"] == "history"
    newest = history["entry"][0]
    assert newest["resource"]["status"] == "accepted"
    assert PROVIDER in newest["extension"][0]["valueString"]
    assert [e["resource"]["businessStatus"]["coding"][0]["code"] for e in history["entry"]] == [
        "accepted",
        "place-held",
        "received",
    ]
    doc = await client._transport.app.state.referrals.get(referral_id)  # noqa: SLF001
    audit = doc["history"][-1]
    assert audit["by"] == PROVIDER
    assert audit["changed"]["status"] == ["received", "accepted"]
    assert "at" in audit and "trace_id" in audit


async def test_provider_declines_because_the_person_declined(held, sign) -> None:
    client, referral_id = held
    reason = {
        "coding": [{"system": "http://snomed.info/sct", "code": "871711000000103"}],
        "text": "Prefers to wait until after the holidays",
    }
    patch = [
        {"op": "replace", "path": "/status", "value": "rejected"},
        {"op": "add", "path": "/statusReason", "value": reason},
    ]
    declined = await client.patch(
        f"/fhir/Task/{referral_id}", content=json.dumps(patch), headers=PATCH, auth=sign(PROVIDER)
    )
    assert declined.status_code == 200, declined.text
    task = declined.json()
    assert task["status"] == "rejected"
    assert task["statusReason"]["coding"][0]["code"] == "871711000000103"
    assert task["statusReason"]["text"] == reason["text"]
    await relay(client)
    [update] = published(client)
    assert (update.status.value, update.reason) == ("declined", "person-declined")
    assert "holidays" not in update.model_dump_json()  # the partner's words stay on the Task


async def test_declining_needs_a_coded_reason(held, sign) -> None:
    client, referral_id = held
    refused = await put_status(
        client, sign, referral_id, PROVIDER, "rejected", statusReason={"text": "full"}
    )
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["Task.statusReason"]


async def test_attendance_then_completion_with_an_outcome(held, sign) -> None:
    client, referral_id = held
    assert (await put_status(client, sign, referral_id, PROVIDER, "accepted")).status_code == 200
    for _ in range(2):  # two sessions attended
        attended = await put_status(client, sign, referral_id, PROVIDER, "in-progress")
        assert attended.status_code == 200
    outcome = [{"type": {"text": "outcome"}, "valueString": "Joined the group; walks weekly"}]
    done = await put_status(client, sign, referral_id, PROVIDER, "completed", output=outcome)
    assert done.status_code == 200
    outputs = {o["type"]["text"]: o for o in done.json()["output"]}
    assert outputs["outcome"]["valueString"] == "Joined the group; walks weekly"
    await relay(client)
    assert [u.status.value for u in published(client)] == [
        "accepted",
        "attended",
        "attended",
        "completed",
    ]


async def test_only_the_right_party_makes_each_change(held, sign) -> None:
    client, referral_id = held
    by_referrer = await put_status(client, sign, referral_id, "gp-demo-headingley", "accepted")
    assert by_referrer.status_code == 403
    assert "performer" in by_referrer.json()["issue"][0]["diagnostics"]
    outsider = await put_status(client, sign, referral_id, "link-worker", "cancelled")
    assert outsider.status_code == 200  # link-worker services act for their tenant
    assert outsider.json()["status"] == "cancelled"


async def test_referrer_cancels(held, sign) -> None:
    client, referral_id = held
    cancelled = await put_status(client, sign, referral_id, "gp-demo-headingley", "cancelled")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    late = await put_status(client, sign, referral_id, PROVIDER, "accepted")
    assert late.status_code == 409


async def test_completing_before_accepting_is_a_conflict(held, sign) -> None:
    client, referral_id = held
    refused = await put_status(client, sign, referral_id, PROVIDER, "completed")
    assert refused.status_code == 409
    assert refused.json()["issue"][0]["code"] == "conflict"


async def test_stale_if_match_is_refused(held, sign) -> None:
    client, referral_id = held
    task = (await client.get(f"/fhir/Task/{referral_id}", auth=sign(PROVIDER))).json()
    stale = '"1"'
    task["status"] = "accepted"
    refused = await client.put(
        f"/fhir/Task/{referral_id}",
        content=json.dumps(task),
        headers={**FHIR, "If-Match": f"W/{stale}"},
        auth=sign(PROVIDER),
    )
    assert refused.status_code == 412
    current = f'W/"{task["meta"]["versionId"]}"'
    ok = await client.put(
        f"/fhir/Task/{referral_id}",
        content=json.dumps(task),
        headers={**FHIR, "If-Match": current},
        auth=sign(PROVIDER),
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("method", "headers", "body", "status"),
    [
        ("put", FHIR, json.dumps({"resourceType": "ServiceRequest"}), 400),
        ("put", FHIR, json.dumps({"resourceType": "Task", "status": "accepted"}), 400),
        (
            "put",
            FHIR,
            json.dumps(
                {"resourceType": "Task", "id": "other", "status": "accepted", "intent": "order"}
            ),
            400,
        ),
        (
            "put",
            FHIR,
            json.dumps({"resourceType": "Task", "status": "draft", "intent": "order"}),
            422,
        ),
        (
            "patch",
            FHIR,
            json.dumps([{"op": "replace", "path": "/status", "value": "accepted"}]),
            415,
        ),
        ("patch", PATCH, json.dumps({"op": "replace"}), 400),
        (
            "patch",
            PATCH,
            json.dumps([{"op": "test", "path": "/status", "value": "completed"}]),
            422,
        ),
        ("patch", PATCH, json.dumps([{"op": "remove", "path": "/nothing/here"}]), 422),
    ],
    ids=[
        "not-a-task",
        "task-missing-intent",
        "id-mismatch",
        "status-not-settable",
        "patch-content-type",
        "patch-not-a-list",
        "patch-test-fails",
        "patch-bad-path",
    ],
)
async def test_bad_changes_get_specific_status_and_outcome(
    held, sign, method, headers, body, status
) -> None:
    client, referral_id = held
    response = await client.request(
        method.upper(),
        f"/fhir/Task/{referral_id}",
        content=body,
        headers=headers,
        auth=sign(PROVIDER),
    )
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    await relay(client)
    assert published(client) == []


async def test_provider_lists_its_tasks_by_owner_and_status(edge, sign, fhir_example) -> None:
    client, broker, _ = edge
    first = await referral_with_place_held(client, broker, fhir_example, "caseload-1")
    second = await referral_with_place_held(client, broker, fhir_example, "caseload-2")
    await referral_with_place_held(client, broker, fhir_example, "caseload-3")
    assert (await put_status(client, sign, second, PROVIDER, "accepted")).status_code == 200

    mine = await client.get(
        "/fhir/Task",
        params={"owner": f"Organization/{PROVIDER}", "status": "received,accepted", "_count": 2},
        auth=sign(PROVIDER),
    )
    assert mine.status_code == 200
    assert [e["resource"]["id"] for e in mine.json()["entry"]] == [first, second]
    accepted = await client.get(
        "/fhir/Task", params={"owner": PROVIDER, "status": "accepted"}, auth=sign(PROVIDER)
    )
    assert [e["resource"]["id"] for e in accepted.json()["entry"]] == [second]
    # another practice in the region sees none of them
    theirs = await client.get("/fhir/Task", params={"owner": PROVIDER}, auth=sign("gp-next-door"))
    assert theirs.json()["total"] == 0

    for params in ({}, {"subject": "Patient/1"}, {"owner": PROVIDER, "_count": 0}):
        refused = await client.get("/fhir/Task", params=params, auth=sign(PROVIDER))
        assert refused.status_code == 400
