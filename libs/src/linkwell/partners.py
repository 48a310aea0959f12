"""The partner registry file: organisations in the network, read at start-up by each service
that needs it (intake to know referrers, notifications to know where to deliver)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class Partner(BaseModel):
    org_id: str
    name: str
    kind: Literal["gp", "vcse", "link-worker", "ops"]
    tenant: str
    ods_code: str | None = None
    network_identifier: str | None = Field(
        default=None, description="For VCSE organisations without an ODS code"
    )
    callback_url: str | None = None


class PartnerFile(BaseModel):
    partners: list[Partner]


def load_partners(path: Path) -> list[Partner]:
    if not path.exists():
        return []
    return PartnerFile.model_validate(json.loads(path.read_text())).partners
