"""Crashes while referrals are in flight: a consumer service is killed (SIGKILL, no clean
shutdown) and restarted. Every referral still completes, none holds two places, no asset is
over capacity, and the referrer is told each outcome once."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from linkwell.testing import RunningNetwork, launch, referral

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "examples" / "fhir" / "social-prescribing-referral.json").read_text())
FINAL = {"place-held", "waitlisted", "refused-capacity"}


@pytest.fixture(scope="module")
def crash_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = launch(ROOT, tmp_path_factory.mktemp("crash"))
    try:
        yield running
    finally:
        running.close()


def post_many(network: RunningNetwork, prefix: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        created = network.post_referral(referral(SAMPLE, f"{prefix}-{n:03d}"))
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return ids


def wait_all_final(network: RunningNetwork, ids: list[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    tasks: dict[str, dict] = {}
    for referral_id in ids:
        task, _ = network.wait_for_task(
            referral_id, FINAL, timeout=max(1.0, deadline - time.monotonic())
        )
        tasks[referral_id] = task
    return tasks


def assert_places_consistent(network: RunningNetwork, ids: list[str]) -> None:
    client: MongoClient = MongoClient(network.net.env["MONGODB_URL"])
    try:
        assets = list(client["capacity"]["assets"].find({}))
    finally:
        client.close()
    holders: Counter[str] = Counter()
    for asset in assets:
        taken = len(asset.get("holds", {})) + len(asset.get("in_use", {}))
        if asset.get("capacity") is not None:
            assert taken <= asset["capacity"], f"{asset['_id']} is over capacity"
        holders.update(asset.get("holds", {}).keys())
        waiting = asset.get("waitlist", [])
        assert len(waiting) == len(set(waiting)), f"{asset['_id']} waitlists someone twice"
    assert [r for r, n in holders.items() if n > 1] == [], "a referral holds two places"
    for referral_id in ids:
        assert holders[referral_id] <= 1


def assert_told_once_per_outcome(
    network: RunningNetwork, ids: list[str], timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    wanted = set(ids)
    while True:
        told = {r["body"]["referral_id"] for r in network.receiver.received}
        if wanted <= told or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert wanted <= told, f"{len(wanted - told)} referrers never told"
    bodies = [r["body"] for r in network.receiver.received if r["body"]["referral_id"] in wanted]
    per_event = Counter(b["event_id"] for b in bodies)
    assert [e for e, n in per_event.items() if n > 1] == [], "a notice was delivered twice"
    held_notices = Counter(
        b["referral_id"] for b in bodies if b["summary"].startswith("A place is held")
    )
    assert [r for r, n in held_notices.items() if n > 1] == [], "told of two held places"


@pytest.mark.parametrize("victim", ["capacity", "matching"])
def test_killing_a_consumer_mid_flight_loses_and_duplicates_nothing(
    crash_network: RunningNetwork, victim: str
) -> None:
    network = crash_network
    before = post_many(network, f"{victim}-before", 8)
    network.net.kill(victim)  # referrals are in flight: some handled, some not yet
    during = post_many(network, f"{victim}-during", 8)
    time.sleep(1.0)
    network.net.start_service(victim)
    network.net.wait_ready(names=[victim])
    after = post_many(network, f"{victim}-after", 4)

    ids = before + during + after
    tasks = wait_all_final(network, ids, timeout=120)

    assert len(tasks) == len(set(ids)) == 20
    outcomes = Counter(t["businessStatus"]["coding"][0]["code"] for t in tasks.values())
    assert outcomes["place-held"] >= 1
    for task in tasks.values():
        if task["businessStatus"]["coding"][0]["code"] == "place-held":
            assert len(task["output"]) == 1
    assert_places_consistent(network, ids)
    assert_told_once_per_outcome(network, ids)
