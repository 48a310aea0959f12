"""notifications settings (environment prefix NOTIFY_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from linkwell.settings import NetworkSettings


class NotifySettings(NetworkSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    host: str = "0.0.0.0"
    port: int = 8083
    database: str = "notifications"
    intake_fhir_base: str = "http://localhost:8080/fhir"
    webhook_timeout_seconds: float = 5.0
    webhook_attempts: int = 3
