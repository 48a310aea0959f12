"""Capacity under contention: many referrals, few assets, several capacity processes.

Sends MatchProposed events straight to the broker at a given rate (open loop), each offering
three of a handful of assets, and reads the decisions back from the broker:

- reservations per second (capacity.place-reserved.v1) and decisions per second (reserved or
  refused), from the first proposal sent to the last decision;
- p50/p95/p99 decision latency: decision occurred_at - proposal occurred_at (one clock).

    python bench/capacity.py --instances 2 --referrals 2000 --rate 100 --assets 5 --places 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from linkwell.testing import CapacityCluster, percentile
from linkwell_schemas.events import (
    AssetChanged,
    Candidate,
    MatchProposed,
    PlaceRefused,
    PlaceReserved,
)

ROOT = Path(__file__).resolve().parents[1]


async def run(bootstrap: str, args: argparse.Namespace) -> dict:
    rng = random.Random(1)
    assets = [f"asset-{n}" for n in range(args.assets)]
    run_id = uuid.uuid4().hex[:6]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    decisions = AIOKafkaConsumer(
        PlaceReserved.topic,
        PlaceRefused.topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{run_id}",
        auto_offset_reset="latest",
    )
    await producer.start()
    await decisions.start()
    try:
        for asset in assets:
            event = AssetChanged(
                producer="matching",
                tenant="bench",
                correlation_id=asset,
                asset_id=asset,
                provider_org=f"vcse-{asset}",
                asset_name=asset,
                declared_capacity=args.places,
            )
            await producer.send_and_wait(
                event.topic, event.model_dump_json().encode(), key=event.key().encode()
            )
        await asyncio.sleep(3)
        while not decisions.assignment():
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        sent: dict[str, datetime] = {}
        got: dict[str, tuple[str, float]] = {}

        async def collect() -> None:
            deadline = time.monotonic() + args.referrals / args.rate + 180
            while len(got) < args.referrals and time.monotonic() < deadline:
                batch = await decisions.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        model = (
                            PlaceReserved if record.topic == PlaceReserved.topic else PlaceRefused
                        )
                        event = model.model_validate_json(record.value)
                        if event.referral_id in sent and event.referral_id not in got:
                            latency = (event.occurred_at - sent[event.referral_id]).total_seconds()
                            got[event.referral_id] = (record.topic, latency)

        collector = asyncio.create_task(collect())
        began = time.monotonic()
        for n in range(args.referrals):
            await asyncio.sleep(max(0.0, began + n / args.rate - time.monotonic()))
            referral_id = f"{run_id}-{n:06d}"
            chosen = rng.sample(assets, k=min(3, len(assets)))
            event = MatchProposed(
                producer="matching",
                tenant="bench",
                correlation_id=referral_id,
                referral_id=referral_id,
                candidates=[
                    Candidate(
                        asset_id=a,
                        asset_name=a,
                        provider_org=f"vcse-{a}",
                        score=1 - i / 10,
                        reasons=["near"],
                    )
                    for i, a in enumerate(chosen)
                ],
            )
            sent[referral_id] = event.occurred_at
            await producer.send(
                event.topic, event.model_dump_json().encode(), key=event.key().encode()
            )
        await producer.flush()
        await collector
        took = time.monotonic() - began
    finally:
        await decisions.stop()
        await producer.stop()
    latencies = [latency * 1000 for _, latency in got.values()]
    reserved = sum(1 for topic, _ in got.values() if topic == PlaceReserved.topic)
    return {"took": took, "decided": len(got), "reserved": reserved, "latencies": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2, help="capacity processes")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--referrals", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="proposals per second")
    parser.add_argument("--assets", type=int, default=5)
    parser.add_argument("--places", type=int, default=300, help="places per asset")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="linkwell-capacity-bench-") as folder:
        cluster = CapacityCluster(ROOT, Path(folder), args.instances, args.partitions)
        try:
            asyncio.run(cluster.create_topics())
            cluster.start()
            result = asyncio.run(run(cluster.stack.kafka_bootstrap_servers, args))
        finally:
            cluster.stop()

    ms = result["latencies"]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(
        f"{args.instances} capacity processes, {args.partitions} partitions; {args.referrals} "
        f"referrals at {args.rate:g}/s over {args.assets} assets x {args.places} places"
    )
    print(
        f"decided: {result['decided']} ({result['decided'] / result['took']:.1f}/s); "
        f"reservations: {result['reserved']} ({result['reserved'] / result['took']:.1f}/s)"
    )
    if ms:
        print(
            f"decision latency: p50 {percentile(ms, 50):.1f} ms  p95 {percentile(ms, 95):.1f} ms"
            f"  p99 {percentile(ms, 99):.1f} ms  max {max(ms):.1f} ms"
        )
    if result["decided"] < args.referrals:
        sys.exit(f"{args.referrals - result['decided']} proposals got no decision")


if __name__ == "__main__":
    main()
