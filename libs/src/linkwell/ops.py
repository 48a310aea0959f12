"""What an operator asks of a running network: how far behind each consumer group is, what
is in the dead-letter topics, and where one referral stands in every service."""

from __future__ import annotations

import json
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from linkwell_schemas.events import TOPICS, dead_letter_topic

SERVICES = ("referral-intake", "matching", "capacity", "notifications")


async def _group_lag(
    bootstrap: str, group: str, ends: dict[TopicPartition, int], timeout_ms: int = 40_000
) -> int:
    """Messages after the group's committed offsets, read as a member would without joining
    the group (Tansu does not answer the admin API's offset fetch)."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=timeout_ms,
    )
    await reader.start()
    try:
        lag = 0
        for tp, end in ends.items():
            done = await reader.committed(tp)
            lag += end - (done if done is not None and done >= 0 else 0)
        return lag
    finally:
        await reader.stop()


async def consumer_lag(bootstrap: str) -> list[dict[str, Any]]:
    """For every `<service>.<topic>` group: committed offset against the end of each partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    rows: list[dict[str, Any]] = []
    try:
        groups = {
            g[0] if isinstance(g, tuple) else g.group_id for g in await admin.list_consumer_groups()
        }
        topics = await consumer.topics()
        for service in SERVICES:
            for topic in sorted(t for t in TOPICS if "{" not in t and t in topics):
                group = f"{service}.{topic}"
                if group not in groups:
                    continue
                partitions = [
                    TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []
                ]
                ends = await consumer.end_offsets(partitions)
                lag = await _group_lag(bootstrap, group, ends)
                rows.append({"group": group, "topic": topic, "lag": lag})
    finally:
        await consumer.stop()
        await admin.close()
    return rows


async def service_backlog(
    bootstrap: str, service: str, groups: dict[str, str], timeout_ms: int = 2000
) -> tuple[dict[str, float], float]:
    """One service's consumer lag per group (its own subscriptions) and how many messages
    wait in its dead-letter topic: what /metrics reports. Quick to give up: a scrape must
    answer even when the broker does not."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=timeout_ms
    )
    await consumer.start()
    lag: dict[str, float] = {}
    depth = 0.0
    try:
        known = await consumer.topics()
        for topic, group in sorted(groups.items()):
            if topic not in known:
                continue
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []
            ]
            ends = await consumer.end_offsets(partitions)
            lag[group] = float(await _group_lag(bootstrap, group, ends, timeout_ms))
        letters = dead_letter_topic(service)
        if letters in known:
            partitions = [
                TopicPartition(letters, p) for p in consumer.partitions_for_topic(letters) or []
            ]
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            depth = float(sum(ends[tp] - starts[tp] for tp in partitions))
    finally:
        await consumer.stop()
    return lag, depth


async def dead_letters(
    bootstrap: str, service: str, limit: int = 50, with_payload: bool = False
) -> list[dict[str, Any]]:
    """The dead letters of one service, oldest first (read without committing anything).
    Bodies are left out unless asked for: a malformed message may hold anything."""
    topic = dead_letter_topic(service)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    letters: list[dict[str, Any]] = []
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            await consumer.topics()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []
            ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)

        async def more_to_read() -> bool:
            for tp in partitions:
                if await consumer.position(tp) < ends[tp]:
                    return True
            return False

        while len(letters) < limit and await more_to_read():
            batch = await consumer.getmany(timeout_ms=1000, max_records=limit)
            if not batch:
                break
            for records in batch.values():
                for record in records:
                    letter = json.loads(record.value)
                    letter["payload_bytes"] = len(letter.get("payload") or "")
                    if not with_payload:
                        letter.pop("payload", None)
                    letters.append(letter)
    finally:
        await consumer.stop()
    return letters[:limit]


async def replay(
    bootstrap: str, service: str, letter_ids: set[str] | None = None, limit: int = 10_000
) -> list[dict[str, Any]]:
    """Send dead letters back to the topic they came from, with their original key, once the
    cause is fixed. Consumers dedupe on event_id, so replaying an event already handled changes
    nothing; a message that still cannot be handled is dead-lettered again. None: all."""
    from aiokafka import AIOKafkaProducer

    letters = await dead_letters(bootstrap, service, limit, with_payload=True)
    chosen = [
        letter for letter in letters if letter_ids is None or letter["event_id"] in letter_ids
    ]
    if not chosen:
        return []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for letter in chosen:
            await producer.send_and_wait(
                letter["origin_topic"],
                letter["payload"].encode(),
                key=letter["origin_key"].encode() if letter.get("origin_key") else None,
                headers=[("linkwell-replayed-from", letter["event_id"].encode())],
            )
    finally:
        await producer.stop()
    return [
        {k: v for k, v in letter.items() if k != "payload"} | {"replayed": True}
        for letter in chosen
    ]


async def referral_everywhere(
    urls: dict[str, str], referral_id: str, headers: dict[str, str]
) -> dict[str, Any]:
    """One referral as each service sees it (ids and states only)."""
    found: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=5) as client:
        probes = {
            "referral-intake": f"{urls['referral-intake']}/fhir/Task/{referral_id}",
            "matching": f"{urls['matching']}/proposals/{referral_id}",
            "capacity": f"{urls['capacity']}/placements/{referral_id}",
            "notifications": f"{urls['notifications']}/referrals/{referral_id}/deliveries",
        }
        for service, url in probes.items():
            try:
                answer = await client.get(
                    url, headers=headers if service == "referral-intake" else {}
                )
                found[service] = (
                    answer.json() if answer.status_code == 200 else {"status": answer.status_code}
                )
            except httpx.HTTPError as exc:
                found[service] = {"unreachable": type(exc).__name__}
    task = found.get("referral-intake") or {}
    if task.get("resourceType") == "Task":
        found["referral-intake"] = {
            "status": task["status"],
            "business_status": task["businessStatus"]["coding"][0]["code"],
            "owner": (task.get("owner") or {}).get("identifier", {}).get("value"),
        }
    return found
