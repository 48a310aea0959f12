"""Matching rules: escalate risk, filter what the person cannot use or reach, score the rest,
and say why. Pure functions; no I/O. The rules are documented in the service README.

Reach (straight-line distance from the centroid of the person's postcode sector):
- no transport (a `transport` barrier): 1.6 km, a 20-minute walk at 4.8 km/h;
- no transport and limited mobility: 0.8 km, a 15-minute walk at a slower 3.2 km/h;
- otherwise 8 km, about 30 minutes by bus in a town (bus journeys average 15-20 km/h
  door to door once walking and waiting are counted).
Half the sector's spread (at most 0.5 km) is added for walkers, all of it (at most 1 km) for
others, so people at the edge of a large rural sector are not excluded. Services delivered by
phone, online or at home need no travel and reach 25 km from their base (a local service area).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from linkwell.geo import distance_km
from linkwell_schemas.events import Candidate, ReferralReceived
from linkwell_schemas.needs import NEED_CATEGORIES, RISK_CATEGORIES
from matching.model import DAY_NAMES, Asset, Session, describe_sessions

WALKING_REACH_KM = 1.6
SLOW_WALKING_REACH_KM = 0.8
DEFAULT_REACH_KM = 8.0
REMOTE_REACH_KM = 25.0
MAX_PER_PROVIDER = 2  # spread proposals over organisations
BUSY_PROPOSALS_PER_WEEK = 10  # first-choice proposals in 7 days that count as fully loaded

# What matters to the person (needs and interests) leads; then whether they can get there
# and when it meets, then room, then spreading load and how fresh the entry is.
WEIGHTS = {
    "needs": 0.30,
    "interests": 0.20,
    "distance": 0.20,
    "schedule": 0.10,
    "room": 0.10,
    "load": 0.05,
    "freshness": 0.05,
}

# interests that point at a kind of asset even when no need names it
INTEREST_CATEGORIES = {
    "singing": "creativity",
    "music": "creativity",
    "art": "creativity",
    "crafts": "creativity",
    "gardening": "nature",
    "walking": "physical-activity",
    "sport": "physical-activity",
    "making and mending": "loneliness",
    "cooking": "food",
    "reading": "loneliness",
}

LANGUAGE_NAMES = {
    "cy": "Welsh",
    "gd": "Gaelic",
    "pl": "Polish",
    "ro": "Romanian",
    "ur": "Urdu",
    "pa": "Punjabi",
    "bn": "Bengali",
    "gu": "Gujarati",
    "ar": "Arabic",
    "so": "Somali",
    "ti": "Tigrinya",
    "ku": "Kurdish",
    "fa": "Farsi",
    "ps": "Pashto",
    "pt": "Portuguese",
    "es": "Spanish",
    "fr": "French",
    "ru": "Russian",
    "uk": "Ukrainian",
    "zh": "Chinese",
    "ta": "Tamil",
    "hi": "Hindi",
    "bsl": "British Sign Language",
}
ACCESS_NAMES = {
    "step-free": "step-free access",
    "wheelchair": "wheelchair accessible",
    "hearing-loop": "hearing loop",
    "accessible-toilet": "accessible toilet",
    "large-print": "large print",
}
AGE_BANDS = {
    "0-17": (0, 17),
    "18-24": (18, 24),
    "25-34": (25, 34),
    "35-44": (35, 44),
    "45-54": (45, 54),
    "55-64": (55, 64),
    "65-74": (65, 74),
    "75-84": (75, 84),
    "85+": (85, 120),
}

# hard filters, in the order they are applied; the key names the count in `filtered`
GAP_FOR_FILTER = {
    "other-provider": "requested-provider-unsuitable",
    "inactive": "none-relevant",
    "ineligible": "none-eligible",
    "paused": "all-paused",
    "language": "none-in-language",
    "inaccessible": "none-accessible",
    "cost": "none-affordable",
    "unreachable": "none-reachable",
}
GAP_TEXT = {
    "requested-provider-unsuitable": "the requested provider has nothing suitable",
    "none-eligible": "none eligible",
    "all-paused": "all paused or not accepting referrals",
    "none-in-language": "none offered in the person's language",
    "none-accessible": "none with the access the person needs",
    "none-affordable": "none free of charge",
    "none-reachable": "none reachable",
}


@dataclass
class Decision:
    escalate: tuple[str, str] | None = None  # (reason, route_to)
    candidates: list[Candidate] = field(default_factory=list)
    no_match_reason: str | None = None
    gap: str | None = None
    filtered: dict[str, int] = field(default_factory=dict)


def escalation(referral: ReferralReceived) -> tuple[str, str] | None:
    """Risk is never matched to a community group.

    - a serious mental-health need or crisis goes to a clinician;
    - a safeguarding concern goes to a link worker (who involves the safeguarding lead);
    - a referral marked asap or stat for low mood, anxiety or bereavement goes to a link
      worker: social prescribing is not an urgent mental-health route.
    """
    risk = [n.category for n in referral.needs if n.category in RISK_CATEGORIES]
    if risk:
        route = "clinician" if "mental-health-crisis" in risk else "link-worker"
        labels = ", ".join(NEED_CATEGORIES[c].lower() for c in risk)
        return f"Referral signals {labels}: not for a community group", route
    mood = {n.category for n in referral.needs} & {"low-mood", "anxiety", "bereavement"}
    if referral.priority in ("asap", "stat") and mood:
        return (
            f"Marked {referral.priority} for {', '.join(sorted(mood))}: needs a conversation "
            "with a link worker before any community group",
            "link-worker",
        )
    return None


def wanted_categories(referral: ReferralReceived) -> tuple[set[str], set[str]]:
    wanted = {n.category for n in referral.needs if n.category not in RISK_CATEGORIES}
    by_interest = {INTEREST_CATEGORIES[i] for i in referral.interests if i in INTEREST_CATEGORIES}
    return wanted, by_interest


def reach_km(referral: ReferralReceived) -> tuple[float, bool]:
    """How far the person can travel, and whether only on foot."""
    walking = "transport" in referral.barriers
    if walking:
        reach = SLOW_WALKING_REACH_KM if "mobility" in referral.barriers else WALKING_REACH_KM
    else:
        reach = DEFAULT_REACH_KM
    if referral.location and referral.location.precision_km:
        reach += min(referral.location.precision_km * (0.5 if walking else 1.0), 1.0)
    return reach, walking


def _age_ok(asset: Asset, band: str | None) -> bool:
    if band is None or band not in AGE_BANDS or (asset.min_age is None and asset.max_age is None):
        return True
    low, high = AGE_BANDS[band]
    return (asset.max_age is None or low <= asset.max_age) and (
        asset.min_age is None or high >= asset.min_age
    )


def _schedule_fit(asset: Asset, referral: ReferralReceived) -> float:
    if not referral.availability:
        return 0.6 if asset.sessions or asset.schedule else 0.4
    if not asset.sessions:
        return 0.4
    return 1.0 if _free_session(asset, referral) else 0.0


def _free_session(asset: Asset, referral: ReferralReceived) -> Session | None:
    for session in asset.sessions:
        for slot in referral.availability:
            if slot.day == session.day and (
                slot.period is None or session.period is None or slot.period == session.period
            ):
                return session
    return None


def _schedule_text(asset: Asset, referral: ReferralReceived) -> str | None:
    text = describe_sessions(asset.sessions) or asset.schedule
    if not referral.availability or not asset.sessions:
        return text
    session = _free_session(asset, referral)
    if session is not None:
        return f"{session.describe()}, when the person is free"
    free = ", ".join(
        f"{DAY_NAMES[s.day]}{' ' + s.period + 's' if s.period else ''}"
        for s in referral.availability[:3]
    )
    return f"{text}; the person is free {free}"


def _months_old(asset: Asset, today: date) -> int | None:
    if asset.assured_date is None:
        return None
    return (today.year - asset.assured_date.year) * 12 + today.month - asset.assured_date.month


def _freshness_score(asset: Asset, today: date) -> float:
    if not asset.verified:
        return 0.0
    months = _months_old(asset, today)
    if months is None:
        return 0.4
    return 1.0 if months <= 12 else 0.5 if months <= 24 else 0.1


def _freshness_text(asset: Asset, today: date) -> str | None:
    if not asset.verified:
        return "suggested by the community panel, not yet verified"
    months = _months_old(asset, today)
    if months is None or months <= 12 or asset.assured_date is None:
        return None
    return f"entry last checked {asset.assured_date.strftime('%B %Y')}"


def _room(asset: Asset) -> float:
    live = asset.live
    if live is not None and live.stale:
        return 0.3
    available = asset.live_available
    if available is None:
        return 0.4
    return min(1.0, 0.7 + 0.1 * available) if available > 0 else 0.0


def _load(asset: Asset, recent: int) -> float:
    live = asset.live
    utilisation = 0.0
    if live is not None and live.capacity:
        utilisation = min(1.0, (live.in_use + live.held) / live.capacity)
    return max(utilisation, min(1.0, recent / BUSY_PROPOSALS_PER_WEEK))


def _score(
    asset: Asset,
    referral: ReferralReceived,
    wanted: set[str],
    fit_needs: set[str],
    by_interest: set[str],
    distance: float | None,
    reach: float,
    remote: bool,
    today: date,
    recent_load: Callable[[str], int] | None,
    need_weights: dict[str, float] | None,
) -> float:
    if need_weights:
        total = sum(need_weights.get(c, 1.0) for c in wanted)
        needs = sum(need_weights.get(c, 1.0) for c in fit_needs) / total if total else 0.0
    else:
        needs = len(fit_needs) / len(wanted) if wanted else 0.0
    interest = (
        1.0
        if (by_interest & asset.categories) or (set(referral.interests) & asset.interests)
        else 0.0
    )
    if remote:
        near = 0.7
    elif distance is None:
        near = 0.3
    else:
        near = max(0.0, 1 - distance / reach)
    schedule = _schedule_fit(asset, referral)
    recent = recent_load(asset.provider_org) if recent_load else 0
    return (
        WEIGHTS["needs"] * needs
        + WEIGHTS["interests"] * interest
        + WEIGHTS["distance"] * near
        + WEIGHTS["schedule"] * schedule
        + WEIGHTS["room"] * _room(asset)
        + WEIGHTS["load"] * (1.0 - _load(asset, recent))
        + WEIGHTS["freshness"] * _freshness_score(asset, today)
    )


def explain(
    asset: Asset,
    referral: ReferralReceived,
    wanted: set[str],
    by_interest: set[str],
    distance: float | None,
    remote: bool,
    today: date,
    recent_load: Callable[[str], int] | None,
    person_language: str,
) -> list[str]:
    """The reasons a link worker reads, in the order they would say them."""
    reasons: list[str] = []
    fit_needs = wanted & asset.categories
    if fit_needs:
        reasons.append("helps with " + ", ".join(sorted(fit_needs)))
    interests = (set(referral.interests) & asset.interests) or {
        i
        for i in referral.interests
        if INTEREST_CATEGORIES.get(i) in (by_interest & asset.categories)
    }
    if interests:
        reasons.append("fits interest in " + ", ".join(sorted(interests)))
    if remote:
        how = " or ".join(
            {"phone": "by phone", "online": "online", "home": "at home"}[d]
            for d in sorted(asset.delivery - {"venue"})
        )
        reasons.append(f"{how}, no travel needed")
    elif distance is None:
        reasons.append("distance unknown")
    else:
        how = "walkable" if distance <= WALKING_REACH_KM else "a short bus ride"
        reasons.append(f"{distance:.1f} km, {how}")
    when = _schedule_text(asset, referral)
    if when:
        reasons.append(when)
    live = asset.live
    available = asset.live_available
    if live is not None and live.stale:
        reasons.append("places not confirmed recently")
    elif available is not None and available > 0:
        reasons.append(f"has {available} place{'s' if available != 1 else ''} free")
    elif available == 0:
        waiting = live.waitlist_length if live else 0
        reasons.append("full: would join a waitlist" + (f" of {waiting}" if waiting else ""))
    if asset.who_for:
        reasons.append(asset.who_for if len(asset.who_for) <= 80 else "see who it is for")
    if asset.free:
        reasons.append("free")
    elif asset.free is False and asset.cost:
        reasons.append(asset.cost[:60])
    if person_language != "en" and person_language in asset.languages:
        reasons.append(f"in {LANGUAGE_NAMES.get(person_language, person_language)}")
    for need in sorted(referral.accessibility):
        if need in asset.accessibility:
            reasons.append(ACCESS_NAMES[need])
    recent = recent_load(asset.provider_org) if recent_load else 0
    if recent >= BUSY_PROPOSALS_PER_WEEK // 2:
        reasons.append(f"busy: {recent} referrals proposed this week")
    fresh = _freshness_text(asset, today)
    if fresh:
        reasons.append(fresh)
    return reasons


def decide(
    referral: ReferralReceived,
    assets: Iterable[Asset],
    max_candidates: int = 5,
    today: date | None = None,
    recent_load: Callable[[str], int] | None = None,
    relevant_elsewhere: int = 0,
    need_weights: dict[str, float] | None = None,
) -> Decision:
    """Escalate, or propose up to `max_candidates` assets with reasons, or say why none.

    `relevant_elsewhere` counts assets that fit the needs but lie beyond any reach (the
    directory index leaves them out before scoring). `need_weights` weighs each need by how
    specific it is: a rare need met (carers, dementia) counts for more than a common one
    (loneliness), as a link worker would read the referral."""
    escalate = escalation(referral)
    if escalate:
        return Decision(escalate=escalate)
    wanted, by_interest = wanted_categories(referral)
    if not wanted and not by_interest:
        return Decision(no_match_reason="no needs or interests identified", gap="no-needs")

    today = today or date.today()
    reach, walking = reach_km(referral)
    person_language = (referral.language or "en").split("-")[0].lower()
    needs_language = "language" in referral.barriers and person_language != "en"
    cannot_pay = "cost" in referral.barriers
    access_needs = set(referral.accessibility)
    filtered: dict[str, int] = {}
    relevant = 0
    scored: list[tuple[float, str, Asset, float | None, bool]] = []
    interests = set(referral.interests)
    origin = referral.location
    cos_lat = math.cos(math.radians(origin.lat)) if origin else 1.0

    def drop(reason: str) -> None:
        filtered[reason] = filtered.get(reason, 0) + 1

    # pass 1: filters and a numeric score for every relevant asset (kept cheap)
    for asset in assets:
        categories = asset.categories
        fit_needs = wanted & categories
        if not fit_needs and not (by_interest & categories) and not (interests & asset.interests):
            continue
        relevant += 1
        if referral.requested_performer and asset.provider_org != referral.requested_performer:
            drop("other-provider")
            continue
        if asset.status != "active":
            drop("inactive")
            continue
        if not _age_ok(asset, referral.age_band) or (
            asset.for_needs and not (asset.for_needs & (wanted | by_interest))
        ):
            drop("ineligible")
            continue
        if not asset.accepting_referrals:
            drop("paused")
            continue
        if (
            needs_language
            and person_language not in asset.languages
            and "language" not in asset.for_needs  # a group for people learning English
        ):
            drop("language")
            continue
        if cannot_pay and asset.free is False:
            drop("cost")
            continue
        at_venue = "venue" in asset.delivery
        from_afar = len(asset.delivery) > (1 if at_venue else 0)  # phone, online or at home
        remote = not at_venue
        distance = None
        if origin is not None and asset.lat is not None and asset.lon is not None:
            # a flat-earth bound first: cheap, and within a fraction of a percent of the
            # great-circle distance at these ranges
            dy = (asset.lat - origin.lat) * 111.2
            dx = (asset.lon - origin.lon) * 111.2 * cos_lat
            flat = dy * dy + dx * dx
            if at_venue and flat <= (reach * 1.01) ** 2:
                distance = distance_km(origin.lat, origin.lon, asset.lat, asset.lon)
            if distance is not None and distance <= reach:
                remote = False
            elif from_afar and flat <= (REMOTE_REACH_KM * 1.01) ** 2:
                distance = distance_km(origin.lat, origin.lon, asset.lat, asset.lon)
                if distance > REMOTE_REACH_KM:
                    drop("unreachable")
                    continue
                remote = True
            else:
                drop("unreachable")
                continue
        if access_needs and not remote and not access_needs <= asset.accessibility:
            if not from_afar:
                drop("inaccessible")
                continue
            remote = True  # the venue does not suit; the phone or online option does
        score = _score(
            asset,
            referral,
            wanted,
            fit_needs,
            by_interest,
            distance,
            reach,
            remote,
            today,
            recent_load,
            need_weights,
        )
        scored.append((score, asset.asset_id, asset, distance, remote))

    # pass 2: the best, spread over providers, explained
    scored.sort(key=lambda item: (-item[0], item[1]))
    chosen: list[tuple[Candidate, Asset]] = []
    per_provider: dict[str, int] = {}
    for score, _, asset, distance, remote in scored:
        if per_provider.get(asset.provider_org, 0) >= MAX_PER_PROVIDER:
            continue
        per_provider[asset.provider_org] = per_provider.get(asset.provider_org, 0) + 1
        reasons = explain(
            asset,
            referral,
            wanted,
            by_interest,
            distance,
            remote,
            today,
            recent_load,
            person_language,
        )
        chosen.append(
            (
                Candidate(
                    asset_id=asset.asset_id,
                    asset_name=asset.name,
                    provider_org=asset.provider_org,
                    score=round(score, 4),
                    reasons=reasons,
                    distance_km=round(distance, 2) if distance is not None else None,
                ),
                asset,
            )
        )
        if len(chosen) == max_candidates:
            break
    if chosen:
        all_full = all(a.live_available == 0 for _, a in chosen)
        return Decision(
            candidates=[c for c, _ in chosen],
            gap="all-full" if all_full else None,
            filtered=filtered,
        )
    if relevant == 0 and relevant_elsewhere == 0:
        return Decision(
            no_match_reason="no asset in the directory meets these needs", gap="none-relevant"
        )
    if relevant_elsewhere:
        filtered["unreachable"] = filtered.get("unreachable", 0) + relevant_elsewhere
    main = max(filtered, key=lambda k: (filtered[k], k == "unreachable"))
    gap = GAP_FOR_FILTER[main]
    details = []
    for key, count in sorted(filtered.items(), key=lambda kv: -kv[1]):
        if key == "unreachable":
            details.append(
                f"{count} over {reach:.1f} km away" + (" with no transport" if walking else "")
            )
        else:
            details.append(f"{count} {key.replace('-', ' ')}")
    reason = f"{GAP_TEXT.get(gap, gap)}: " + "; ".join(details)
    return Decision(no_match_reason=reason, gap=gap, filtered=filtered)
