"""Referral documents: the ServiceRequest as received, its Task, its history, and the events
they cause, changed atomically. Works over any DocumentStore (in-memory or MongoDB)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from linkwell.documents import DocumentStore, add_event, change, has_seen, mark_seen
from linkwell.messaging import PermanentError
from linkwell_schemas.events import Event, ReferralReceived, ReferralUpdated
from referral_intake import domain

REFERRALS = "referrals"
SERVICE = "referral-intake"


class ReferralStore:
    def __init__(self, documents: DocumentStore, on_written: Any = None) -> None:
        self.documents = documents
        self.on_written = on_written

    async def setup(self) -> None:
        await self.documents.ensure_indexes(
            REFERRALS, ["stage", "moved_at", "tenant", "task.owner", "source_org", "received_at"]
        )

    async def get(self, referral_id: str) -> dict[str, Any] | None:
        return await self.documents.get(REFERRALS, referral_id)

    async def search(self, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """Referrals matching, oldest first (a caseload reads top-down)."""
        return await self.documents.find(REFERRALS, query, sort="received_at", limit=limit)

    async def create(self, doc: dict[str, Any], event: ReferralReceived) -> tuple[bool, dict]:
        """Store a new referral with its received event. (False, existing) if already there."""
        created = False

        def create_once(current: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal created
            if current is not None:
                return None
            created = True
            new = dict(doc)
            new["received_event"] = event.model_dump(mode="json")
            add_event(new, event)
            return new

        written = await change(
            self.documents, REFERRALS, doc["_id"], create_once, on_written=self.on_written
        )
        assert written is not None
        return created, written

    async def record(self, referral_id: str, event: Event, trace_id: str | None = None) -> None:
        """Apply a downstream event to the referral's Task, once."""

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None:
                raise PermanentError(f"event about an unknown referral ({event.topic})")
            if has_seen(current, str(event.event_id)):
                return None
            before = (current["task"]["status"], current["task"]["business_status"])
            current["task"] = domain.apply_event(current["task"], event)
            entry = domain.history_entry(event, current["task"])
            entry["trace_id"] = trace_id
            after = (current["task"]["status"], current["task"]["business_status"])
            if after != before:
                entry["changed"] = {
                    "status": [before[0], after[0]],
                    "business_status": [before[1], after[1]],
                }
            current.setdefault("history", []).append(entry)
            current["stage"] = "in-network"
            current["updated_at"] = domain.now_iso()
            current["moved_at"] = time.time()
            mark_seen(current, str(event.event_id))
            return current

        await change(self.documents, REFERRALS, referral_id, apply)

    async def change_by_partner(
        self,
        referral_id: str,
        org_id: str,
        decide: Callable[[dict[str, Any]], domain.TaskChange | None],
        expected_version: int | None,
        trace_id: str | None,
    ) -> dict[str, Any]:
        """A partner's change to the referral: decided on the current document (who, from which
        state, with what reason; `decide` raises TaskChangeRefused), applied, audited and
        published as intake.referral-updated.v1, in one write."""

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None:
                raise domain.TaskChangeRefused(404, "not-found", "No such resource")
            if expected_version is not None and int(current.get("_v", 1)) != expected_version:
                raise domain.TaskChangeRefused(
                    412, "conflict", "The Task has changed since that version (If-Match)"
                )
            wanted = decide(current)
            if wanted is None:
                return None
            before = (current["task"]["status"], current["task"]["business_status"])
            event = ReferralUpdated(
                producer=SERVICE,
                tenant=current["tenant"],
                correlation_id=referral_id,
                referral_id=referral_id,
                status=wanted.status,
                reason=wanted.reason_code,
                outcome=wanted.outcome,
                by=org_id,
            )
            current["task"] = domain.apply_event(current["task"], event)
            if wanted.reason_text is not None:
                current["task"]["status_reason_text"] = wanted.reason_text
            entry = domain.history_entry(event, current["task"])
            entry["by"] = org_id
            entry["trace_id"] = trace_id
            entry["changed"] = {
                "status": [before[0], current["task"]["status"]],
                "business_status": [before[1], current["task"]["business_status"]],
            }
            current.setdefault("history", []).append(entry)
            current["updated_at"] = domain.now_iso()
            current["moved_at"] = time.time()
            mark_seen(current, str(event.event_id))
            add_event(current, event)
            return current

        written = await change(
            self.documents, REFERRALS, referral_id, apply, on_written=self.on_written
        )
        assert written is not None
        return written

    async def redrive_stalled(self, older_than_seconds: float, max_redrives: int) -> int:
        """Re-publish the received event of referrals nobody downstream has answered.

        The event keeps its id, so services that did see it ignore it."""
        cutoff = time.time() - older_than_seconds
        stalled = await self.documents.find(
            REFERRALS, {"stage": "received", "moved_at": {"$lt": cutoff}}, limit=500
        )
        count = 0
        for doc in stalled:

            def redrive(current: dict[str, Any] | None) -> dict[str, Any] | None:
                if current is None or current.get("stage") != "received":
                    return None
                current["moved_at"] = time.time()
                if current.get("redrives", 0) >= max_redrives:
                    current["stage"] = "stalled"
                    return current
                current["redrives"] = current.get("redrives", 0) + 1
                add_event(current, ReferralReceived.model_validate(current["received_event"]))
                return current

            await change(self.documents, REFERRALS, doc["_id"], redrive, on_written=self.on_written)
            count += 1
        return count
