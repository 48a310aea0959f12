"""Composition root of capacity: Kafka handlers, outbox relay, resume sweep, HTTP API."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ConfigDict, Field

from capacity import __version__, domain, handlers
from capacity.config import CapacitySettings
from capacity.store import ASSETS, PLACEMENTS, SERVICE, CapacityStore
from linkwell.auth import AuthError, DocumentReplayGuard, TokenVerifier
from linkwell.documents import DocumentStore, MongoDocumentStore
from linkwell.partners import Partner, load_partners
from linkwell.runtime import ServiceRuntime


def build(
    settings: CapacitySettings,
    store: DocumentStore | None = None,
    broker: KafkaBroker | None = None,
    partners: list[Partner] | None = None,
) -> tuple[FastAPI, ServiceRuntime]:
    documents = store or MongoDocumentStore(settings.mongodb_url, settings.database)
    runtime = ServiceRuntime(
        SERVICE,
        documents,
        [ASSETS, PLACEMENTS],
        settings.kafka_bootstrap_servers,
        broker=broker,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    places = CapacityStore(documents, settings.hold_hours, on_written=runtime.relay.wake)
    handlers.register(runtime.consumer, places)
    runtime.on_startup(places.setup)
    runtime.every("expire-holds", settings.sweep_every_seconds, places.expire_holds)
    runtime.every(
        "resume-stalled-placements",
        settings.sweep_every_seconds,
        lambda: places.resume_stalled(settings.resume_after_seconds),
    )

    runtime.every(
        "flag-stale-capacity",
        settings.stale_check_every_seconds,
        lambda: places.flag_stale(settings.stale_after_days),
    )
    registry = {
        p.org_id: p
        for p in (partners if partners is not None else load_partners(settings.partners_file))
    }
    base = settings.public_base_url.rstrip("/")
    replay = DocumentReplayGuard(documents)
    verifier = TokenVerifier(registry, settings.token_audience or base, replay)
    runtime.every("forget-used-tokens", 60.0, replay.forget_expired)

    app = runtime.http_app("Linkwell capacity", version=__version__)
    app.state.places = places
    app.state.runtime = runtime

    async def provider(request: Request) -> Partner:
        try:
            return await verifier.partner(request.headers.get("authorization"))
        except AuthError as exc:
            raise HTTPException(
                exc.status, exc.message, headers={"WWW-Authenticate": "Bearer"}
            ) from None

    @app.get("/assets/{asset_id}/capacity")
    async def asset_capacity(asset_id: str) -> dict[str, Any]:
        """The asset's level, shaped as an Open Referral / HSDS 3.0 `service_capacity`."""
        asset = await places.asset(asset_id)
        if asset is None:
            raise HTTPException(404, "unknown asset")
        return capacity_view(asset_id, asset)

    @app.put("/assets/{asset_id}/capacity")
    async def set_capacity(
        asset_id: str, change: CapacityUpdate, request: Request
    ) -> dict[str, Any]:
        """The asset's provider sets its maximum, funded places and unit, or pauses (with a
        reason and an optional resume date) and resumes."""
        partner = await provider(request)
        try:
            asset = await places.set_capacity(asset_id, partner.org_id, change.as_asset_fields())
        except LookupError:
            raise HTTPException(404, "unknown asset") from None
        except PermissionError:
            raise HTTPException(403, "only the asset's provider can change its capacity") from None
        return capacity_view(asset_id, asset)

    @app.get("/placements/{referral_id}")
    async def placement(referral_id: str) -> dict[str, Any]:
        doc = await places.placement(referral_id)
        if doc is None:
            raise HTTPException(404, "no placement for this referral")
        return {
            "referral_id": referral_id,
            "state": doc["state"],
            "asset_id": doc.get("asset_id"),
            "refusals": doc.get("refusals", []),
        }

    return app, runtime


class CapacityUpdate(BaseModel):
    """What a provider says about its capacity (a whole statement: PUT)."""

    model_config = ConfigDict(extra="forbid")

    maximum: int = Field(ge=0, le=100_000, description="places (or sessions, hours) in all")
    funded: int | None = Field(default=None, ge=0, le=100_000)
    unit: Literal["places", "sessions", "hours"] = "places"
    accepting_referrals: bool = True
    paused_reason: str | None = Field(default=None, max_length=200)
    resume_on: date | None = Field(default=None, description="a pause ends by itself on this day")

    def as_asset_fields(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["capacity"] = data.pop("maximum")
        if data["accepting_referrals"]:
            data["paused_reason"] = None
            data["resume_on"] = None
        return data


def capacity_view(asset_id: str, asset: dict[str, Any]) -> dict[str, Any]:
    confirmed = asset.get("confirmed_at")
    maximum = None if asset.get("stale") else asset.get("capacity")
    return {
        "asset_id": asset_id,
        "service_capacity": {
            "id": f"{asset_id}-capacity",
            "service_id": asset_id,
            "available": domain.free_places(asset) if maximum is not None else None,
            "maximum": maximum,
            "unit": {"name": asset.get("unit") or "places"},
            "updated": datetime.fromtimestamp(confirmed, UTC).isoformat() if confirmed else None,
        },
        "funded": asset.get("funded"),
        "held": len(asset.get("holds", {})),
        "in_use": len(asset.get("in_use", {})),
        "waitlist_length": len(asset.get("waitlist", [])),
        "accepting_referrals": domain.accepting(asset),
        "paused_reason": asset.get("paused_reason"),
        "resume_on": asset.get("resume_on"),
        "stale": bool(asset.get("stale")),
    }
