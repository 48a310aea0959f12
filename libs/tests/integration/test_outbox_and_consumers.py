"""Outbox relay and consumers on a real broker and database: the embedded pair always, Apache
Kafka and MongoDB in containers where a Docker engine answers."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker

from linkwell.documents import MongoDocumentStore, add_event, change, has_seen, mark_seen
from linkwell.messaging import Consumer, OutboxRelay, Publisher
from linkwell_schemas.events import AssetChanged, dead_letter_topic

pytestmark = pytest.mark.integration


async def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_poison_message_is_dead_lettered_and_the_next_good_event_is_processed(
    infrastructure, database_name
) -> None:
    service = f"svc{uuid.uuid4().hex[:6]}"
    store = MongoDocumentStore(infrastructure.mongodb_url, database_name)
    broker = KafkaBroker(infrastructure.kafka_bootstrap_servers)
    publisher = Publisher(broker)
    consumer = Consumer(broker, service, publisher)
    relay = OutboxRelay(store, ["assets"], publisher, poll_interval=0.05)
    handled: list[str] = []

    async def on_asset(event: AssetChanged) -> None:
        def apply(doc):
            if has_seen(doc, str(event.event_id)):
                return None
            doc = doc or {"times": 0}
            doc["times"] += 1
            mark_seen(doc, str(event.event_id))
            return doc

        await change(store, "seen_assets", event.asset_id, apply)
        handled.append(event.asset_id)

    consumer.subscribe(AssetChanged, on_asset)
    await broker.start()
    await relay.start()
    try:
        await publisher.publish_raw(AssetChanged.topic, "bad", b'{"asset_id": 42', {})
        await publisher.publish_raw(
            AssetChanged.topic, "bad2", json.dumps({"asset_id": "x"}).encode(), {}
        )
        good = AssetChanged(
            producer="matching",
            tenant="t",
            correlation_id="a1",
            asset_id="a1",
            provider_org="p",
            asset_name="Walking group",
        )

        def queue(doc):
            doc = doc or {}
            add_event(doc, good)
            return doc

        await change(store, "assets", "a1", queue)
        relay.wake()
        await wait_for(lambda: handled == ["a1"])
        # redelivery of the same event (relay crash before removing it) changes nothing
        await publisher.publish_raw(AssetChanged.topic, "a1", good.model_dump_json().encode(), {})
        await wait_for(lambda: len(handled) == 2)
        assert (await store.get("seen_assets", "a1"))["times"] == 1
        assert (await store.get("assets", "a1"))["_outbox"] == []

        letters = AIOKafkaConsumer(
            dead_letter_topic(service),
            bootstrap_servers=infrastructure.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            group_id=f"dlq-{service}",
        )
        await letters.start()
        try:
            got = await letters.getmany(timeout_ms=10_000, max_records=10)
            records = [json.loads(r.value) for batch in got.values() for r in batch]
            while len(records) < 2:
                more = await letters.getmany(timeout_ms=5_000)
                if not more:
                    break
                records += [json.loads(r.value) for batch in more.values() for r in batch]
        finally:
            await letters.stop()
        # Kafka orders per key (partition), not across keys
        records.sort(key=lambda r: r["origin_key"])
        assert [r["origin_key"] for r in records] == ["bad", "bad2"]
        assert records[0]["origin_topic"] == AssetChanged.topic
        assert records[0]["payload"] == '{"asset_id": 42'
        assert "provider_org: Field required" in records[1]["error"]
        assert records[1]["consumer_group"] == f"{service}.{AssetChanged.topic}"
    finally:
        await relay.stop()
        await broker.stop()
        await store.close()


async def test_dead_letters_are_listed_inspected_and_replayed_once_fixed(
    infrastructure, database_name
) -> None:
    from linkwell import ops
    from linkwell.messaging import PermanentError

    service = f"svc{uuid.uuid4().hex[:6]}"
    bootstrap = infrastructure.kafka_bootstrap_servers
    broker = KafkaBroker(bootstrap)
    publisher = Publisher(broker)
    consumer = Consumer(broker, service, publisher)
    fixed = False
    handled: list[str] = []

    async def on_asset(event: AssetChanged) -> None:
        if not fixed:
            raise PermanentError("provider not known yet")  # a bug, fixed later
        handled.append(event.asset_id)

    consumer.subscribe(AssetChanged, on_asset)
    await broker.start()
    try:
        # the topic may hold earlier tests' events: this test follows its own asset only
        asset_id = f"a-{uuid.uuid4().hex[:8]}"
        event = AssetChanged(
            producer="matching",
            tenant="t",
            correlation_id=asset_id,
            asset_id=asset_id,
            provider_org="p",
            asset_name="Lunch club",
        )
        await publisher.publish_raw(
            AssetChanged.topic, asset_id, event.model_dump_json().encode(), {}
        )
        mine: list[dict] = []

        async def listed() -> bool:
            letters = await ops.dead_letters(bootstrap, service, limit=10_000)
            mine[:] = [letter for letter in letters if letter["origin_key"] == asset_id]
            return bool(mine)

        deadline = asyncio.get_running_loop().time() + 30
        while not await listed():
            assert asyncio.get_running_loop().time() < deadline, "no dead letter"
            await asyncio.sleep(0.2)
        assert "payload" not in mine[0]
        assert mine[0]["payload_bytes"] == len(event.model_dump_json())
        inspected = await ops.dead_letters(bootstrap, service, limit=10_000, with_payload=True)
        body = next(i["payload"] for i in inspected if i["event_id"] == mine[0]["event_id"])
        assert json.loads(body)["event_id"] == str(event.event_id)

        fixed = True
        replayed = await ops.replay(bootstrap, service, {mine[0]["event_id"]})
        assert [r["origin_key"] for r in replayed] == [asset_id]
        await wait_for(lambda: asset_id in handled)
        assert handled.count(asset_id) == 1
        assert await ops.replay(bootstrap, service, {"no-such-letter"}) == []
    finally:
        await broker.stop()
