"""Capacity rules over one asset's level: who holds a place, who is in one, who waits.

Holds plus places in use never exceed the asset's maximum: every change to a level is decided
here on the whole asset document and written with a version check, so concurrent instances and
redeliveries cannot overbook.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from linkwell_schemas.events import WaitlistBand

HoldOutcome = Literal[
    "held", "already-held", "at-capacity", "paused", "unknown-asset", "stale-data"
]


DAY = 86400.0
HISTORY_DAYS = 90  # how far back freed places count towards a waitlist's expected wait


def new_asset(name: str, provider_org: str, capacity: int | None) -> dict[str, Any]:
    return {
        "name": name,
        "provider_org": provider_org,
        "capacity": capacity,
        "capacity_source": "directory",
        "funded": None,
        "unit": "places",
        "accepting_referrals": True,
        "paused_reason": None,
        "resume_on": None,
        "stale": False,
        "confirmed_at": None,
        "holds": {},
        "in_use": {},
        "waitlist": [],
        "freed_at": [],
    }


def accepting(asset: dict[str, Any], today: str | None = None) -> bool:
    """Open to referrals: not paused, or paused with a resume date that has come."""
    if asset.get("accepting_referrals", True):
        return True
    resume_on = asset.get("resume_on")
    today = today or time.strftime("%Y-%m-%d", time.gmtime())
    return bool(resume_on) and str(resume_on) <= today


def occupied(asset: dict[str, Any]) -> int:
    return len(asset.get("holds", {})) + len(asset.get("in_use", {}))


def free_places(asset: dict[str, Any]) -> int | None:
    if asset.get("capacity") is None:
        return None
    return max(0, int(asset["capacity"]) - occupied(asset))


def hold_outcome(asset: dict[str, Any] | None, referral_id: str) -> HoldOutcome:
    """What holding a place for this referral would do, without doing it."""
    if asset is None:
        return "unknown-asset"
    if referral_id in asset.get("holds", {}) or referral_id in asset.get("in_use", {}):
        return "already-held"
    if not accepting(asset):
        return "paused"
    if asset.get("capacity") is None or asset.get("stale"):
        return "stale-data"
    if occupied(asset) >= int(asset["capacity"]):
        return "at-capacity"
    return "held"


def hold(asset: dict[str, Any], referral_id: str, expires_at: str) -> None:
    assert hold_outcome(asset, referral_id) == "held"
    asset.setdefault("holds", {})[referral_id] = {"expires_at": expires_at}
    if referral_id in asset.get("waitlist", []):
        asset["waitlist"].remove(referral_id)
        asset.get("waitlist_priority", {}).pop(referral_id, None)


def join_waitlist(asset: dict[str, Any], referral_id: str, priority: str = "routine") -> int:
    """Position (1-based) of the referral on the asset's waitlist, counting those who will be
    offered a place before it (higher priority first); joining twice is a no-op."""
    waitlist = asset.setdefault("waitlist", [])
    priorities = asset.setdefault("waitlist_priority", {})
    if referral_id not in waitlist:
        waitlist.append(referral_id)
        priorities[referral_id] = priority
    rank = PRIORITY_ORDER.get(priorities.get(referral_id, "routine"), 2)
    ahead = [
        r
        for r in waitlist
        if PRIORITY_ORDER.get(priorities.get(r, "routine"), 2) < rank
        or (
            PRIORITY_ORDER.get(priorities.get(r, "routine"), 2) == rank
            and waitlist.index(r) < waitlist.index(referral_id)
        )
    ]
    return len(ahead) + 1


def note_freed(asset: dict[str, Any], now: float) -> None:
    """Remember when a place came free (the last 50): the waitlist's expected wait comes
    from this."""
    asset["freed_at"] = [*asset.get("freed_at", []), now][-50:]


def freed_per_month(asset: dict[str, Any], now: float) -> float | None:
    recent = [t for t in asset.get("freed_at", []) if t >= now - HISTORY_DAYS * DAY]
    if not recent:
        return None
    # over the history window, or since the first freed place when the history is younger
    span_days = max(30.0, min(HISTORY_DAYS, (now - min(recent)) / DAY))
    return len(recent) / (span_days / 30.0)


def waitlist_band(asset: dict[str, Any], position: int, now: float | None = None) -> WaitlistBand:
    """Expected wait, from how fast places have freed up at this asset over the last 90 days.
    Without history: unknown."""
    rate = freed_per_month(asset, now if now is not None else time.time())
    if not rate:
        return WaitlistBand.unknown
    freed_per_month_value = rate
    months = position / float(freed_per_month_value)
    if months < 1:
        return WaitlistBand.under_1_month
    if months <= 3:
        return WaitlistBand.one_to_3_months
    return WaitlistBand.over_3_months


PRIORITY_ORDER = {"asap": 0, "urgent": 1, "routine": 2}


def take_up(asset: dict[str, Any], referral_id: str) -> bool:
    """The provider accepted: the held place becomes a place in use. Also when the hold had
    lapsed but there is still room (the provider's word wins when nobody is displaced).
    False when there is nothing to change."""
    if referral_id in asset.get("in_use", {}):
        return False
    holds = asset.setdefault("holds", {})
    if referral_id in holds:
        del holds[referral_id]
    elif asset.get("capacity") is not None and occupied(asset) >= int(asset["capacity"]):
        return False
    asset.setdefault("in_use", {})[referral_id] = {}
    return True


def release(asset: dict[str, Any], referral_id: str) -> str | None:
    """Free whatever the referral has at this asset: 'hold', 'in_use', 'waitlist', or None."""
    for bucket, name in (("holds", "hold"), ("in_use", "in_use")):
        if referral_id in asset.get(bucket, {}):
            del asset[bucket][referral_id]
            return name
    if referral_id in asset.get("waitlist", []):
        asset["waitlist"].remove(referral_id)
        asset.get("waitlist_priority", {}).pop(referral_id, None)
        return "waitlist"
    return None


def next_from_waitlist(asset: dict[str, Any]) -> str | None:
    """Who is offered a place that has come free: the highest priority, then whoever has
    waited longest. None when nobody waits, or there is no free place to offer."""
    waitlist = asset.get("waitlist", [])
    if not waitlist or not accepting(asset) or asset.get("stale"):
        return None
    free = free_places(asset)
    if free is None or free <= 0:
        return None
    priorities = asset.get("waitlist_priority", {})
    return min(
        waitlist,
        key=lambda r: (PRIORITY_ORDER.get(priorities.get(r, "routine"), 2), waitlist.index(r)),
    )
