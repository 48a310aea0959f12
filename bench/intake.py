"""Intake throughput: how fast referral-intake answers 201 (the referral is durable) on the
embedded stack, beside what bounds it, measured in the same run:

- POST /fhir/ServiceRequest -> 201 (a real intake process, real HTTP, signed tokens): per
  second and p50/p95/p99 latency, at a given number of concurrent senders;
- raw `fhir.resources` R4B parse of the same ServiceRequest, per second (one core);
- raw aiokafka publish of an event of the same size to the same broker, one at a time (acks
  all) and pipelined, per second;
- raw MongoDB insert of a referral-sized document on the same database server, per second.

    python bench/intake.py --count 1000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer
from fhir.resources.R4B.servicerequest import ServiceRequest
from pymongo import AsyncMongoClient

from linkwell.auth import PartnerAuth
from linkwell.devstack import EmbeddedStack, free_port
from linkwell.network import Network
from linkwell.partners import with_demo_keys
from linkwell.testing import GP, percentile, referral

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = json.loads((ROOT / "examples" / "fhir" / "social-prescribing-referral.json").read_text())


async def post_referrals(fhir: str, auth: httpx.Auth, count: int, concurrency: int) -> dict:
    run = uuid.uuid4().hex[:6]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, auth=auth, limits=limits) as client:

        async def sender() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                body = json.dumps(referral(SAMPLE, f"intake-bench-{run}-{n}"))
                began = time.perf_counter()
                answer = await client.post(
                    f"{fhir}/ServiceRequest",
                    content=body,
                    headers={"Content-Type": "application/fhir+json"},
                )
                latencies.append(time.perf_counter() - began)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        took = time.perf_counter() - began
    return {"per_s": count / took, "latencies": latencies, "statuses": statuses}


def parse_rate(seconds: float = 2.0) -> float:
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        ServiceRequest.model_validate(SAMPLE)
        count += 1
    return count / (time.perf_counter() - began)


async def publish_rates(bootstrap: str, count: int) -> tuple[float, float]:
    payload = json.dumps(SAMPLE).encode()
    topic = f"bench.intake.{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm-up")
        began = time.perf_counter()
        for n in range(count):
            await producer.send_and_wait(topic, payload, key=str(n).encode())
        one_at_a_time = count / (time.perf_counter() - began)
        began = time.perf_counter()
        futures = [await producer.send(topic, payload, key=str(n).encode()) for n in range(count)]
        await asyncio.gather(*futures)
        pipelined = count / (time.perf_counter() - began)
    finally:
        await producer.stop()
    return one_at_a_time, pipelined


async def insert_rate(mongodb_url: str, count: int) -> float:
    client: AsyncMongoClient = AsyncMongoClient(mongodb_url)
    try:
        collection = client["bench"][f"referrals_{uuid.uuid4().hex[:6]}"]
        began = time.perf_counter()
        for n in range(count):
            await collection.insert_one({"_id": str(n), "service_request": SAMPLE, "_v": 1})
        return count / (time.perf_counter() - began)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="referrals to post")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent senders")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="linkwell-intake-bench-") as folder:
        data_dir = Path(folder)
        stack = EmbeddedStack(data_dir, kafka_port=free_port(), mongo_port=free_port()).start()
        partners = with_demo_keys(
            ROOT / "config" / "partners.demo.json", data_dir / "keys", data_dir / "partners.json"
        )
        net = Network.prepare(
            ROOT,
            data_dir,
            random_ports=True,
            extra_env={**stack.env(), "LINKWELL_PARTNERS_FILE": str(partners)},
        )
        net.stack = stack
        try:
            net.start_service("referral-intake")
            net.wait_ready(names=["referral-intake"])
            fhir = net.env["INTAKE_PUBLIC_BASE_URL"].replace("localhost", "127.0.0.1")
            auth = PartnerAuth(
                (data_dir / "keys" / f"{GP}.pem").read_text(), GP, net.env["INTAKE_PUBLIC_BASE_URL"]
            )
            asyncio.run(post_referrals(fhir, auth, 50, 4))  # warm up
            posted = asyncio.run(post_referrals(fhir, auth, args.count, args.concurrency))
            parsed = parse_rate()
            one, pipelined = asyncio.run(publish_rates(stack.kafka_bootstrap_servers, args.count))
            inserted = asyncio.run(insert_rate(stack.mongodb_url, args.count))
        finally:
            net.stop()

    ms = [s * 1000 for s in posted["latencies"]]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(
        f"POST /fhir/ServiceRequest -> 201 (durable): {posted['per_s']:.0f}/s with "
        f"{args.concurrency} senders; p50 {percentile(ms, 50):.1f} ms  p95 "
        f"{percentile(ms, 95):.1f} ms  p99 {percentile(ms, 99):.1f} ms  "
        f"(statuses {json.dumps(posted['statuses'])})"
    )
    print(f"raw fhir.resources R4B parse of the ServiceRequest: {parsed:.0f}/s (one core)")
    print(
        f"raw aiokafka publish, same broker: {one:.0f}/s one at a time, {pipelined:.0f}/s pipelined"
    )
    print(f"raw MongoDB insert_one, same server: {inserted:.0f}/s one at a time")


if __name__ == "__main__":
    main()
