"""Composition root of capacity: Kafka handlers, outbox relay, resume sweep, HTTP API."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from faststream.kafka import KafkaBroker

from capacity import __version__, domain, handlers
from capacity.config import CapacitySettings
from capacity.store import ASSETS, PLACEMENTS, SERVICE, CapacityStore
from linkwell.documents import DocumentStore, MongoDocumentStore
from linkwell.runtime import ServiceRuntime


def build(
    settings: CapacitySettings,
    store: DocumentStore | None = None,
    broker: KafkaBroker | None = None,
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

    app = runtime.http_app("Linkwell capacity", version=__version__)
    app.state.places = places

    @app.get("/assets/{asset_id}/capacity")
    async def asset_capacity(asset_id: str) -> dict[str, Any]:
        asset = await places.asset(asset_id)
        if asset is None:
            raise HTTPException(404, "unknown asset")
        return {
            "asset_id": asset_id,
            "capacity": asset.get("capacity"),
            "held": len(asset.get("holds", {})),
            "in_use": len(asset.get("in_use", {})),
            "free": domain.free_places(asset),
            "waitlist_length": len(asset.get("waitlist", [])),
            "accepting_referrals": asset.get("accepting_referrals", True),
        }

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
