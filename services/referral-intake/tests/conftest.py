from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from linkwell.partners import Partner

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "fhir"

GP = Partner(org_id="gp-demo-headingley", name="Demo practice", kind="gp", tenant="demo-region")
OTHER_TENANT_GP = Partner(org_id="gp-elsewhere", name="Elsewhere", kind="gp", tenant="other")


def load(name: str) -> dict[str, Any]:
    path = FIXTURES / name if (FIXTURES / name).exists() else EXAMPLES / name
    return json.loads(path.read_text())


@pytest.fixture
def partners() -> list[Partner]:
    return [GP, OTHER_TENANT_GP]


@pytest.fixture
def fhir_example():
    """Loads a FHIR example: the standards' examples in fixtures/, or the repository's own."""
    return load
