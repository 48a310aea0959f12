"""Who is told about each event, in what words."""

from __future__ import annotations

from datetime import UTC, datetime

from linkwell_schemas.events import (
    Candidate,
    MatchProposed,
    PlaceReserved,
    ReferralEscalated,
    Waitlisted,
)
from notifications.domain import notices_for, webhook_body

COMMON = {"producer": "x", "tenant": "t", "correlation_id": "r1", "referral_id": "r1"}


def test_referrer_hears_where_a_place_is_held_and_until_when() -> None:
    event = PlaceReserved(
        **COMMON,
        asset_id="a1",
        asset_name="Hyde Park Walking for Health",
        hold_expires_at=datetime(2026, 11, 25, tzinfo=UTC),
    )
    [notice] = notices_for(event)
    assert notice.role == "referrer"
    assert notice.summary == "A place is held at Hyde Park Walking for Health until 25 Nov 2026"
    body = webhook_body(event, notice, "http://intake/fhir/Task/r1")
    assert body["task"] == "http://intake/fhir/Task/r1" and body["referral_id"] == "r1"


def test_referrer_hears_about_waitlists_escalations_and_no_match_but_not_every_proposal() -> None:
    assert "position 3" in notices_for(Waitlisted(**COMMON, asset_id="a1", position=3))[0].summary
    assert (
        notices_for(ReferralEscalated(**COMMON, reason="crisis", route_to="clinician"))[0].summary
        == "Referral escalated to a clinician"
    )
    none = MatchProposed(**COMMON, candidates=[], no_match_reason="none reachable")
    assert "none reachable" in notices_for(none)[0].summary
    some = MatchProposed(
        **COMMON,
        candidates=[Candidate(asset_id="a", asset_name="a", provider_org="p", score=1, reasons=[])],
    )
    assert notices_for(some) == []
