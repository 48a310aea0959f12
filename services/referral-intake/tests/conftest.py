from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from linkwell.auth import PartnerAuth, generate_key
from linkwell.documents import MemoryDocumentStore
from linkwell.partners import Partner
from linkwell_schemas.events import ReferralReceived, ReferralUpdated
from referral_intake.app import build
from referral_intake.config import IntakeSettings

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "fhir"

AUDIENCE = "http://localhost:8080/fhir"
KEYS = {
    org: generate_key()
    for org in ("gp-demo-headingley", "gp-elsewhere", "gp-next-door", "vcse-walk", "link-worker")
}


def partner(org_id: str, kind: str, tenant: str = "demo-region") -> Partner:
    return Partner(org_id=org_id, name=org_id, kind=kind, tenant=tenant, public_key=KEYS[org_id][1])


GP = partner("gp-demo-headingley", "gp")
OTHER_TENANT_GP = partner("gp-elsewhere", "gp", tenant="other")
NEIGHBOUR_GP = partner("gp-next-door", "gp")
PROVIDER = partner("vcse-walk", "vcse")
LINK_WORKER = partner("link-worker", "link-worker")


def signed_as(org_id: str) -> PartnerAuth:
    """Requests signed by a partner's key, a fresh token each."""
    return PartnerAuth(KEYS[org_id][0], org_id, AUDIENCE)


def load(name: str) -> dict[str, Any]:
    path = FIXTURES / name if (FIXTURES / name).exists() else EXAMPLES / name
    return json.loads(path.read_text())


@pytest.fixture
def partners() -> list[Partner]:
    return [GP, OTHER_TENANT_GP, NEIGHBOUR_GP, PROVIDER, LINK_WORKER]


@pytest.fixture
def sign():
    return signed_as


@pytest.fixture
def fhir_example():
    """Loads a FHIR example: the standards' examples in fixtures/, or the repository's own."""
    return load


@pytest.fixture
async def edge(partners, sign) -> AsyncIterator[tuple[httpx.AsyncClient, object, list]]:
    """referral-intake in process: in-memory store, FastStream's in-memory broker, and an
    HTTP client signed as the demo GP practice."""
    app, runtime = build(
        IntakeSettings(redrive_after_seconds=3600), store=MemoryDocumentStore(), partners=partners
    )
    received: list[ReferralReceived] = []
    updates: list[ReferralUpdated] = []

    @runtime.broker.subscriber(ReferralReceived.topic, group_id="test-observer")
    async def observe(body: dict) -> None:
        received.append(ReferralReceived.model_validate(body))

    @runtime.broker.subscriber(ReferralUpdated.topic, group_id="test-observer")
    async def observe_updates(body: dict) -> None:
        updates.append(ReferralUpdated.model_validate(body))

    app.state.published_updates = updates

    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://intake", auth=sign("gp-demo-headingley")
        ) as client:
            yield client, broker, received
        await runtime.relay.stop()
