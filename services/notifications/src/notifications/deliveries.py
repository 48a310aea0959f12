"""Deliveries as documents: planned once per (event, recipient, channel), attempted on a
schedule that survives restarts (exponential backoff with jitter), and kept in a dead-letter
state, listable and replayable, when every attempt has failed. Each attempt's outcome is
published as notifications.delivery-recorded.v1 from the delivery's own outbox."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

from linkwell.documents import DocumentStore, add_event, change
from linkwell_schemas.events import DeliveryRecorded

DELIVERIES = "deliveries"
SERVICE = "notifications"


def backoff(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt: doubling from `base` up to `cap`, with jitter so
    retries to a recovering endpoint do not all arrive at once."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay * (rng or random).uniform(0.5, 1.0)


class DeliveryStore:
    def __init__(self, documents: DocumentStore, on_written: Any = None) -> None:
        self.documents = documents
        self.on_written = on_written

    async def setup(self) -> None:
        await self.documents.ensure_indexes(DELIVERIES, ["state", "next_at", "referral_id"])

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self.documents.get(DELIVERIES, key)

    async def plan(self, key: str, delivery: dict[str, Any]) -> bool:
        """Record a delivery to make. False when it was already planned (a redelivered event)."""
        now = time.time()
        return await self.documents.insert(
            DELIVERIES,
            {
                "_id": key,
                "_v": 1,
                **delivery,
                "state": "pending",
                "attempts": 0,
                "next_at": now,
                "created_at": now,
            },
        )

    async def due(self, limit: int = 100) -> list[dict[str, Any]]:
        now = time.time()
        pending = await self.documents.find(
            DELIVERIES, {"state": "pending", "next_at": {"$lte": now}}, sort="next_at", limit=limit
        )
        # an instance that died mid-attempt leaves its claim to lapse
        stuck = await self.documents.find(
            DELIVERIES, {"state": "sending", "lease_until": {"$lt": now}}, limit=limit
        )
        return pending + stuck

    async def claim(self, key: str, lease_seconds: float) -> dict[str, Any] | None:
        """Take the delivery for one attempt; None when it is not due or another instance
        has it. The claim lapses, so a crash mid-attempt only delays it."""
        claimed = False

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal claimed
            now = time.time()
            if current is None:
                return None
            due = current["state"] == "pending" and current["next_at"] <= now
            lapsed = current["state"] == "sending" and current.get("lease_until", 0) < now
            if not (due or lapsed):
                return None
            current["state"] = "sending"
            current["lease_until"] = now + lease_seconds
            claimed = True
            return current

        doc = await change(self.documents, DELIVERIES, key, apply)
        return doc if claimed else None

    async def settle(
        self,
        key: str,
        delivered: bool,
        retryable: bool,
        detail: str,
        max_attempts: int,
        base: float,
        cap: float,
    ) -> dict[str, Any] | None:
        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or current["state"] != "sending":
                return None
            current["attempts"] += 1
            current["last_detail"] = detail
            current["updated_at"] = time.time()
            next_at = None
            if delivered:
                current["state"] = "delivered"
                outcome = "delivered"
            elif retryable and current["attempts"] < max_attempts:
                current["state"] = "pending"
                current["next_at"] = time.time() + backoff(current["attempts"], base, cap)
                next_at = datetime.fromtimestamp(current["next_at"], UTC)
                outcome = "retrying"
            else:
                current["state"] = "dead"
                outcome = "failed"
            current.pop("lease_until", None)
            if current.get("referral_id"):
                add_event(
                    current,
                    DeliveryRecorded(
                        producer=SERVICE,
                        tenant=current.get("tenant", ""),
                        correlation_id=current.get("correlation_id", current["referral_id"]),
                        causation_id=current["about_event_id"],
                        referral_id=current["referral_id"],
                        recipient=current["recipient"],
                        role=current["role"],
                        channel=current["channel"],
                        about_event_id=current["about_event_id"],
                        about_topic=current["about_topic"],
                        outcome=outcome,  # type: ignore[arg-type]
                        attempts=current["attempts"],
                        next_attempt_at=next_at,
                        detail=detail,
                    ),
                )
            return current

        return await change(self.documents, DELIVERIES, key, apply, on_written=self.on_written)

    async def replay(self, key: str) -> bool:
        """A dead delivery tried again from the start (an operator's decision)."""
        replayed = False

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal replayed
            if current is None or current["state"] != "dead":
                return None
            current.update(state="pending", attempts=0, next_at=time.time())
            current["replays"] = current.get("replays", 0) + 1
            replayed = True
            return current

        await change(self.documents, DELIVERIES, key, apply)
        return replayed

    async def listing(
        self, state: str | None = None, referral_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if state:
            query["state"] = state
        if referral_id:
            query["referral_id"] = referral_id
        return await self.documents.find(DELIVERIES, query, sort="created_at", limit=limit)
