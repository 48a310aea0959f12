"""The Task a referrer sees as the referral moves through the network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from linkwell_schemas.events import (
    Candidate,
    MatchProposed,
    PlaceRefused,
    PlaceReserved,
    Refusal,
    Waitlisted,
)
from referral_intake import domain

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
COMMON = {"producer": "x", "tenant": "t", "correlation_id": "r1", "referral_id": "r1"}


def proposed(at: datetime) -> MatchProposed:
    return MatchProposed(
        **COMMON,
        occurred_at=at,
        candidates=[
            Candidate(
                asset_id="a1",
                asset_name="Walking group",
                provider_org="vcse-1",
                score=0.9,
                reasons=["helps with loneliness", "0.4 km, walkable"],
            )
        ],
    )


def reserved(at: datetime) -> PlaceReserved:
    return PlaceReserved(
        **COMMON,
        occurred_at=at,
        asset_id="a1",
        asset_name="Walking group",
        provider_org="vcse-1",
        hold_expires_at=at + timedelta(days=3),
    )


def test_place_held_shows_asset_and_owner() -> None:
    task = domain.TaskState().__dict__
    task = domain.apply_event(task, proposed(T0))
    assert task["business_status"] == "matched"
    assert "Walking group" in task["business_text"] and "walkable" in task["business_text"]
    task = domain.apply_event(task, reserved(T0 + timedelta(seconds=1)))
    assert task["business_status"] == "place-held"
    assert task["held_asset"]["asset_id"] == "a1"
    assert task["owner"] == "vcse-1"


def test_a_late_match_event_does_not_move_the_task_backwards() -> None:
    task = domain.apply_event(domain.TaskState().__dict__, reserved(T0 + timedelta(seconds=1)))
    task = domain.apply_event(task, proposed(T0))
    assert task["business_status"] == "place-held"
    assert task["candidates"][0]["asset_id"] == "a1"


def test_refused_then_waitlisted_ends_waitlisted_with_band() -> None:
    task = domain.TaskState().__dict__
    task = domain.apply_event(
        task,
        PlaceRefused(
            **COMMON, occurred_at=T0, refusals=[Refusal(asset_id="a1", reason="at-capacity")]
        ),
    )
    assert task["business_status"] == "refused-capacity"
    task = domain.apply_event(
        task, Waitlisted(**COMMON, occurred_at=T0 + timedelta(seconds=1), asset_id="a1", position=2)
    )
    assert task["business_status"] == "waitlisted"
    assert task["waitlist"] == {"asset_id": "a1", "position": 2, "band": "unknown"}


def test_refusal_that_waitlists_shows_waitlisted_at_once_in_either_order() -> None:
    refused = PlaceRefused(
        **COMMON,
        occurred_at=T0,
        refusals=[Refusal(asset_id="a1", reason="at-capacity")],
        waitlisted_at="a1",
    )
    waitlisted = Waitlisted(
        **COMMON, occurred_at=T0 + timedelta(seconds=1), asset_id="a1", position=2
    )
    first = domain.apply_event(domain.TaskState().__dict__, refused)
    assert first["business_status"] == "waitlisted"  # never shown as refused
    for events in ((refused, waitlisted), (waitlisted, refused)):
        task = domain.TaskState().__dict__
        for event in events:
            task = domain.apply_event(task, event)
        assert task["business_status"] == "waitlisted"
        assert task["waitlist"] == {"asset_id": "a1", "position": 2, "band": "unknown"}
