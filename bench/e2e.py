"""End-to-end throughput and latency of the referral journey, with the transport as a baseline.

Posts N social prescribing referrals at a fixed rate (open loop: a slow answer does not slow the
sender) to referral-intake, follows each referral's Task until it reaches a final state (place
held, waitlisted, refused, no match or escalated), and prints:

- accepted/s: referrals answered 201, over the time from the first POST to the last answer;
- completed/s: referrals reaching a final Task state, from the first POST to the last outcome;
- p50/p95/p99 of POST sent -> final Task state seen (a client searching Tasks, 100 referrals
  per search: resolution is one search round, printed);
- a raw aiokafka produce -> consume round trip on the same broker, one message at a time.

With no --fhir it starts its own embedded network (broker, database, four service processes) on
free ports under a temporary folder and stops it afterwards. With --fhir it drives a network
that is already running (for instance `make up`), whose broker is --kafka.

    python bench/e2e.py --count 200 --rate 20
    python bench/e2e.py --fhir http://localhost:8080/fhir --kafka 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from linkwell.auth import PartnerAuth
from linkwell.testing import GP, launch, percentile, referral

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = json.loads((ROOT / "examples" / "fhir" / "social-prescribing-referral.json").read_text())
FINAL = {"place-held", "waitlisted", "refused-capacity", "no-match", "escalated"}
HEADERS = {"Content-Type": "application/fhir+json"}


def describe(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name}: p50 {percentile(ms, 50):.1f} ms  p95 {percentile(ms, 95):.1f} ms  "
        f"p99 {percentile(ms, 99):.1f} ms  max {max(ms):.1f} ms  (n={len(ms)})"
    )


async def business_statuses(
    client: httpx.AsyncClient, fhir: str, referral_ids: list[str]
) -> list[tuple[str, str]]:
    """(referral id, Task business status) for each referral, in one FHIR search."""
    if not referral_ids:
        return []
    focus = ",".join(f"ServiceRequest/{r}" for r in referral_ids)
    answer = await client.get(f"{fhir}/Task", params={"focus": focus}, headers=HEADERS)
    answer.raise_for_status()
    return [
        (
            e["resource"]["focus"]["reference"].rsplit("/", 1)[-1],
            e["resource"]["businessStatus"]["coding"][0]["code"],
        )
        for e in answer.json().get("entry", [])
    ]


async def journey(fhir: str, count: int, rate: float, run: str, auth: httpx.Auth) -> dict[str, Any]:
    sent: dict[str, float] = {}  # referral id -> time its POST was sent
    answered: list[float] = []
    failures: list[int] = []
    done: dict[str, float] = {}
    outcomes: dict[str, int] = {}
    rounds: list[float] = []
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(timeout=30, limits=limits, auth=auth) as client:
        start = time.monotonic()

        async def post(n: int) -> None:
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            posted_at = time.monotonic()
            answer = await client.post(
                f"{fhir}/ServiceRequest",
                json=referral(SAMPLE, f"bench-{run}-{n:05d}"),
                headers=HEADERS,
            )
            answered.append(time.monotonic())
            if answer.status_code != 201:
                failures.append(answer.status_code)
                return
            sent[answer.json()["id"]] = posted_at

        async def follow() -> None:
            # one search per 100 pending referrals per round, so following costs the network
            # little next to the referrals themselves
            deadline = time.monotonic() + count / rate + 120
            while len(done) + len(failures) < count and time.monotonic() < deadline:
                round_start = time.monotonic()
                pending = [r for r in list(sent) if r not in done]
                for at in range(0, len(pending), 100):
                    for referral_id, status in await business_statuses(
                        client, fhir, pending[at : at + 100]
                    ):
                        if status in FINAL:
                            done[referral_id] = time.monotonic()
                            outcomes[status] = outcomes.get(status, 0) + 1
                rounds.append(time.monotonic() - round_start)
                await asyncio.sleep(0.05)

        await asyncio.gather(*(post(n) for n in range(count)), follow())

    latencies = [done[r] - sent[r] for r in done]
    return {
        "accepted": len(sent),
        "failures": failures,
        "accepted_per_s": len(sent) / (max(answered) - start) if answered else 0.0,
        "completed": len(done),
        "completed_per_s": len(done) / (max(done.values()) - start) if done else 0.0,
        "latencies": latencies,
        "outcomes": outcomes,
        "poll_round_p50_ms": statistics.median(rounds) * 1000 if rounds else 0.0,
    }


async def transport_round_trip(bootstrap: str, count: int) -> list[float]:
    """One message at a time: produce, then wait until a consumer on the same broker has it."""
    topic = f"bench.round-trip.{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    consumer: AIOKafkaConsumer | None = None
    try:
        await producer.send_and_wait(topic, b"warm-up")  # creates the topic
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_end(partition)
        payload = json.dumps(SAMPLE).encode()  # a message of a referral's size
        times = []
        for _ in range(count):
            began = time.monotonic()
            await producer.send_and_wait(topic, payload, partition=0)
            await consumer.getone()
            times.append(time.monotonic() - began)
        return times
    finally:
        if consumer is not None:
            await consumer.stop()
        await producer.stop()


async def warm_up(fhir: str, auth: httpx.Auth) -> float:
    """One referral through the whole network first: consumer groups join on first use."""
    began = time.monotonic()
    async with httpx.AsyncClient(timeout=30, auth=auth) as client:
        answer = await client.post(
            f"{fhir}/ServiceRequest",
            json=referral(SAMPLE, f"bench-warm-up-{uuid.uuid4().hex[:8]}"),
            headers=HEADERS,
        )
        answer.raise_for_status()
        referral_id = answer.json()["id"]
        while not any(s in FINAL for _, s in await business_statuses(client, fhir, [referral_id])):
            if time.monotonic() - began > 120:
                raise TimeoutError("the warm-up referral never reached a final state")
            await asyncio.sleep(0.1)
    return time.monotonic() - began


def report(args: argparse.Namespace, fhir: str, bootstrap: str, auth: httpx.Auth) -> None:
    warm = asyncio.run(warm_up(fhir, auth))
    run = uuid.uuid4().hex[:6]
    result = asyncio.run(journey(fhir, args.count, args.rate, run, auth))
    baseline = asyncio.run(transport_round_trip(bootstrap, args.round_trips))
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"network: {fhir} (broker {bootstrap})")
    print(f"warm-up referral (first use, consumer groups joining): {warm:.2f} s")
    print(f"referrals: {args.count} posted at {args.rate:g}/s")
    print(
        f"accepted: {result['accepted']} ({result['accepted_per_s']:.1f}/s), "
        f"rejected: {len(result['failures'])} {sorted(set(result['failures'])) or ''}"
    )
    print(
        f"completed: {result['completed']} ({result['completed_per_s']:.1f}/s), "
        f"outcomes: {json.dumps(result['outcomes'], sort_keys=True)}"
    )
    if result["latencies"]:
        print(describe("POST -> final Task state", result["latencies"]))
    print(f"  (poll round p50 {result['poll_round_p50_ms']:.1f} ms)")
    print(describe("transport: aiokafka produce -> consume round trip", baseline))
    if result["completed"] < args.count:
        sys.exit(f"{args.count - result['completed']} referrals did not complete")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="referrals to post")
    parser.add_argument("--rate", type=float, default=20.0, help="referrals per second")
    parser.add_argument("--round-trips", type=int, default=200, help="transport baseline size")
    parser.add_argument("--fhir", help="FHIR base URL of a running network")
    parser.add_argument("--kafka", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    args = parser.parse_args()

    if args.fhir:
        fhir = args.fhir.rstrip("/")
        key = (ROOT / "data" / "demo-keys" / f"{GP}.pem").read_text()
        report(args, fhir, args.kafka or "127.0.0.1:9092", PartnerAuth(key, GP, fhir))
        return
    with tempfile.TemporaryDirectory(prefix="linkwell-bench-") as folder:
        print("starting an embedded network ...", flush=True)
        network = launch(ROOT, Path(folder))
        try:
            report(args, network.fhir, network.net.env["KAFKA_BOOTSTRAP_SERVERS"], network.auth(GP))
        finally:
            network.close()


if __name__ == "__main__":
    main()
