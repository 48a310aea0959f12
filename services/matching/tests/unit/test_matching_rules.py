"""Which assets a referral is offered, and why: each hard filter, each score, the reasons."""

from __future__ import annotations

import dataclasses
from datetime import date

from linkwell_schemas.events import (
    Availability,
    Location,
    Need,
    Organisation,
    Priority,
    ReferralReceived,
)
from matching.domain import decide
from matching.model import Asset, Live, Session

HYDE_PARK = Location(postcode_sector="LS6 1", lat=53.81133, lon=-1.57036, precision_km=0.59)
TODAY = date(2026, 11, 22)


def referral(needs: list[str], location: Location | None = HYDE_PARK, **kw) -> ReferralReceived:
    return ReferralReceived(
        producer="referral-intake",
        tenant="t",
        correlation_id="r1",
        referral_id="r1",
        source=Organisation(org_id="gp", kind="gp"),
        needs=[Need(category=n) for n in needs],
        location=location,
        fhir_reference="ServiceRequest/r1",
        **kw,
    )


def asset(asset_id: str, categories: set[str], lat: float, lon: float, **kw) -> Asset:
    kw.setdefault("assured_date", date(2026, 6, 1))
    return Asset(
        asset_id=asset_id,
        name=asset_id.replace("-", " ").title(),
        provider_org=kw.pop("provider_org", f"vcse-{asset_id}"),
        categories=frozenset(categories),
        lat=lat,
        lon=lon,
        **kw,
    )


def live(a: Asset, capacity: int | None, in_use: int = 0, held: int = 0, **kw) -> Asset:
    level = Live(capacity=capacity, in_use=in_use, held=held, **kw)
    return dataclasses.replace(
        a, live=level, live_available=level.available, accepting_referrals=level.accepting_referrals
    )


def ids(decision) -> list[str]:
    return [c.asset_id for c in decision.candidates]


NEAR_WALK = asset(
    "near-walk",
    {"loneliness", "physical-activity"},
    53.8120,
    -1.5720,
    sessions=(Session(day="TU", opens="10:00", closes="11:30"),),
)
FAR_LUNCH = asset("far-lunch", {"loneliness"}, 53.8600, -1.6100)  # about 6 km away
KNITTING = asset("knitting", {"creativity"}, 53.8110, -1.5700)


def decide_(ref: ReferralReceived, assets: list[Asset], **kw):
    return decide(ref, assets, today=TODAY, **kw)


# ------------------------------------------------------------------ reasons and reach


def test_nearest_fitting_asset_ranks_first_with_reasons() -> None:
    decision = decide_(
        referral(["loneliness", "physical-activity"]), [FAR_LUNCH, NEAR_WALK, KNITTING]
    )
    assert ids(decision) == ["near-walk", "far-lunch"]
    best = decision.candidates[0]
    assert "helps with loneliness, physical-activity" in best.reasons
    assert "0.1 km, walkable" in best.reasons
    assert "Tuesday mornings, 10:00-11:30" in best.reasons
    assert any("a short bus ride" in r for r in decision.candidates[1].reasons)


def test_no_transport_keeps_only_walkable_assets() -> None:
    decision = decide_(referral(["loneliness"], barriers=["transport"]), [FAR_LUNCH, NEAR_WALK])
    assert ids(decision) == ["near-walk"]


def test_no_transport_and_limited_mobility_shortens_the_walk() -> None:
    kilometre_away = asset("kilometre-away", {"loneliness"}, 53.8225, -1.5704)  # 1.2 km
    walker = referral(["loneliness"], barriers=["transport"])
    slower = referral(["loneliness"], barriers=["transport", "mobility"])
    assert ids(decide_(walker, [kilometre_away])) == ["kilometre-away"]
    assert ids(decide_(slower, [kilometre_away])) == []


def test_nothing_reachable_says_so_for_counting_gaps() -> None:
    decision = decide_(referral(["loneliness"], barriers=["transport"]), [FAR_LUNCH])
    assert decision.candidates == []
    assert decision.gap == "none-reachable"
    assert decision.filtered == {"unreachable": 1}
    assert decision.no_match_reason == "none reachable: 1 over 1.9 km away with no transport"


def test_phone_befriending_needs_no_travel() -> None:
    phone = asset("phone-friends", {"loneliness"}, 53.8600, -1.6100, delivery=frozenset({"phone"}))
    decision = decide_(referral(["loneliness"], barriers=["transport"]), [phone])
    assert ids(decision) == ["phone-friends"]
    assert "by phone, no travel needed" in decision.candidates[0].reasons


def test_without_a_postcode_distance_is_unknown_but_needs_still_match() -> None:
    decision = decide_(referral(["loneliness"], location=None), [FAR_LUNCH])
    assert decision.candidates[0].distance_km is None
    assert "distance unknown" in decision.candidates[0].reasons


def test_interest_alone_can_find_an_asset() -> None:
    choir = asset("choir", {"creativity"}, 53.8120, -1.5720, interests=frozenset({"singing"}))
    decision = decide_(referral([], interests=["singing"]), [choir])
    assert ids(decision) == ["choir"]
    assert "fits interest in singing" in decision.candidates[0].reasons


def test_no_needs_at_all_is_a_gap_not_a_guess() -> None:
    decision = decide_(referral([]), [NEAR_WALK])
    assert decision.candidates == [] and decision.gap == "no-needs"


def test_nothing_in_the_directory_for_the_need() -> None:
    decision = decide_(referral(["housing"]), [NEAR_WALK])
    assert decision.gap == "none-relevant"
    assert decision.no_match_reason == "no asset in the directory meets these needs"


# ------------------------------------------------------------------ hard filters


def test_age_limits_are_eligibility() -> None:
    young_carers = asset("young-carers", {"carer"}, 53.8120, -1.5720, min_age=8, max_age=17)
    adult = referral(["carer"], age_band="45-54")
    decision = decide_(adult, [young_carers])
    assert decision.gap == "none-eligible" and decision.filtered == {"ineligible": 1}
    assert ids(decide_(referral(["carer"], age_band="0-17"), [young_carers])) == ["young-carers"]


def test_a_group_for_carers_is_only_for_carers() -> None:
    circle = asset(
        "carers-circle", {"carer", "low-mood"}, 53.8120, -1.5720, for_needs=frozenset({"carer"})
    )
    assert ids(decide_(referral(["low-mood"]), [circle])) == []
    assert ids(decide_(referral(["carer", "low-mood"]), [circle])) == ["carers-circle"]


def test_paused_asset_is_never_proposed() -> None:
    paused = live(
        asset("paused", {"loneliness"}, 53.8120, -1.5720),
        10,
        accepting_referrals=False,
        paused_reason="volunteers on leave",
    )
    decision = decide_(referral(["loneliness"]), [paused])
    assert decision.candidates == [] and decision.gap == "all-paused"
    assert "all paused" in (decision.no_match_reason or "")


def test_little_english_means_the_persons_language_or_a_group_for_learners() -> None:
    english_only = asset("lunch-club", {"loneliness"}, 53.8120, -1.5720)
    polish = asset(
        "polish-club", {"loneliness"}, 53.8125, -1.5725, languages=frozenset({"pl", "en"})
    )
    esol = asset(
        "esol-cafe",
        {"loneliness", "language"},
        53.8122,
        -1.5722,
        for_needs=frozenset({"language"}),
    )
    other_community = asset(
        "portuguese-club",
        {"loneliness", "language"},
        53.8123,
        -1.5723,
        languages=frozenset({"pt", "en"}),
    )
    person = referral(["loneliness", "language"], language="pl", barriers=["language"])
    decision = decide_(person, [english_only, polish, esol, other_community])
    assert set(ids(decision)) == {"polish-club", "esol-cafe"}
    assert "in Polish" in decision.candidates[ids(decision).index("polish-club")].reasons
    assert decide_(person, [english_only, other_community]).gap == "none-in-language"
    # someone who prefers Polish but has no language barrier can go anywhere
    fluent = referral(["loneliness"], language="pl")  # prefers Polish, speaks English
    assert ids(decide_(fluent, [english_only])) == ["lunch-club"]


def test_access_needs_must_be_declared_by_the_venue() -> None:
    unknown = asset("unknown-access", {"loneliness"}, 53.8120, -1.5720)
    ramped = asset(
        "ramped",
        {"loneliness"},
        53.8125,
        -1.5725,
        accessibility=frozenset({"step-free", "wheelchair"}),
    )
    person = referral(["loneliness"], accessibility=["wheelchair"])
    decision = decide_(person, [unknown, ramped])
    assert ids(decision) == ["ramped"]
    assert "wheelchair accessible" in decision.candidates[0].reasons
    assert decision.filtered == {"inaccessible": 1}
    assert decide_(person, [unknown]).gap == "none-accessible"


def test_cannot_afford_excludes_what_charges_but_not_what_is_silent() -> None:
    charges = asset("tea-dance", {"loneliness"}, 53.8120, -1.5720, free=False, cost="£3")
    silent = asset("silent", {"loneliness"}, 53.8121, -1.5721)
    free = asset("free-club", {"loneliness"}, 53.8122, -1.5722, free=True)
    decision = decide_(referral(["loneliness"], barriers=["cost"]), [charges, silent, free])
    assert set(ids(decision)) == {"silent", "free-club"}
    assert "free" in decision.candidates[ids(decision).index("free-club")].reasons
    assert decide_(referral(["loneliness"], barriers=["cost"]), [charges]).gap == "none-affordable"


def test_closed_services_are_left_out() -> None:
    closed = asset("closed", {"loneliness"}, 53.8120, -1.5720, status="defunct")
    assert ids(decide_(referral(["loneliness"]), [closed])) == []


def test_a_referral_to_a_named_provider_stays_with_that_provider() -> None:
    ours = asset("ours", {"loneliness"}, 53.8600, -1.6100, provider_org="vcse-ours")
    nearer = asset("nearer", {"loneliness"}, 53.8120, -1.5720)
    person = referral(["loneliness"], requested_performer="vcse-ours")
    assert ids(decide_(person, [ours, nearer])) == ["ours"]
    unsuitable = decide_(person, [nearer])
    assert unsuitable.gap == "requested-provider-unsuitable"


# ------------------------------------------------------------------ soft scores


def test_room_ranks_above_full_and_all_full_is_a_gap() -> None:
    full = live(
        asset("full-walk", {"loneliness"}, 53.8120, -1.5720), 10, in_use=10, waitlist_length=4
    )
    roomy = live(asset("roomy-walk", {"loneliness"}, 53.8125, -1.5725), 10, in_use=7)
    decision = decide_(referral(["loneliness"]), [full, roomy])
    assert ids(decision) == ["roomy-walk", "full-walk"]
    assert "has 3 places free" in decision.candidates[0].reasons
    assert "full: would join a waitlist of 4" in decision.candidates[1].reasons
    assert decision.gap is None
    assert decide_(referral(["loneliness"]), [full]).gap == "all-full"


def test_stale_capacity_is_treated_as_unknown_and_said() -> None:
    stale = live(asset("stale", {"loneliness"}, 53.8120, -1.5720), 10, stale=True)
    roomy = live(asset("roomy", {"loneliness"}, 53.8125, -1.5725), 10, in_use=2)
    decision = decide_(referral(["loneliness"]), [stale, roomy])
    assert ids(decision) == ["roomy", "stale"]
    assert "places not confirmed recently" in decision.candidates[1].reasons


def test_sessions_when_the_person_is_free_rank_first() -> None:
    tuesday = asset(
        "tuesday", {"loneliness"}, 53.8125, -1.5725, sessions=(Session(day="TU", opens="10:00"),)
    )
    thursday = asset(
        "thursday", {"loneliness"}, 53.8120, -1.5720, sessions=(Session(day="TH", opens="10:00"),)
    )
    person = referral(["loneliness"], availability=[Availability(day="TU", period="morning")])
    decision = decide_(person, [thursday, tuesday])
    assert ids(decision) == ["tuesday", "thursday"]
    assert "Tuesday mornings, 10:00, when the person is free" in decision.candidates[0].reasons
    assert any("the person is free Tuesday mornings" in r for r in decision.candidates[1].reasons)


def test_load_is_spread_away_from_a_flooded_provider() -> None:
    busy = asset("busy", {"loneliness"}, 53.8120, -1.5720)
    quiet = asset("quiet", {"loneliness"}, 53.8121, -1.5721)
    loads = {"vcse-busy": 9, "vcse-quiet": 0}
    decision = decide_(referral(["loneliness"]), [busy, quiet], recent_load=loads.__getitem__)
    assert ids(decision) == ["quiet", "busy"]
    assert "busy: 9 referrals proposed this week" in decision.candidates[1].reasons


def test_at_most_two_proposals_per_provider() -> None:
    libraries = [
        asset(f"library-{i}", {"digital"}, 53.812 + i / 1000, -1.572, provider_org="libraries")
        for i in range(4)
    ]
    hub = asset("digital-hub", {"digital"}, 53.83, -1.58)
    decision = decide_(referral(["digital"]), [*libraries, hub])
    assert [c.provider_org for c in decision.candidates].count("libraries") == 2
    assert "digital-hub" in ids(decision)


def test_unverified_and_old_entries_rank_below_fresh_verified_ones() -> None:
    suggested = asset("suggested", {"loneliness"}, 53.8120, -1.5720, verified=False)
    old = asset("old", {"loneliness"}, 53.8120, -1.5720, assured_date=date(2022, 3, 1))
    fresh = asset("fresh", {"loneliness"}, 53.8120, -1.5720)
    decision = decide_(referral(["loneliness"]), [suggested, old, fresh])
    assert ids(decision) == ["fresh", "old", "suggested"]
    assert "entry last checked March 2022" in decision.candidates[1].reasons
    assert "suggested by the community panel, not yet verified" in decision.candidates[2].reasons


def test_reasons_read_like_a_link_workers_note() -> None:
    club = live(
        asset(
            "welcome-club",
            {"loneliness", "language"},
            53.8200,
            -1.5720,
            sessions=(Session(day="TU", opens="10:00", closes="12:00"),),
            who_for="welcomes people new to the area",
            free=True,
        ),
        10,
        in_use=7,
    )
    candidate = decide_(referral(["loneliness"]), [club]).candidates[0]
    assert candidate.reasons == [
        "helps with loneliness",
        "1.0 km, walkable",
        "Tuesday mornings, 10:00-12:00",
        "has 3 places free",
        "welcomes people new to the area",
        "free",
    ]


# ------------------------------------------------------------------ escalation


def test_crisis_is_escalated_to_a_clinician_not_matched() -> None:
    decision = decide_(referral(["loneliness", "mental-health-crisis"]), [NEAR_WALK])
    assert decision.candidates == []
    assert decision.escalate is not None and decision.escalate[1] == "clinician"


def test_safeguarding_goes_to_a_link_worker() -> None:
    decision = decide_(referral(["safeguarding"]), [NEAR_WALK])
    assert decision.escalate is not None and decision.escalate[1] == "link-worker"


def test_low_mood_marked_asap_goes_to_a_link_worker_first() -> None:
    decision = decide_(referral(["low-mood"], priority=Priority.asap), [NEAR_WALK])
    assert decision.escalate is not None and decision.escalate[1] == "link-worker"
    food = asset("pantry", {"food"}, 53.8120, -1.5720)
    assert ids(decide_(referral(["food"], priority=Priority.asap), [food])) == ["pantry"]


def test_a_venue_out_of_reach_can_still_help_by_phone() -> None:
    advice = asset(
        "money-advice", {"money"}, 53.8600, -1.6100, delivery=frozenset({"venue", "phone"})
    )
    near = referral(["money"])
    walker = referral(["money"], barriers=["transport"])
    assert any("km, a short bus ride" in r for r in decide_(near, [advice]).candidates[0].reasons)
    assert "by phone, no travel needed" in decide_(walker, [advice]).candidates[0].reasons
    stepped = asset("stepped-venue", {"money"}, 53.8120, -1.5720, delivery=frozenset({"venue"}))
    step_free_needed = referral(["money"], accessibility=["step-free"])
    assert decide_(step_free_needed, [stepped]).gap == "none-accessible"
    by_phone = dataclasses.replace(stepped, delivery=frozenset({"venue", "phone"}))
    assert (
        "by phone, no travel needed" in decide_(step_free_needed, [by_phone]).candidates[0].reasons
    )


def test_a_specific_need_met_outweighs_a_common_one() -> None:
    carers = asset("carers-circle", {"carer"}, 53.8130, -1.5730)
    mood = asset("mood-group", {"low-mood"}, 53.8120, -1.5720)
    person = referral(["carer", "low-mood"])
    assert ids(decide_(person, [mood, carers]))[0] == "mood-group"  # nearer, equal weights
    weights = {"carer": 3.0, "low-mood": 1.5}  # carers' groups are rarer in the directory
    assert ids(decide_(person, [mood, carers], need_weights=weights))[0] == "carers-circle"
