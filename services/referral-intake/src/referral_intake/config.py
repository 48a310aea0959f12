"""referral-intake settings (environment prefix INTAKE_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from linkwell.settings import NetworkSettings


class IntakeSettings(NetworkSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    host: str = "0.0.0.0"
    port: int = 8080
    database: str = "referral_intake"
    public_base_url: str = "http://localhost:8080/fhir"
    token_audience: str | None = None  # the `aud` partners' tokens carry; default: base URL
    action_verify_key_file: Path | None = None  # public key of notifications' action links
    actions_base_url: str | None = None  # default: the base URL's origin + /actions
    max_body_bytes: int = 1_000_000
    redrive_after_seconds: float = 30.0
    redrive_every_seconds: float = 5.0
    max_redrives: int = 10
