from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from linkwell.auth import PartnerAuth, generate_key
from linkwell.partners import Partner

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
