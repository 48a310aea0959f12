"""Four capacity processes compete for a few small assets: thousands of referrals, random
redeliveries, one process killed midway. No asset ever has more holds plus places in use than
its maximum, every referral ends held, waitlisted or refused, none is lost and none holds two
places."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import MongoClient

from linkwell.testing import CapacityCluster
from linkwell_schemas.events import AssetChanged, Candidate, MatchProposed

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ASSETS = {f"asset-{n}": 3 + n for n in range(5)}  # 3..7 places: 25 in all
REFERRALS = 2000
FINAL = {"held", "waitlisted", "refused"}


def proposal(referral_id: str, rng: random.Random) -> MatchProposed:
    chosen = rng.sample(sorted(ASSETS), k=3)
    return MatchProposed(
        producer="matching",
        tenant="stress",
        correlation_id=referral_id,
        referral_id=referral_id,
        candidates=[
            Candidate(
                asset_id=a,
                asset_name=a,
                provider_org=f"vcse-{a}",
                score=1 - n / 10,
                reasons=["near"],
            )
            for n, a in enumerate(chosen)
        ],
    )


async def feed(bootstrap: str, events: list, on_half: object) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for n, event in enumerate(events):
            await producer.send(
                event.topic, event.model_dump_json().encode(), key=event.key().encode()
            )
            if n == len(events) // 2:
                await producer.flush()
                on_half()
        await producer.flush()
    finally:
        await producer.stop()


def test_many_instances_never_oversubscribe_and_lose_nothing(tmp_path: Path) -> None:
    cluster = CapacityCluster(ROOT, tmp_path, instances=4, partitions=4)
    try:
        asyncio.run(cluster.create_topics())
        cluster.start()
        rng = random.Random(7)
        declared = [
            AssetChanged(
                producer="matching",
                tenant="stress",
                correlation_id=a,
                asset_id=a,
                provider_org=f"vcse-{a}",
                asset_name=a,
                declared_capacity=c,
            )
            for a, c in ASSETS.items()
        ]
        proposals = [proposal(f"ref-{n:05d}", rng) for n in range(REFERRALS)]
        redelivered = rng.sample(proposals, k=REFERRALS // 10)  # same event, sent again
        events = proposals + redelivered
        rng.shuffle(events)
        asyncio.run(feed(cluster.stack.kafka_bootstrap_servers, declared, lambda: None))
        time.sleep(2)  # declared capacity first, as the directory loads before referrals
        asyncio.run(feed(cluster.stack.kafka_bootstrap_servers, events, lambda: cluster.kill(1)))

        client: MongoClient = MongoClient(cluster.stack.mongodb_url)
        try:
            db = client["capacity"]
            deadline = time.monotonic() + 600
            while True:
                states = Counter(p["state"] for p in db["placements"].find({}, {"state": 1}))
                if sum(states[s] for s in FINAL) == REFERRALS or time.monotonic() > deadline:
                    break
                time.sleep(2)
            assert sum(states.values()) == REFERRALS, "a referral was lost"
            assert sum(states[s] for s in FINAL) == REFERRALS, f"not all ended: {states}"
            assets = {a["_id"]: a for a in db["assets"].find({})}
            placements = {p["_id"]: p for p in db["placements"].find({})}
        finally:
            client.close()

        holders: Counter[str] = Counter()
        for asset_id, asset in assets.items():
            taken = len(asset["holds"]) + len(asset["in_use"])
            assert taken <= ASSETS[asset_id], f"{asset_id} oversubscribed: {taken}"
            assert taken == ASSETS[asset_id]  # and no place is left idle while people wait
            holders.update(asset["holds"].keys())
            assert len(asset["waitlist"]) == len(set(asset["waitlist"]))
        assert max(holders.values()) == 1, "a referral holds two places"
        assert sum(holders.values()) == sum(ASSETS.values())
        for referral_id, placement in placements.items():
            if placement["state"] == "held":
                assert referral_id in assets[placement["asset_id"]]["holds"]
            if placement["state"] == "waitlisted":
                lists = [a for a, asset in assets.items() if referral_id in asset["waitlist"]]
                assert lists == [placement["asset_id"]]
    finally:
        cluster.stop()
