"""Which assets a referral is offered, and why."""

from __future__ import annotations

from linkwell_schemas.events import Location, Need, Organisation, ReferralReceived
from matching.domain import Asset, decide

HYDE_PARK = Location(postcode_sector="LS6 1", lat=53.81133, lon=-1.57036, precision_km=0.59)


def referral(
    needs: list[str],
    barriers: list[str] | None = None,
    interests: list[str] | None = None,
    location: Location | None = HYDE_PARK,
) -> ReferralReceived:
    return ReferralReceived(
        producer="referral-intake",
        tenant="t",
        correlation_id="r1",
        referral_id="r1",
        source=Organisation(org_id="gp", kind="gp"),
        needs=[Need(category=n) for n in needs],
        barriers=barriers or [],
        interests=interests or [],
        location=location,
        fhir_reference="ServiceRequest/r1",
    )


def asset(asset_id: str, categories: set[str], lat: float, lon: float, **kw) -> Asset:
    return Asset(
        asset_id=asset_id,
        name=asset_id.replace("-", " ").title(),
        provider_org=f"vcse-{asset_id}",
        categories=frozenset(categories),
        lat=lat,
        lon=lon,
        **kw,
    )


NEAR_WALK = asset(
    "near-walk", {"loneliness", "physical-activity"}, 53.8120, -1.5720, schedule="Tuesday mornings"
)
FAR_LUNCH = asset("far-lunch", {"loneliness"}, 53.8600, -1.6100)  # ~6 km away
KNITTING = asset("knitting", {"creativity"}, 53.8110, -1.5700)


def test_nearest_fitting_asset_ranks_first_with_reasons() -> None:
    decision = decide(
        referral(["loneliness", "physical-activity"]), [FAR_LUNCH, NEAR_WALK, KNITTING]
    )
    assert [c.asset_id for c in decision.candidates] == ["near-walk", "far-lunch"]
    best = decision.candidates[0]
    assert "helps with loneliness, physical-activity" in best.reasons
    assert any("km, walkable" in r for r in best.reasons)
    assert "Tuesday mornings" in best.reasons


def test_no_transport_keeps_only_walkable_assets() -> None:
    decision = decide(referral(["loneliness"], barriers=["transport"]), [FAR_LUNCH, NEAR_WALK])
    assert [c.asset_id for c in decision.candidates] == ["near-walk"]


def test_nothing_reachable_says_so() -> None:
    decision = decide(referral(["loneliness"], barriers=["transport"]), [FAR_LUNCH])
    assert decision.candidates == []
    assert decision.no_match_reason is not None
    assert (
        "none reachable" in decision.no_match_reason and "no transport" in decision.no_match_reason
    )


def test_full_asset_is_still_proposed_but_after_one_with_room() -> None:
    full = asset("full-walk", {"loneliness"}, 53.8120, -1.5720, live_available=0)
    roomy = asset("roomy-walk", {"loneliness"}, 53.8125, -1.5725, live_available=3)
    decision = decide(referral(["loneliness"]), [full, roomy])
    assert [c.asset_id for c in decision.candidates] == ["roomy-walk", "full-walk"]
    assert "has 3 places free" in decision.candidates[0].reasons
    assert "currently full (waitlist)" in decision.candidates[1].reasons


def test_paused_asset_is_never_proposed() -> None:
    paused = asset("paused", {"loneliness"}, 53.8120, -1.5720, accepting_referrals=False)
    decision = decide(referral(["loneliness"]), [paused])
    assert decision.candidates == [] and "paused" in (decision.no_match_reason or "")


def test_crisis_is_escalated_to_a_clinician_not_matched() -> None:
    decision = decide(referral(["loneliness", "mental-health-crisis"]), [NEAR_WALK])
    assert decision.candidates == []
    assert decision.escalate is not None and decision.escalate[1] == "clinician"


def test_safeguarding_goes_to_a_link_worker() -> None:
    decision = decide(referral(["safeguarding"]), [NEAR_WALK])
    assert decision.escalate is not None and decision.escalate[1] == "link-worker"


def test_without_a_postcode_distance_is_unknown_but_needs_still_match() -> None:
    decision = decide(referral(["loneliness"], location=None), [FAR_LUNCH])
    assert decision.candidates[0].distance_km is None
    assert "distance unknown (no postcode given)" in decision.candidates[0].reasons


def test_interest_alone_can_find_an_asset() -> None:
    choir = asset("choir", {"creativity"}, 53.8120, -1.5720, interests=frozenset({"singing"}))
    decision = decide(referral([], interests=["singing"]), [choir])
    assert decision.candidates[0].asset_id == "choir"
