"""notifications settings (environment prefix NOTIFY_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from linkwell.settings import NetworkSettings


class NotifySettings(NetworkSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    host: str = "0.0.0.0"
    port: int = 8083
    database: str = "notifications"
    intake_fhir_base: str = "http://localhost:8080/fhir"  # where this service calls intake
    # intake's public FHIR base: what partners see in notices, and the audience of this
    # service's tokens (default: intake_fhir_base)
    intake_public_base: str | None = None
    webhook_timeout_seconds: float = 5.0
    max_attempts: int = 12  # then the delivery is dead-lettered (listable, replayable)
    retry_base_seconds: float = 2.0  # first retry after about this long, doubling ...
    retry_cap_seconds: float = 3600.0  # ... up to this
    dispatch_every_seconds: float = 1.0
    provider_reminder_days: float = 3.0  # a held place unanswered this long: remind them
    hold_expiring_hours: float = 24.0  # a hold lapsing within this: tell the provider
    stalled_after_days: float = 2.0  # a referral not placed or waitlisted by then: tell referrer
    remind_every_seconds: float = 300.0
    breaker_failures: int = 5  # failures in a row that open an endpoint's circuit
    breaker_cool_off_seconds: float = 30.0
    smtp_host: str | None = None  # email is sent only when a server is configured
    smtp_port: int = 25
    smtp_from: str = "Linkwell <no-reply@linkwell.invalid>"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    sms_base_url: str | None = None  # a GOV.UK Notify-shaped SMS API; no URL, no SMS
    sms_api_key: str | None = None
    sms_template_id: str | None = None  # a template with one ((message)) placeholder
    messages_file: Path | None = None  # the person's messages in more languages (JSON)
    service_id: str = "linkwell-notifications"  # this service, as registered with intake
    service_key_file: Path | None = None  # signs its calls for a person's contact details
    action_signing_key_file: Path | None = None  # private key that signs zero-login links
    actions_base_url: str = "http://localhost:8080/actions"  # where those links lead
