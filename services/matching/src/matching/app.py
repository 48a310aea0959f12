"""Composition root of matching: directory, Kafka handlers, outbox relay, HTTP API."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from prometheus_client import Counter

from linkwell.auth import DocumentReplayGuard, TokenVerifier
from linkwell.documents import DocumentStore, MongoDocumentStore
from linkwell.partners import Partner, load_partners
from linkwell.runtime import ServiceRuntime
from matching import __version__, api, handlers, oruk
from matching.config import MatchingSettings
from matching.directory import Directory
from matching.domain import Decision
from matching.store import ASSETS, PROPOSALS, DirectoryStore

SERVICE = handlers.SERVICE
log = logging.getLogger(__name__)


async def import_sources(
    directory: Directory, settings: MatchingSettings, partners: list[Partner]
) -> list[oruk.ImportReport]:
    """Import the configured directory file and feeds (each idempotent)."""
    sources = [str(settings.directory_file)] if settings.directory_file else []
    sources += settings.directory_sources
    reports = []
    lookup = oruk.provider_lookup(partners)
    for source in sources:
        try:
            report = await asyncio.to_thread(
                oruk.read_feed, source, lookup, settings.directory_namespace
            )
        except Exception as exc:  # one unreachable feed does not stop the service
            log.error("directory source %s could not be read: %s", source, type(exc).__name__)
            continue
        reports.append(await directory.import_report(report, settings.directory_tenant))
        for problem in report.rejected[:20]:
            log.warning("directory import rejected %s", problem)
        for note in report.notes:
            log.warning("directory import of %s: %s", source, note)
    return reports


async def import_directory(directory: Directory, settings: MatchingSettings) -> int:
    reports = await import_sources(directory, settings, [])
    return sum(r.changed for r in reports)


def build(
    settings: MatchingSettings,
    store: DocumentStore | None = None,
    broker: KafkaBroker | None = None,
    partners: list[Partner] | None = None,
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
    store_ = DirectoryStore(documents, on_written=runtime.relay.wake)
    outcomes = Counter(
        "linkwell_match_outcomes",
        "Referrals decided, by outcome (proposed, escalated, no-match) and gap: unmet need by "
        "reason (none-reachable, none-eligible, all-full ...)",
        ["service", "outcome", "gap"],
        registry=runtime.metrics.registry,
    )

    def count(decision: Decision) -> None:
        outcome = (
            "escalated" if decision.escalate else "proposed" if decision.candidates else "no-match"
        )
        outcomes.labels(service=SERVICE, outcome=outcome, gap=decision.gap or "none").inc()

    directory = Directory(
        store_, settings.max_candidates, settings.refresh_every_seconds, on_decided=count
    )
    handlers.register(runtime.consumer, directory)
    known = partners if partners is not None else load_partners(settings.partners_file)
    registry = {p.org_id: p for p in known}
    base = settings.public_base_url.rstrip("/")
    replay = DocumentReplayGuard(documents)
    verifier = TokenVerifier(registry, settings.token_audience or base, replay)
    runtime.every("forget-used-tokens", 60.0, replay.forget_expired)

    async def load() -> None:
        await store_.setup()
        await directory.refresh(force=True)
        await import_sources(directory, settings, known)

    runtime.on_startup(load)
    runtime.every(
        "refresh-directory", max(1.0, settings.refresh_every_seconds * 4), directory.refresh
    )
    app = runtime.http_app("Linkwell matching", version=__version__)
    app.state.directory = directory
    api.register(app, directory, verifier, settings, known)
    return app, runtime
