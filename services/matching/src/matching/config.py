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
    # the demo directory, or any feed file; imported at start (idempotent)
    directory_file: Path | None = None
    # Open Referral UK feeds (files or URLs) imported at start, e.g. '["https://.../services"]'
    directory_sources: list[str] = []
    directory_namespace: str = "oruk"  # prefix of asset ids imported from feeds
    directory_tenant: str = "demo-region"
    max_candidates: int = 5
    refresh_every_seconds: float = 0.5
    public_base_url: str = "http://localhost:8081"
    token_audience: str | None = None  # the `aud` of partners' tokens; default: base URL
