"""Referral documents on a real MongoDB-wire server (and MongoDB in a container when Docker
answers): caseload search by owner and status, replay-guarded tokens."""

from __future__ import annotations

import pytest

from linkwell.auth import DocumentReplayGuard
from linkwell.documents import MongoDocumentStore
from referral_intake.store import REFERRALS, ReferralStore

pytestmark = pytest.mark.integration


async def test_caseload_search_filters_on_the_task(infrastructure, database_name) -> None:
    documents = MongoDocumentStore(infrastructure.mongodb_url, database_name)
    store = ReferralStore(documents)
    await store.setup()
    try:
        for n, (tenant, owner, status) in enumerate(
            [
                ("north", "walk", "received"),
                ("north", "walk", "accepted"),
                ("north", "choir", "received"),
                ("south", "walk", "received"),
                ("north", "walk", "completed"),
            ]
        ):
            await documents.insert(
                REFERRALS,
                {
                    "_id": f"r{n}",
                    "tenant": tenant,
                    "source_org": "gp",
                    "received_at": f"2026-11-22T10:0{n}:00+00:00",
                    "task": {"status": status, "owner": owner},
                },
            )
        found = await store.search(
            {
                "tenant": "north",
                "task.owner": "walk",
                "task.status": {"$in": ["received", "accepted"]},
            },
            limit=10,
        )
        assert [d["_id"] for d in found] == ["r0", "r1"]
        by_focus = await store.search({"tenant": "north", "_id": {"$in": ["r4", "r2", "r3"]}}, 10)
        assert [d["_id"] for d in by_focus] == ["r2", "r4"]

        guard = DocumentReplayGuard(documents)
        assert await guard.first_use("gp:abc", 0.0)
        assert not await guard.first_use("gp:abc", 0.0)
        assert await guard.forget_expired() == 1
    finally:
        await documents.close()
