"""Capacity rules: never oversubscribed, one place per referral, whatever the order of events."""

from __future__ import annotations

import asyncio
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from capacity import domain
from capacity.store import CapacityStore
from linkwell.documents import MemoryDocumentStore
from linkwell_schemas.events import (
    AssetChanged,
    Candidate,
    MatchProposed,
    ReferralStatus,
    ReferralUpdated,
    WaitlistBand,
)


@given(capacity=st.integers(0, 5), attempts=st.lists(st.integers(0, 12), min_size=0, max_size=60))
def test_holds_never_exceed_capacity_and_repeat_attempts_change_nothing(capacity, attempts) -> None:
    asset = domain.new_asset("Walk", "vcse", capacity)
    for n in attempts:
        referral_id = f"r{n}"
        outcome = domain.hold_outcome(asset, referral_id)
        if outcome == "held":
            domain.hold(asset, referral_id, "2026-12-01T00:00:00+00:00")
        elif outcome == "at-capacity":
            domain.join_waitlist(asset, referral_id)
        assert domain.occupied(asset) <= capacity
    assert len(set(asset["holds"])) == len(asset["holds"])
    assert not set(asset["holds"]) & set(asset["waitlist"])
    assert len(asset["waitlist"]) == len(set(asset["waitlist"]))


def test_paused_and_unknown_capacity_refuse_with_their_reason() -> None:
    asset = domain.new_asset("Walk", "vcse", 3)
    asset["accepting_referrals"] = False
    assert domain.hold_outcome(asset, "r1") == "paused"
    assert domain.hold_outcome(domain.new_asset("Walk", "vcse", None), "r1") == "stale-data"
    assert domain.hold_outcome(None, "r1") == "unknown-asset"


def proposal(referral_id: str, assets: list[str]) -> MatchProposed:
    return MatchProposed(
        producer="matching",
        tenant="t",
        correlation_id=referral_id,
        referral_id=referral_id,
        candidates=[
            Candidate(asset_id=a, asset_name=a, provider_org="vcse", score=1 - i / 10, reasons=[])
            for i, a in enumerate(assets)
        ],
    )


async def declare(places: CapacityStore, asset_id: str, capacity: int) -> None:
    await places.declare(
        AssetChanged(
            producer="matching",
            tenant="t",
            correlation_id=asset_id,
            asset_id=asset_id,
            provider_org="vcse",
            asset_name=asset_id,
            declared_capacity=capacity,
        )
    )


@settings(max_examples=25, deadline=None)
@given(
    capacities=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    referrals=st.integers(1, 12),
    redeliver=st.lists(st.integers(0, 11), max_size=6),
)
def test_competing_placements_fill_but_never_overfill(capacities, referrals, redeliver) -> None:
    async def scenario() -> None:
        places = CapacityStore(MemoryDocumentStore())
        await declare(places, "small", capacities[0])
        await declare(places, "smaller", capacities[1])
        events = [proposal(f"r{i}", ["small", "smaller"]) for i in range(referrals)]
        events += [events[i] for i in redeliver if i < referrals]

        async def place(event: MatchProposed) -> None:
            await places.start_placement(event)
            await places.advance(event.referral_id)

        await asyncio.gather(*(place(e) for e in events))
        small, smaller = await places.asset("small"), await places.asset("smaller")
        assert domain.occupied(small) <= capacities[0]
        assert domain.occupied(smaller) <= capacities[1]
        holders = list(small["holds"]) + list(smaller["holds"])
        assert len(holders) == len(set(holders)), "a referral holds two places"
        assert len(holders) == min(referrals, sum(capacities))
        for i in range(referrals):
            state = (await places.placement(f"r{i}"))["state"]
            assert state in {"held", "waitlisted"}
            assert (state == "held") == (f"r{i}" in holders)

    asyncio.run(scenario())


async def test_full_asset_refuses_and_next_candidate_gets_the_place() -> None:
    places = CapacityStore(MemoryDocumentStore())
    await declare(places, "lunch-club", 1)
    await declare(places, "walking-group", 5)
    for referral_id in ("r1", "r2"):
        await places.start_placement(proposal(referral_id, ["lunch-club", "walking-group"]))
        await places.advance(referral_id)
    assert (await places.placement("r1"))["asset_id"] == "lunch-club"
    second = await places.placement("r2")
    assert second["state"] == "held" and second["asset_id"] == "walking-group"
    assert second["refusals"] == [{"asset_id": "lunch-club", "reason": "at-capacity"}]


async def test_all_full_refuses_overflow_and_waitlists_at_the_best_candidate() -> None:
    places = CapacityStore(MemoryDocumentStore())
    await declare(places, "lunch-club", 0)
    await declare(places, "walking-group", 0)
    await places.start_placement(proposal("r1", ["lunch-club", "walking-group"]))
    assert await places.advance("r1") == "waitlisted"
    placement = await places.placement("r1")
    assert placement["asset_id"] == "lunch-club"
    outbox_topics = [r["topic"] for r in placement["_outbox"]]
    assert outbox_topics == ["capacity.place-refused.v1"]
    lunch = await places.asset("lunch-club")
    assert lunch["waitlist"] == ["r1"]
    waitlisted = [r for r in lunch["_outbox"] if r["topic"] == "capacity.waitlisted.v1"]
    assert waitlisted[0]["payload"]["position"] == 1


LIFECYCLE = st.lists(
    st.tuples(
        st.sampled_from(["propose", "accept", "decline", "cancel", "complete", "expire"]),
        st.integers(0, 9),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=int(os.environ.get("LINKWELL_PROPERTY_EXAMPLES", "60")), deadline=None)
@given(capacities=st.tuples(st.integers(0, 3), st.integers(0, 2)), steps=LIFECYCLE)
def test_any_mix_of_holds_and_releases_never_overfills_or_doubles(capacities, steps) -> None:
    """Proposals, acceptances, declines, cancellations, completions and lapsed holds, run
    concurrently and redelivered in any order: the levels stay within the maxima, nobody
    holds two places, and a waitlist never names someone who has a place."""

    async def scenario() -> None:
        places = CapacityStore(MemoryDocumentStore())
        await declare(places, "small", capacities[0])
        await declare(places, "smaller", capacities[1])
        proposals = {n: proposal(f"r{n}", ["small", "smaller"]) for n in range(10)}

        async def step(kind: str, n: int, order: int) -> None:
            referral_id = f"r{n}"
            if kind == "propose":
                await places.start_placement(proposals[n])
                await places.advance(referral_id)
            elif kind == "expire":
                placement = await places.placement(referral_id)
                if placement and placement.get("state") == "held":
                    await places.release(referral_id, "expired", f"lapse-{order}", reroute=True)
            else:
                status = {
                    "accept": "accepted",
                    "decline": "declined",
                    "cancel": "cancelled",
                    "complete": "completed",
                }[kind]
                await places.on_update(
                    ReferralUpdated(
                        producer="referral-intake",
                        tenant="t",
                        correlation_id=referral_id,
                        referral_id=referral_id,
                        status=ReferralStatus(status),
                    )
                )

        await asyncio.gather(*(step(kind, n, i) for i, (kind, n) in enumerate(steps)))
        await places.resume_stalled(older_than_seconds=-1)  # what the sweep finishes later
        small, smaller = await places.asset("small"), await places.asset("smaller")
        for asset, maximum in ((small, capacities[0]), (smaller, capacities[1])):
            assert domain.occupied(asset) <= maximum
            placed = set(asset["holds"]) | set(asset["in_use"])
            assert not placed & set(asset["waitlist"])
        placed_small = set(small["holds"]) | set(small["in_use"])
        placed_smaller = set(smaller["holds"]) | set(smaller["in_use"])
        assert not placed_small & placed_smaller, "a referral has two places"
        for n in range(10):
            placement = await places.placement(f"r{n}")
            if placement and placement["state"] in ("held", "in-use"):
                where = small if placement["asset_id"] == "small" else smaller
                assert f"r{n}" in set(where["holds"]) | set(where["in_use"])

    asyncio.run(scenario())


def test_expected_wait_comes_from_how_fast_places_free_up() -> None:
    now = 1_800_000_000.0
    asset = domain.new_asset("Lunch", "vcse", 10)
    assert domain.waitlist_band(asset, 1, now) == WaitlistBand.unknown
    for day in range(0, 30, 5):  # six places freed over the last month
        domain.note_freed(asset, now - day * domain.DAY)
    assert domain.waitlist_band(asset, 3, now) == WaitlistBand.under_1_month
    assert domain.waitlist_band(asset, 12, now) == WaitlistBand.one_to_3_months
    assert domain.waitlist_band(asset, 40, now) == WaitlistBand.over_3_months
    old = domain.new_asset("Lunch", "vcse", 10)
    domain.note_freed(old, now - 200 * domain.DAY)  # too long ago to say anything
    assert domain.waitlist_band(old, 1, now) == WaitlistBand.unknown


def test_a_pause_with_a_resume_date_ends_by_itself() -> None:
    asset = domain.new_asset("Walk", "vcse", 3)
    asset.update(accepting_referrals=False, resume_on="2026-01-05")
    assert domain.accepting(asset, today="2026-01-04") is False
    assert domain.accepting(asset, today="2026-01-05") is True
