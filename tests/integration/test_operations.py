"""What ops teams watch, on the embedded broker and database: readiness follows Kafka and
MongoDB going away and coming back; /metrics counts referrals by state and failed
deliveries across every instance (it reads the database)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from linkwell.devstack import EmbeddedStack, free_port, stop_process
from linkwell.documents import MongoDocumentStore
from matching.app import build as build_matching
from matching.config import MatchingSettings
from notifications.app import build as build_notifications
from notifications.config import NotifySettings
from notifications.deliveries import DELIVERIES
from referral_intake.app import build as build_intake
from referral_intake.config import IntakeSettings
from referral_intake.store import REFERRALS

pytestmark = pytest.mark.integration


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict]:
    answer = await client.get("/readyz")
    return answer.status_code, answer.json()


async def test_readiness_follows_the_broker_and_the_database(tmp_path: Path) -> None:
    own = EmbeddedStack(tmp_path, kafka_port=free_port(), mongo_port=free_port()).start()
    app, runtime = build_matching(
        MatchingSettings(
            kafka_bootstrap_servers=own.kafka_bootstrap_servers,
            mongodb_url=own.mongodb_url + "&serverSelectionTimeoutMS=1500",
        ),
        partners=[],
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m")
    try:
        await runtime.start()

        async def becomes(wanted, seconds: float = 30.0) -> tuple[int, dict]:
            deadline = asyncio.get_running_loop().time() + seconds
            while True:
                status, body = await readiness(client)
                if wanted(status, body):
                    return status, body
                assert asyncio.get_running_loop().time() < deadline, (status, body)
                await asyncio.sleep(0.2)

        status, body = await becomes(lambda status, body: status == 200)
        assert body == {"ready": True, "mongodb": "ok", "kafka": "ok"}

        assert own.mongo is not None
        stop_process(own.mongo)
        status, body = await becomes(lambda status, body: status == 503)
        assert body["mongodb"].startswith("unreachable") and body["kafka"] == "ok"
        assert (await client.get("/healthz")).status_code == 200  # alive, just not ready

        own.mongo = own.start_mongo()
        await becomes(lambda status, body: status == 200 and body["mongodb"] == "ok")

        assert own.kafka is not None
        stop_process(own.kafka)
        status, body = await becomes(lambda status, body: status == 503)
        assert body["kafka"].startswith("unreachable")
        own.kafka = own.start_kafka()
    finally:
        await client.aclose()
        try:
            await runtime.stop()
        finally:
            own.stop()


def sample(scraped: str, metric: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{metric}\{{{re.escape(wanted)}\}} (\S+)$", scraped, re.M)
    return float(match.group(1)) if match else None


async def test_metrics_count_referrals_by_state_and_failed_deliveries(
    infrastructure, database_name
) -> None:
    documents = MongoDocumentStore(infrastructure.mongodb_url, database_name)
    try:
        for n, state in enumerate(["waitlisted", "waitlisted", "place-held", "escalated"]):
            await documents.insert(
                REFERRALS,
                {
                    "_id": f"r{n}",
                    "tenant": "t",
                    "task": {"status": "requested", "business_status": state},
                },
            )
        for n, (state, attempts) in enumerate(
            [("delivered", 1), ("dead", 12), ("pending", 3), ("pending", 0)]
        ):
            await documents.insert(
                DELIVERIES, {"_id": f"d{n}", "state": state, "attempts": attempts}
            )

        intake, _ = build_intake(IntakeSettings(), store=documents, partners=[])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=intake), base_url="http://intake"
        ) as client:
            scraped = (await client.get("/metrics")).text
        service = "referral-intake"
        assert sample(scraped, "linkwell_referrals", service=service, state="waitlisted") == 2.0
        assert sample(scraped, "linkwell_referrals", service=service, state="place-held") == 1.0
        assert sample(scraped, "linkwell_referrals", service=service, state="completed") == 0.0

        notifications, _ = build_notifications(NotifySettings(), store=documents, partners=[])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=notifications), base_url="http://notify"
        ) as client:
            scraped = (await client.get("/metrics")).text
        service = "notifications"
        assert sample(scraped, "linkwell_deliveries", service=service, state="dead") == 1.0
        assert sample(scraped, "linkwell_deliveries", service=service, state="retrying") == 1.0
        assert sample(scraped, "linkwell_deliveries", service=service, state="pending") == 1.0
        assert sample(scraped, "linkwell_deliveries", service=service, state="delivered") == 1.0
        assert "r0" not in scraped and "d1" not in scraped  # counts, never ids
    finally:
        await documents.close()


async def test_metrics_show_consumer_lag_and_dead_letter_depth(
    infrastructure, database_name, monkeypatch
) -> None:
    from aiokafka import AIOKafkaProducer

    from capacity.app import build as build_capacity
    from capacity.config import CapacitySettings
    from linkwell import metrics
    from linkwell_schemas.events import AssetChanged

    monkeypatch.setattr(metrics, "OBSERVE_EVERY", 0.0)
    app, runtime = build_capacity(
        CapacitySettings(
            kafka_bootstrap_servers=infrastructure.kafka_bootstrap_servers,
            mongodb_url=infrastructure.mongodb_url,
            database=database_name,
        ),
        partners=[],
    )
    group = f"capacity.{AssetChanged.topic}"
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c")
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap_servers)
    await producer.start()
    try:
        await runtime.start()

        async def backlog() -> tuple[float | None, float | None]:
            scraped = (await client.get("/metrics")).text
            depth = sample(
                scraped,
                "linkwell_dead_letter_depth",
                service="capacity",
                topic="capacity.dead-lettered.v1",
            )
            lag = sample(scraped, "linkwell_consumer_lag", service="capacity", group=group)
            return depth, lag

        async def settles(wanted) -> tuple[float | None, float | None]:
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                depth, lag = await backlog()
                if wanted(depth, lag):
                    return depth, lag
                assert asyncio.get_running_loop().time() < deadline, (depth, lag)
                await asyncio.sleep(0.5)

        # the shared broker may hold earlier tests' messages: let the group catch up first
        depth_before, _ = await settles(lambda depth, lag: lag == 0.0 and depth is not None)
        assert depth_before is not None
        await producer.send_and_wait(AssetChanged.topic, b'{"asset_id": 7}', key=b"ops-metrics")
        await settles(lambda depth, lag: lag == 0.0 and depth == depth_before + 1)
    finally:
        await producer.stop()
        await client.aclose()
        await runtime.stop()
