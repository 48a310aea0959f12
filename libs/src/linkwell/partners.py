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
    kind: Literal["gp", "vcse", "link-worker", "ops", "service"]
    tenant: str
    ods_code: str | None = None
    network_identifier: str | None = Field(
        default=None, description="For VCSE organisations without an ODS code"
    )
    callback_url: str | None = None
    email: str | None = Field(
        default=None, description="the organisation's address for notices (not a person's)"
    )
    sms_number: str | None = Field(
        default=None, description="the organisation's mobile number for short notices"
    )
    fhir_rest_hook_url: str | None = Field(
        default=None,
        description="FHIR Subscription rest-hook endpoint: id-only notifications of Task changes",
    )
    public_key: str | None = Field(
        default=None, description="PEM public key that verifies the partner's bearer tokens"
    )
    webhook_secret: str | None = Field(
        default=None,
        description="Standard Webhooks signing secret (whsec_...) shared with the partner",
    )


class PartnerFile(BaseModel):
    partners: list[Partner]


def load_partners(path: Path) -> list[Partner]:
    if not path.exists():
        return []
    return PartnerFile.model_validate(json.loads(path.read_text())).partners


def key_pair(keys_dir: Path, name: str) -> tuple[Path, Path]:
    """`<name>.pem` (private, readable by the owner only) and `<name>.pub.pem` in `keys_dir`,
    made once and kept."""
    from linkwell.auth import generate_key

    keys_dir.mkdir(parents=True, exist_ok=True)
    private_file, public_file = keys_dir / f"{name}.pem", keys_dir / f"{name}.pub.pem"
    if not (private_file.exists() and public_file.exists()):
        private, public = generate_key()
        private_file.touch(mode=0o600)
        private_file.write_text(private)
        public_file.write_text(public)
    return private_file, public_file


def with_demo_keys(template: Path, keys_dir: Path, out: Path) -> Path:
    """The demo registry with a key pair for every partner: private keys stay in `keys_dir`
    (one PEM per organisation, made once and kept), public keys go into the registry written to
    `out`. For demonstrations and tests; a real partner makes its own key and sends only the
    public half."""
    import base64
    import secrets

    registry = json.loads(template.read_text())
    for entry in registry["partners"]:
        entry["public_key"] = key_pair(keys_dir, entry["org_id"])[1].read_text()
        secret_file = keys_dir / f"{entry['org_id']}.webhook-secret"
        if not secret_file.exists():
            secret_file.touch(mode=0o600)
            secret_file.write_text("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
        entry["webhook_secret"] = secret_file.read_text()
    # the network's own services that call each other (notifications reads a consenting
    # person's contact details from intake at the moment of sending, and keeps none)
    registry["partners"] = [
        p for p in registry["partners"] if p["org_id"] != "linkwell-notifications"
    ] + [
        {
            "org_id": "linkwell-notifications",
            "name": "Linkwell notifications service",
            "kind": "service",
            "tenant": "*",
            "public_key": key_pair(keys_dir, "linkwell-notifications")[1].read_text(),
        }
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(registry, indent=1))
    return out


def action_keys(keys_dir: Path) -> tuple[Path, Path]:
    """The network's key pair for zero-login action links."""
    return key_pair(keys_dir, "actions")
