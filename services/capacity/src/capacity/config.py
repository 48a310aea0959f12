"""capacity settings (environment prefix CAPACITY_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from linkwell.settings import NetworkSettings


class CapacitySettings(NetworkSettings):
    model_config = SettingsConfigDict(env_prefix="CAPACITY_", extra="ignore")

    host: str = "0.0.0.0"
    port: int = 8082
    database: str = "capacity"
    hold_hours: float = 72.0
    resume_after_seconds: float = 10.0
    sweep_every_seconds: float = 5.0
