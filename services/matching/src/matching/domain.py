"""Matching rules: escalate risk, filter what the person cannot use or reach, score the rest,
and say why. Pure functions; no I/O.

Reach: a person who has no transport (a `transport` barrier) is offered only what is within a
20-minute walk, taken as 1.6 km of straight-line distance from their postcode sector centroid
(walking ~4.8 km/h; the sector's own spread is added so people at its edge are not excluded).
Everyone else: 8 km, roughly a 30-minute bus ride in a town.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from linkwell.geo import distance_km
from linkwell_schemas.events import Candidate, ReferralReceived
from linkwell_schemas.needs import NEED_CATEGORIES, RISK_CATEGORIES

WALKING_REACH_KM = 1.6
DEFAULT_REACH_KM = 8.0

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


@dataclass(frozen=True)
class Asset:
    asset_id: str
    name: str
    provider_org: str
    categories: frozenset[str]
    lat: float | None
    lon: float | None
    declared_capacity: int | None = None
    accepting_referrals: bool = True
    schedule: str | None = None
    interests: frozenset[str] = frozenset()
    live_available: int | None = None  # places free, from capacity.capacity-changed.v1

    @staticmethod
    def from_doc(doc: dict[str, Any]) -> Asset:
        live = doc.get("live") or {}
        available = None
        if live.get("capacity") is not None:
            available = (
                int(live["capacity"]) - int(live.get("in_use", 0)) - int(live.get("held", 0))
            )
        return Asset(
            asset_id=doc["_id"],
            name=doc["name"],
            provider_org=doc["provider_org"],
            categories=frozenset(doc.get("categories", [])),
            lat=doc.get("lat"),
            lon=doc.get("lon"),
            declared_capacity=doc.get("declared_capacity"),
            accepting_referrals=live.get(
                "accepting_referrals", doc.get("accepting_referrals", True)
            ),
            schedule=doc.get("schedule"),
            interests=frozenset(doc.get("interests", [])),
            live_available=available,
        )


@dataclass
class Decision:
    escalate: tuple[str, str] | None = None  # (reason, route_to)
    candidates: list[Candidate] = field(default_factory=list)
    no_match_reason: str | None = None


def decide(referral: ReferralReceived, assets: list[Asset], max_candidates: int = 5) -> Decision:
    risk = [n.category for n in referral.needs if n.category in RISK_CATEGORIES]
    if risk:
        route = "clinician" if "mental-health-crisis" in risk else "link-worker"
        labels = ", ".join(NEED_CATEGORIES[c].lower() for c in risk)
        return Decision(escalate=(f"Referral signals {labels}: not for a community group", route))

    wanted = {n.category for n in referral.needs}
    interest_categories = {
        INTEREST_CATEGORIES[i] for i in referral.interests if i in INTEREST_CATEGORIES
    }
    if not wanted and not interest_categories:
        return Decision(no_match_reason="no needs or interests identified in the referral")

    walking_only = "transport" in referral.barriers
    reach = WALKING_REACH_KM if walking_only else DEFAULT_REACH_KM
    if referral.location and referral.location.precision_km:
        reach += min(referral.location.precision_km, 1.0) * (0.5 if walking_only else 1.0)

    scored: list[tuple[float, Candidate]] = []
    relevant = unreachable = paused = 0
    for asset in assets:
        fit_needs = wanted & asset.categories
        fit_interests = (interest_categories & asset.categories) | (
            set(referral.interests) & asset.interests
        )
        if not fit_needs and not fit_interests:
            continue
        relevant += 1
        if not asset.accepting_referrals:
            paused += 1
            continue
        reasons: list[str] = []
        distance = None
        if referral.location and asset.lat is not None and asset.lon is not None:
            distance = distance_km(
                referral.location.lat, referral.location.lon, asset.lat, asset.lon
            )
            if distance > reach:
                unreachable += 1
                continue
        need_score = len(fit_needs) / len(wanted) if wanted else 0.0
        interest_score = 1.0 if fit_interests else 0.0
        if fit_needs:
            reasons.append("helps with " + ", ".join(sorted(fit_needs)))
        if fit_interests:
            reasons.append(
                "fits interest in "
                + ", ".join(
                    sorted(
                        (set(referral.interests) & asset.interests)
                        or {
                            i
                            for i in referral.interests
                            if INTEREST_CATEGORIES.get(i) in fit_interests
                        }
                    )
                )
            )
        if distance is None:
            distance_score = 0.5
            reasons.append("distance unknown (no postcode given)")
        else:
            distance_score = max(0.0, 1 - distance / reach)
            how = "walkable" if distance <= WALKING_REACH_KM else "a short bus ride"
            reasons.append(f"{distance:.1f} km, {how}")
        if asset.schedule:
            reasons.append(asset.schedule)
        room_score = 0.5
        if asset.live_available is not None:
            if asset.live_available > 0:
                room_score = 1.0
                reasons.append(
                    f"has {asset.live_available} place"
                    f"{'s' if asset.live_available != 1 else ''} free"
                )
            else:
                room_score = 0.0
                reasons.append("currently full (waitlist)")
        score = 0.5 * need_score + 0.15 * interest_score + 0.25 * distance_score + 0.1 * room_score
        scored.append(
            (
                score,
                Candidate(
                    asset_id=asset.asset_id,
                    asset_name=asset.name,
                    provider_org=asset.provider_org,
                    score=round(score, 4),
                    reasons=reasons,
                    distance_km=round(distance, 2) if distance is not None else None,
                ),
            )
        )

    scored.sort(key=lambda pair: (-pair[0], pair[1].asset_id))
    candidates = [c for _, c in scored[:max_candidates]]
    if candidates:
        return Decision(candidates=candidates)
    if relevant == 0:
        reason = "no asset in the directory meets these needs"
    elif unreachable and unreachable + paused == relevant:
        reason = f"none reachable: relevant assets are all over {reach:.1f} km away" + (
            " and the person has no transport" if walking_only else ""
        )
    else:
        reason = "all relevant assets are paused or not accepting referrals"
    return Decision(no_match_reason=reason)
