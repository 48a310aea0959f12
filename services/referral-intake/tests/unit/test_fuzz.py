"""Fuzzing the FHIR edge: valid requests from the standards' examples, mutated at random
(elements removed, replaced with any JSON, wrong types, odd headers). Whatever arrives, the
answer is a FHIR answer: never a 500, always an OperationOutcome for an error.

CI runs a bounded, reproducible budget; `LINKWELL_FUZZ_EXAMPLES=5000 LINKWELL_FUZZ_RANDOM=1`
searches much further."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkwell.documents import MemoryDocumentStore
from referral_intake.app import build
from referral_intake.config import IntakeSettings

BUDGET = settings(
    max_examples=int(os.environ.get("LINKWELL_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=not os.environ.get("LINKWELL_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=24),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)


def slots(node: Any, found: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((node, key))
            slots(value, found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.append((node, index))
            slots(value, found)
    return found


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    document = copy.deepcopy(seed)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        places = slots(document, [])
        if not places:
            break
        container, key = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["replace", "delete", "retype", "duplicate"]))
        if action == "replace":
            container[key] = draw(any_json)
        elif action == "delete":
            del container[key]
        elif action == "retype":
            value = container[key]
            container[key] = [value] if not isinstance(value, list) else (value[0] if value else {})
        elif isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
    return document


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
odd_headers = st.fixed_dictionaries(
    {},
    optional={
        "If-Match": header_text,
        "If-None-Exist": header_text,
        "X-Request-ID": header_text,
        "Content-Type": st.sampled_from(
            ["application/fhir+json", "application/json", "text/plain", "application/fhir+xml"]
        ),
    },
)


def assert_fhir_answer(answer: Any) -> None:
    assert answer.status_code < 500, answer.text[:500]
    if answer.status_code >= 400:
        assert answer.json()["resourceType"] == "OperationOutcome"


async def bodies(client: Any, fhir_example: Any) -> dict[str, Any]:
    referral = fhir_example("social-prescribing-referral.json")
    referral["identifier"][0]["value"] = f"fuzz-{uuid.uuid4()}"
    created = await client.post(
        "/fhir/ServiceRequest", json=referral, headers={"Content-Type": "application/fhir+json"}
    )
    task = (await client.get(f"/fhir/Task/{created.json()['id']}")).json()
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    bundle_sr = fhir_example("social-prescribing-referral.json")
    bundle_sr.pop("contained")
    bundle_sr["subject"] = {"reference": patient_url}
    patient = fhir_example("36_ukcore_patient_richard_smith.json")
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": patient,
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": bundle_sr,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
        ],
    }
    message = copy.deepcopy(transaction)
    message["type"] = "message"
    for entry in message["entry"]:
        entry.pop("request")
    message["entry"].insert(
        0,
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {
                "resourceType": "MessageHeader",
                "id": "h1",
                "eventCoding": {
                    "system": "https://fhir.nhs.uk/CodeSystem/message-events-bars",
                    "code": "servicerequest-request",
                },
                "source": {"endpoint": "https://gp.example/fhir"},
                "focus": [{"reference": message["entry"][1]["fullUrl"]}],
            },
        },
    )
    return {
        "referral": referral,
        "task": task,
        "transaction": transaction,
        "message": message,
        "patch": [{"op": "replace", "path": "/status", "value": "cancelled"}],
    }


ROUTES = {
    "referral": ("POST", "/fhir/ServiceRequest", "application/fhir+json"),
    "transaction": ("POST", "/fhir", "application/fhir+json"),
    "message": ("POST", "/fhir/$process-message", "application/fhir+json"),
    "task": ("PUT", "/fhir/Task/{id}", "application/fhir+json"),
    "patch": ("PATCH", "/fhir/Task/{id}", "application/json-patch+json"),
}


class Edge:
    """referral-intake in process on an event loop of its own, so hypothesis (which drives
    plain functions) can send it one request per example."""

    def __init__(self, partners: list[Any], sign: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.app, self.runtime = build(
            IntakeSettings(redrive_after_seconds=3600),
            store=MemoryDocumentStore(),
            partners=partners,
        )
        self.testing = TestKafkaBroker(self.runtime.broker)
        self.run(self.testing.__aenter__())
        self.run(self.runtime.start())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://intake",
            auth=sign("gp-demo-headingley"),
        )

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self.runtime.relay.stop())
        self.run(self.testing.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture
def loop_edge(partners, sign) -> Iterator[Edge]:
    edge = Edge(partners, sign)
    yield edge
    edge.close()


@pytest.mark.parametrize("route", list(ROUTES))
def test_mutated_requests_never_get_a_server_error(loop_edge, fhir_example, route) -> None:
    seeds = loop_edge.run(bodies(loop_edge.client, fhir_example))
    method, path, content_type = ROUTES[route]
    path = path.format(id=seeds["task"]["id"])

    @BUDGET
    @given(body=mutated(seeds[route]), headers=odd_headers)
    def probe(body: Any, headers: dict[str, str]) -> None:
        answer = loop_edge.run(
            loop_edge.client.request(
                method,
                path,
                content=json.dumps(body),
                headers={"Content-Type": content_type, **headers},
            )
        )
        assert_fhir_answer(answer)

    probe()


def test_arbitrary_bytes_never_get_a_server_error(loop_edge) -> None:
    @BUDGET
    @given(
        body=st.binary(max_size=200),
        path=st.sampled_from(["/fhir/ServiceRequest", "/fhir", "/fhir/$process-message"]),
    )
    def probe(body: bytes, path: str) -> None:
        answer = loop_edge.run(
            loop_edge.client.post(
                path, content=body, headers={"Content-Type": "application/fhir+json"}
            )
        )
        assert_fhir_answer(answer)

    probe()
