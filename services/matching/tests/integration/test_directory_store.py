"""The directory on a real MongoDB-wire server (and MongoDB in a container when Docker
answers): the import command stores a feed once, and every instance's index sees changes
and capacity written by another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from linkwell.documents import MongoDocumentStore
from linkwell_schemas.events import CapacityChanged
from matching.directory import Directory
from matching.store import DirectoryStore

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def run_import(mongodb_url: str, database: str, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"MONGODB_URL": mongodb_url, "MATCHING_DATABASE": database}
    return subprocess.run(
        [sys.executable, "-m", "matching", "import", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_import_command_stores_a_feed_once_and_instances_share_it(
    infrastructure, database_name, tmp_path: Path
) -> None:
    page = json.loads((FIXTURES / "oruk1-kirkstall-page.json").read_text())
    path = tmp_path / "kirkstall.json"
    path.write_text(json.dumps(page))
    feed = str(path)
    first = run_import(infrastructure.mongodb_url, database_name, feed, "--namespace", "kca")
    assert first.returncode == 0, first.stderr
    assert (
        "4 records read (oruk1), 4 assets, 4 new or changed, 0 withdrawn, 1 records rejected"
        in first.stdout
    )
    assert "rejected record 2 (kca-broken-3) $.status" in first.stdout
    again = run_import(infrastructure.mongodb_url, database_name, feed, "--namespace", "kca")
    assert "0 new or changed" in again.stdout

    documents = MongoDocumentStore(infrastructure.mongodb_url, database_name)
    try:
        one, other = Directory(DirectoryStore(documents)), Directory(DirectoryStore(documents))
        await one.refresh(force=True)
        await other.refresh(force=True)
        assert (
            sorted(one.index.assets)
            == sorted(other.index.assets)
            == [
                "kca:kca-carers-4@loc3",
                "kca:kca-carers-4@loc4",
                "kca:kca-walk-1",
                "kca:lbn-phone-2",
            ]
        )
        await one.store.record_capacity(
            CapacityChanged(
                producer="capacity",
                tenant="demo-region",
                correlation_id="kca:kca-walk-1",
                asset_id="kca:kca-walk-1",
                capacity=12,
                in_use=4,
                held=1,
                waitlist_length=0,
                accepting_referrals=True,
            )
        )
        await other.refresh(force=True)
        assert other.index.assets["kca:kca-walk-1"].live_available == 7

        # the council republishes its feed without the walk: it is withdrawn everywhere
        closed = [r for r in page["content"] if r["id"] != "kca-walk-1"]
        path.write_text(json.dumps(page | {"content": closed}))
        later = run_import(infrastructure.mongodb_url, database_name, feed, "--namespace", "kca")
        assert "3 assets, 0 new or changed, 1 withdrawn" in later.stdout, later.stdout
        await other.refresh(force=True)
        assert other.index.assets["kca:kca-walk-1"].status == "inactive"
        assert other.index.assets["kca:lbn-phone-2"].status == "active"
    finally:
        await documents.close()
