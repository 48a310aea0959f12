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
    public_base_url: str = "http://localhost:8082"
    token_audience: str | None = None  # the `aud` of providers' tokens; default: base URL
    stale_after_days: float = 90.0  # capacity unconfirmed for longer is treated as unknown
    stale_check_every_seconds: float = 3600.0
