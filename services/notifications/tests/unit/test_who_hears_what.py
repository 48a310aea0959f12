"""Who is told about each event, in what words."""

from __future__ import annotations

from datetime import UTC, datetime

from linkwell_schemas.events import (
    Candidate,
    MatchProposed,
    PlaceRefused,
    PlaceReleased,
    PlaceReserved,
    ReferralEscalated,
    Refusal,
    Waitlisted,
)
from notifications.domain import notices_for, person_text, webhook_body

COMMON = {"producer": "x", "tenant": "t", "correlation_id": "r1", "referral_id": "r1"}


def test_referrer_and_provider_hear_where_a_place_is_held_and_until_when() -> None:
    event = PlaceReserved(
        **COMMON,
        asset_id="a1",
        asset_name="Hyde Park Walking for Health",
        hold_expires_at=datetime(2026, 11, 25, tzinfo=UTC),
    )
    notice, provider, person = notices_for(event)
    assert notice.role == "referrer"
    assert notice.summary == "A place is held at Hyde Park Walking for Health until 25 Nov 2026"
    assert provider.role == "provider"
    assert provider.summary == (
        "A referral is waiting for a place at Hyde Park Walking for Health: please accept or "
        "decline by 25 Nov 2026"
    )
    assert person.role == "person" and "kept for you at Hyde Park" in person.summary
    body = webhook_body(event, notice, "http://intake/fhir/Task/r1")
    assert body["task"] == "http://intake/fhir/Task/r1" and body["referral_id"] == "r1"


def test_referrer_hears_about_waitlists_escalations_and_no_match_but_not_every_proposal() -> None:
    assert "position 3" in notices_for(Waitlisted(**COMMON, asset_id="a1", position=3))[0].summary
    escalated = notices_for(ReferralEscalated(**COMMON, reason="crisis", route_to="clinician"))
    assert [(n.role, n.summary) for n in escalated] == [
        ("referrer", "Referral escalated to a clinician"),
        ("link-worker", "A referral needs a clinician: crisis"),
    ]
    none = MatchProposed(**COMMON, candidates=[], no_match_reason="none reachable")
    assert "none reachable" in notices_for(none)[0].summary
    some = MatchProposed(
        **COMMON,
        candidates=[Candidate(asset_id="a", asset_name="a", provider_org="p", score=1, reasons=[])],
    )
    assert notices_for(some) == []


def test_referrer_hears_of_a_released_place_being_re_routed_but_not_its_own_cancellation() -> None:
    declined = PlaceReleased(**COMMON, asset_id="lunch", reason="declined")
    assert [n.summary for n in notices_for(declined)] == [
        "The place at lunch was released (declined); the next option is being tried"
    ]
    assert notices_for(PlaceReleased(**COMMON, asset_id="lunch", reason="cancelled")) == []


def test_a_refusal_that_waitlists_is_told_once_by_the_waitlisting() -> None:
    refused = PlaceRefused(
        **COMMON, refusals=[Refusal(asset_id="a1", reason="at-capacity")], waitlisted_at="a1"
    )
    assert notices_for(refused) == []
    nowhere = PlaceRefused(**COMMON, refusals=[Refusal(asset_id="a1", reason="paused")])
    assert [n.role for n in notices_for(nowhere)] == ["referrer"]


def test_the_person_is_told_in_their_language_where_the_region_has_it() -> None:
    event = PlaceReserved(
        **COMMON,
        asset_id="a1",
        asset_name="Clwb Cinio",
        hold_expires_at=datetime(2026, 11, 25, tzinfo=UTC),
    )
    person = notices_for(event)[-1]
    catalogue = {"cy": {"place-kept": "Newyddion da: mae lle wedi'i gadw i chi yn {where}."}}
    assert person_text(person, "cy", catalogue) == (
        "Newyddion da: mae lle wedi'i gadw i chi yn Clwb Cinio.",
        "cy",
    )
    english, used = person_text(person, "pl", catalogue)  # no Polish here yet: English
    assert used == "en" and english.startswith("Good news: a place has been kept for you")
    assert "Clwb Cinio" in english
