"""matching settings (environment prefix MATCHING_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from linkwell.settings import NetworkSettings


class MatchingSettings(NetworkSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHING_", extra="ignore")

    host: str = "0.0.0.0"
    port: int = 8081
    database: str = "matching"
    directory_file: Path | None = None
    max_candidates: int = 5
