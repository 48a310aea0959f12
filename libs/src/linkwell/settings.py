"""Settings every service reads; each service subclasses with its own environment prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NetworkSettings(BaseSettings):
    """Connection strings shared by every service (no prefix: the names ops teams expect)."""

    model_config = SettingsConfigDict(extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="localhost:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS")
    )
    mongodb_url: str = Field(
        default="mongodb://localhost:27017/?directConnection=true",
        validation_alias=AliasChoices("MONGODB_URL"),
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    partners_file: Path = Field(
        default=Path("config/partners.demo.json"),
        validation_alias=AliasChoices("LINKWELL_PARTNERS_FILE"),
        description="Partner registry seed: organisations, kinds, tenants, callback URLs",
    )
    kafka_session_timeout_ms: int = Field(
        default=6000, validation_alias=AliasChoices("LINKWELL_KAFKA_SESSION_TIMEOUT_MS")
    )
