"""The same behaviour from every DocumentStore: in memory, on the embedded MongoDB-wire server,
and on MongoDB itself in a container where a Docker engine answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from linkwell.documents import (
    MemoryDocumentStore,
    MongoDocumentStore,
    add_event,
    change,
    has_seen,
    mark_seen,
)
from linkwell_schemas.events import AssetChanged


@pytest.fixture(
    params=[
        "memory",
        "mongo-embedded",
        pytest.param("mongo-container", marks=pytest.mark.containers),
    ]
)
async def store(request: pytest.FixtureRequest, database_name: str) -> AsyncIterator:
    if request.param == "memory":
        yield MemoryDocumentStore()
        return
    if request.param == "mongo-container":
        url = request.getfixturevalue("containers").mongodb_url
    else:
        url = request.getfixturevalue("stack").mongodb_url
    mongo = MongoDocumentStore(url, database_name)
    yield mongo
    await mongo.close()


async def test_concurrent_changes_lose_no_update(store) -> None:
    async def increment(_: int) -> None:
        def apply(doc):
            doc = doc or {"count": 0}
            doc["count"] += 1
            return doc

        await change(store, "counters", "c1", apply)

    await asyncio.gather(*(increment(i) for i in range(25)))
    doc = await store.get("counters", "c1")
    assert doc["count"] == 25
    assert doc["_v"] == 25


async def test_insert_refuses_a_second_document_with_the_same_id(store) -> None:
    assert await store.insert("things", {"_id": "a", "_v": 1})
    assert not await store.insert("things", {"_id": "a", "_v": 1})


async def test_replace_only_when_version_is_unchanged(store) -> None:
    await store.insert("things", {"_id": "a", "_v": 1, "x": 1})
    assert await store.replace("things", {"_id": "a", "_v": 2, "x": 2}, expected_version=1)
    assert not await store.replace("things", {"_id": "a", "_v": 2, "x": 3}, expected_version=1)
    assert (await store.get("things", "a"))["x"] == 2


async def test_events_wait_on_the_document_until_relayed(store) -> None:
    event = AssetChanged(
        producer="matching",
        tenant="t",
        correlation_id="a1",
        asset_id="a1",
        provider_org="p",
        asset_name="Walking group",
    )

    def apply(doc):
        doc = doc or {}
        add_event(doc, event)
        mark_seen(doc, "cause-1")
        return doc

    await change(store, "assets", "a1", apply)
    pending = await store.find("assets", {"_outbox_pending": True})
    assert [d["_id"] for d in pending] == ["a1"]
    record = pending[0]["_outbox"][0]
    assert record["event_id"] == str(event.event_id)
    assert record["topic"] == "directory.asset-changed.v1"
    assert record["key"] == "a1"
    assert has_seen(pending[0], "cause-1") and not has_seen(pending[0], "cause-2")


async def test_find_filters_sorts_and_limits(store) -> None:
    for i in range(6):
        await store.insert(
            "jobs", {"_id": f"j{i}", "_v": 1, "state": "open" if i % 2 else "done", "due": 10 - i}
        )
    found = await store.find("jobs", {"state": "open", "due": {"$lt": 9}}, sort="due", limit=2)
    assert [d["_id"] for d in found] == ["j5", "j3"]


async def test_delete_where_removes_only_matching_documents(store) -> None:
    for n in range(4):
        await store.insert("tokens", {"_id": f"t{n}", "expires_at": float(n)})
    assert await store.delete_where("tokens", {"expires_at": {"$lt": 2.0}}) == 2
    assert [d["_id"] for d in await store.find("tokens", {}, sort="_id")] == ["t2", "t3"]
