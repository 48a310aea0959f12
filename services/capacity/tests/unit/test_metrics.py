"""What ops teams scrape: messages handled by topic and outcome, dead letters, relayed events,
handling time; labels name topics, never referrals or people."""

from __future__ import annotations

import httpx
from faststream.kafka import TestKafkaBroker

from capacity.app import build
from capacity.config import CapacitySettings
from linkwell.documents import MemoryDocumentStore
from linkwell_schemas.events import AssetChanged


async def test_metrics_count_handled_dead_lettered_and_relayed_messages() -> None:
    app, runtime = build(CapacitySettings(), store=MemoryDocumentStore())
    good = AssetChanged(
        producer="matching",
        tenant="t",
        correlation_id="lunch",
        asset_id="lunch",
        provider_org="vcse",
        asset_name="Lunch club",
        declared_capacity=4,
    )
    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        await broker.publish(good.model_dump_json().encode(), AssetChanged.topic)
        await broker.publish(b'{"asset_id": 7}', AssetChanged.topic)  # can never be handled
        await runtime.relay.relay_once()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://capacity"
        ) as client:
            scraped = (await client.get("/metrics")).text
        await runtime.relay.stop()
    topic = AssetChanged.topic
    assert (
        f'linkwell_messages_handled_total{{outcome="ok",service="capacity",topic="{topic}"}} 1.0'
        in scraped
    )
    assert (
        'linkwell_messages_handled_total{outcome="dead-lettered",service="capacity",'
        f'topic="{topic}"}} 1.0' in scraped
    )
    assert f'linkwell_dead_lettered_total{{service="capacity",topic="{topic}"}} 1.0' in scraped
    assert (
        'linkwell_outbox_relayed_total{service="capacity",topic="capacity.capacity-changed.v1"} 1.0'
        in scraped
    )
    assert "linkwell_handling_seconds_bucket" in scraped
    assert "lunch" not in scraped  # no ids in labels
