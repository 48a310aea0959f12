"""Composition root of matching: directory, Kafka handlers, outbox relay, HTTP API."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from linkwell.documents import DocumentStore, MongoDocumentStore
from linkwell.runtime import ServiceRuntime
from matching import __version__, handlers
from matching.config import MatchingSettings
from matching.directory import read_directory_file
from matching.store import ASSETS, PROPOSALS, DirectoryStore

SERVICE = handlers.SERVICE
log = logging.getLogger(__name__)


async def import_directory(
    directory: DirectoryStore, settings: MatchingSettings, tenant: str = "demo-region"
) -> int:
    if settings.directory_file is None:
        return 0
    changed = 0
    for entry in read_directory_file(settings.directory_file):
        if await directory.upsert_asset(entry.id, entry.to_doc(), tenant):
            changed += 1
    log.info("directory import: %d assets new or changed", changed)
    return changed


def build(
    settings: MatchingSettings,
    store: DocumentStore | None = None,
    broker: KafkaBroker | None = None,
) -> tuple[FastAPI, ServiceRuntime]:
    documents = store or MongoDocumentStore(settings.mongodb_url, settings.database)
    runtime = ServiceRuntime(
        SERVICE,
        documents,
        [ASSETS, PROPOSALS],
        settings.kafka_bootstrap_servers,
        broker=broker,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    directory = DirectoryStore(documents, on_written=runtime.relay.wake)
    handlers.register(runtime.consumer, directory, settings.max_candidates)

    async def load() -> None:
        await import_directory(directory, settings)

    runtime.on_startup(load)
    app = runtime.http_app("Linkwell matching", version=__version__)
    app.state.directory = directory

    @app.get("/assets")
    async def list_assets() -> list[dict[str, Any]]:
        out = []
        for doc in await directory.assets():
            out.append({k: v for k, v in doc.items() if not k.startswith("_")} | {"id": doc["_id"]})
        return sorted(out, key=lambda a: a["id"])

    @app.get("/proposals/{referral_id}")
    async def proposal(referral_id: str) -> dict[str, Any]:
        doc = await directory.proposed(referral_id)
        return {"referral_id": referral_id, "outcome": (doc or {}).get("last_outcome")}

    return app, runtime
