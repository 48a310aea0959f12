"""Versioned documents: a service's state, the events it caused and the events it has seen,
changed together in one atomic single-document write.

Each document carries `_v` (its version), `_outbox` (events to relay to Kafka), `_outbox_pending`
(indexed flag the relay polls) and `_seen` (recent event ids, for idempotent consumers). A change
reads the document, applies a pure function and writes it back only if `_v` is unchanged
(optimistic concurrency). This needs nothing beyond single-document atomicity, which every
MongoDB deployment gives, so it behaves the same on a replica set and on the embedded server.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from opentelemetry import propagate
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from linkwell_schemas.events import Event

Doc = dict[str, Any]
SEEN_LIMIT = 256


class ConcurrentChangeError(RuntimeError):
    """The document kept changing under us; the caller may retry later."""


class DocumentStore(Protocol):
    async def get(self, collection: str, doc_id: str) -> Doc | None: ...

    async def insert(self, collection: str, doc: Doc) -> bool:
        """Insert a new document; False when one with that `_id` exists."""
        ...

    async def replace(self, collection: str, doc: Doc, expected_version: int) -> bool:
        """Replace the document if its `_v` is still `expected_version`."""
        ...

    async def find(
        self,
        collection: str,
        query: Mapping[str, Any],
        sort: str | None = None,
        limit: int = 0,
    ) -> list[Doc]: ...

    async def delete_where(self, collection: str, query: Mapping[str, Any]) -> int: ...

    async def count(self, collection: str, query: Mapping[str, Any]) -> int: ...

    async def ensure_indexes(self, collection: str, fields: list[str]) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


# ---------------------------------------------------------------- in-memory (unit tests)


def _lookup(doc: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def _matches(doc: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    for field, cond in query.items():
        present, value = _lookup(doc, field)
        if isinstance(cond, Mapping) and any(k.startswith("$") for k in cond):
            for op, arg in cond.items():
                if op == "$exists":
                    ok = present == bool(arg)
                elif not present:
                    ok = op == "$ne" or op == "$nin"
                elif op == "$lt":
                    ok = value < arg
                elif op == "$lte":
                    ok = value <= arg
                elif op == "$gt":
                    ok = value > arg
                elif op == "$gte":
                    ok = value >= arg
                elif op == "$in":
                    ok = value in arg
                elif op == "$nin":
                    ok = value not in arg
                elif op == "$ne":
                    ok = value != arg
                else:
                    raise ValueError(f"query operator {op} not supported")
                if not ok:
                    return False
        elif not present or value != cond:
            return False
    return True


class MemoryDocumentStore:
    """Same behaviour as the Mongo store, for fast unit tests."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Doc]] = {}

    async def get(self, collection: str, doc_id: str) -> Doc | None:
        doc = self._data.get(collection, {}).get(doc_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def insert(self, collection: str, doc: Doc) -> bool:
        coll = self._data.setdefault(collection, {})
        if doc["_id"] in coll:
            return False
        coll[doc["_id"]] = copy.deepcopy(doc)
        return True

    async def replace(self, collection: str, doc: Doc, expected_version: int) -> bool:
        coll = self._data.setdefault(collection, {})
        current = coll.get(doc["_id"])
        if current is None or current.get("_v") != expected_version:
            return False
        coll[doc["_id"]] = copy.deepcopy(doc)
        return True

    async def find(
        self,
        collection: str,
        query: Mapping[str, Any],
        sort: str | None = None,
        limit: int = 0,
    ) -> list[Doc]:
        docs = [d for d in self._data.get(collection, {}).values() if _matches(d, query)]
        if sort:
            docs.sort(key=lambda d: _lookup(d, sort)[1])
        if limit:
            docs = docs[:limit]
        return copy.deepcopy(docs)

    async def count(self, collection: str, query: Mapping[str, Any]) -> int:
        return sum(1 for d in self._data.get(collection, {}).values() if _matches(d, query))

    async def delete_where(self, collection: str, query: Mapping[str, Any]) -> int:
        docs = self._data.get(collection, {})
        doomed = [doc_id for doc_id, doc in docs.items() if _matches(doc, query)]
        for doc_id in doomed:
            del docs[doc_id]
        return len(doomed)

    async def ensure_indexes(self, collection: str, fields: list[str]) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


# ---------------------------------------------------------------- MongoDB


class MongoDocumentStore:
    def __init__(self, url: str, database: str) -> None:
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(
            url, serverSelectionTimeoutMS=5000, connectTimeoutMS=3000
        )
        self._db = self._client[database]

    async def get(self, collection: str, doc_id: str) -> Doc | None:
        return await self._db[collection].find_one({"_id": doc_id})

    async def insert(self, collection: str, doc: Doc) -> bool:
        try:
            await self._db[collection].insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def replace(self, collection: str, doc: Doc, expected_version: int) -> bool:
        result = await self._db[collection].replace_one(
            {"_id": doc["_id"], "_v": expected_version}, doc
        )
        return result.matched_count == 1

    async def find(
        self,
        collection: str,
        query: Mapping[str, Any],
        sort: str | None = None,
        limit: int = 0,
    ) -> list[Doc]:
        cursor = self._db[collection].find(dict(query))
        if sort:
            cursor = cursor.sort(sort, 1)
        if limit:
            cursor = cursor.limit(limit)
        return [doc async for doc in cursor]

    async def count(self, collection: str, query: Mapping[str, Any]) -> int:
        return int(await self._db[collection].count_documents(dict(query)))

    async def delete_where(self, collection: str, query: Mapping[str, Any]) -> int:
        result = await self._db[collection].delete_many(dict(query))
        return int(result.deleted_count)

    async def ensure_indexes(self, collection: str, fields: list[str]) -> None:
        for field in fields:
            await self._db[collection].create_index(field)

    async def ping(self) -> None:
        await self._client.admin.command("ping")

    async def close(self) -> None:
        await self._client.close()


# ---------------------------------------------------------------- changing a document


def has_seen(doc: Doc | None, event_id: str) -> bool:
    return doc is not None and event_id in doc.get("_seen", [])


def mark_seen(doc: Doc, event_id: str) -> None:
    seen = doc.setdefault("_seen", [])
    seen.append(event_id)
    del seen[:-SEEN_LIMIT]


def add_event(doc: Doc, event: Event) -> None:
    """Queue an event on the document; the relay publishes it after the write commits.

    The trace context of the change travels with the event, so the relay's publish (and every
    consumer after it) joins the trace of the request that caused it.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    doc.setdefault("_outbox", []).append(
        {
            "event_id": str(event.event_id),
            "topic": event.topic,
            "key": event.key(),
            "payload": event.model_dump(mode="json"),
            "trace": carrier,
        }
    )
    doc["_outbox_pending"] = True


Change = Callable[[Doc | None], Doc | None]


async def change(
    store: DocumentStore,
    collection: str,
    doc_id: str,
    apply: Change,
    attempts: int = 50,
    on_written: Callable[[], Awaitable[None] | None] | None = None,
) -> Doc | None:
    """Apply `apply` to the current document and write the result atomically.

    `apply` gets a private copy (or None when absent) and returns the new document, or None
    to leave it as it is. Returns the document as written (or as found when unchanged).
    """
    for attempt in range(attempts):
        current = await store.get(collection, doc_id)
        proposed = apply(copy.deepcopy(current) if current is not None else None)
        if proposed is None:
            return current
        proposed["_id"] = doc_id
        if current is None:
            proposed["_v"] = 1
            proposed.setdefault("_outbox_pending", bool(proposed.get("_outbox")))
            written = await store.insert(collection, proposed)
        else:
            version = int(current.get("_v", 0))
            proposed["_v"] = version + 1
            proposed["_outbox_pending"] = bool(proposed.get("_outbox"))
            written = await store.replace(collection, proposed, version)
        if written:
            if on_written is not None:
                maybe = on_written()
                if maybe is not None:
                    await maybe
            return proposed
        await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))
    raise ConcurrentChangeError(f"{collection}/{doc_id} kept changing; gave up")
