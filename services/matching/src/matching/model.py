"""The directory's asset record: one service at one location, as the network stores it.

Open Referral UK feeds (both shapes), the demo directory and the partner API all become an
`AssetRecord`; matching reads it as a frozen `Asset` with the live capacity beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from linkwell import geo
from linkwell_schemas.needs import NEED_CATEGORIES, RISK_CATEGORIES

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DAY_NAMES = dict(
    zip(
        DAYS,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)
ACCESSIBILITY = ("step-free", "wheelchair", "hearing-loop", "accessible-toilet", "large-print")
DELIVERY = ("venue", "phone", "online", "home")
ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th", -1: "last"}
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Session(BaseModel):
    """One regular meeting: a weekday, optionally its hours, weeks of the month, or interval
    (an iCalendar RRULE's BYDAY / FREQ / INTERVAL, as HSDS schedules carry them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
    opens: str | None = None
    closes: str | None = None
    weeks: tuple[int, ...] = Field(default=(), description="monthly: 1-5 or -1 (last)")
    interval: int = Field(default=1, ge=1, le=52, description="weekly: every N weeks")

    @field_validator("opens", "closes")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value[:5]
        if not _TIME.match(value):
            raise ValueError("time must be HH:MM")
        return value

    @field_validator("weeks")
    @classmethod
    def _weeks(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(w not in ORDINALS for w in value):
            raise ValueError("weeks of the month are 1-5 or -1 (last)")
        return value

    @property
    def period(self) -> str | None:
        if not self.opens:
            return None
        hour = int(self.opens[:2])
        return "morning" if hour < 12 else "afternoon" if hour < 17 else "evening"

    def describe(self) -> str:
        day = DAY_NAMES[self.day]
        if self.weeks:
            when = " and ".join(ORDINALS[w] for w in self.weeks) + f" {day} of the month"
        elif self.interval == 2:
            when = f"every other {day}"
        elif self.interval > 2:
            when = f"every {self.interval} weeks on {day}"
        else:
            when = f"{day}s" if not self.period else f"{day} {self.period}s"
        if self.opens and self.closes:
            return f"{when}, {self.opens}-{self.closes}"
        if self.opens:
            return f"{when}, {self.opens}"
        return when


def describe_sessions(sessions: tuple[Session, ...] | list[Session]) -> str | None:
    if not sessions:
        return None
    return "; ".join(s.describe() for s in sessions[:3]) + ("; ..." if len(sessions) > 3 else "")


class AssetRecord(BaseModel):
    """A directory entry as stored: what a feed, the demo file or a provider says."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=300)
    provider_org: str = Field(min_length=1, max_length=200, description="network partner id")
    provider_name: str = Field(min_length=1, max_length=300)
    categories: list[str] = Field(default_factory=list)
    description: str | None = Field(default=None, max_length=5000)
    interests: list[str] = Field(default_factory=list, description="activities, lower case")
    postcode: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    min_age: int | None = Field(default=None, ge=0, le=130)
    max_age: int | None = Field(default=None, ge=0, le=130)
    for_needs: list[str] = Field(
        default_factory=list, description="only for people with one of these needs (eligibility)"
    )
    who_for: str | None = Field(default=None, max_length=300, description="e.g. 'new to the area'")
    languages: list[str] = Field(default_factory=list, description="ISO 639-1; empty: English")
    accessibility: list[str] = Field(default_factory=list)
    free: bool | None = None
    cost: str | None = Field(default=None, max_length=300)
    sessions: list[Session] = Field(default_factory=list)
    schedule: str | None = Field(default=None, max_length=300, description="as published")
    delivery: list[str] = Field(default_factory=lambda: ["venue"])
    capacity: int | None = Field(default=None, ge=0, le=100_000)
    assured_date: date | None = None
    verified: bool = True
    status: Literal["active", "inactive", "defunct", "temporarily closed"] = "active"
    source: str | None = None

    @field_validator("categories", "for_needs")
    @classmethod
    def _known_categories(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in NEED_CATEGORIES or c in RISK_CATEGORIES]
        if unknown:
            raise ValueError(f"not community need categories: {', '.join(unknown)}")
        return sorted(set(value))

    @field_validator("interests")
    @classmethod
    def _interests(cls, value: list[str]) -> list[str]:
        return sorted({v.strip().lower() for v in value if v.strip()})

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        codes = sorted({v.strip().lower() for v in value})
        bad = [c for c in codes if not re.fullmatch(r"[a-z]{2,3}", c)]
        if bad:
            raise ValueError("languages are ISO 639 codes such as 'en', 'pl', 'ur'")
        return codes

    @field_validator("accessibility")
    @classmethod
    def _accessibility(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v not in ACCESSIBILITY]
        if bad:
            raise ValueError(f"accessibility is one of {', '.join(ACCESSIBILITY)}")
        return sorted(set(value))

    @field_validator("delivery")
    @classmethod
    def _delivery(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v not in DELIVERY]
        if bad or not value:
            raise ValueError(f"delivery is one or more of {', '.join(DELIVERY)}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _consistent(self) -> AssetRecord:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError("min_age is above max_age")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self

    def to_doc(self) -> dict[str, Any]:
        """The stored fields; a postcode is located through the shipped geography."""
        data = self.model_dump(mode="json", exclude={"id"})
        if data["lat"] is None and self.postcode:
            place = geo.locate(self.postcode)
            if place:
                data["lat"], data["lon"] = place.lat, place.lon
        data["declared_capacity"] = data.pop("capacity")
        if not data["schedule"]:
            data["schedule"] = describe_sessions(self.sessions)
        return data


STORED_FIELDS = tuple(
    "declared_capacity" if name == "capacity" else name
    for name in AssetRecord.model_fields
    if name != "id"
)


@dataclass(frozen=True, slots=True)
class Live:
    """An asset's level from capacity.capacity-changed.v1."""

    capacity: int | None = None
    in_use: int = 0
    held: int = 0
    waitlist_length: int = 0
    accepting_referrals: bool = True
    paused_reason: str | None = None
    resume_on: str | None = None
    stale: bool = False
    at: str = ""

    @property
    def available(self) -> int | None:
        if self.capacity is None or self.stale:
            return None
        return max(0, self.capacity - self.in_use - self.held)

    @staticmethod
    def from_doc(doc: dict[str, Any] | None) -> Live | None:
        if not doc:
            return None
        return Live(
            capacity=doc.get("capacity"),
            in_use=int(doc.get("in_use") or 0),
            held=int(doc.get("held") or 0),
            waitlist_length=int(doc.get("waitlist_length") or 0),
            accepting_referrals=bool(doc.get("accepting_referrals", True)),
            paused_reason=doc.get("paused_reason"),
            resume_on=doc.get("resume_on"),
            stale=bool(doc.get("stale", False)),
            at=str(doc.get("at") or ""),
        )


@dataclass(frozen=True, slots=True)
class Asset:
    """What matching reads: the directory entry and, when capacity has spoken, its level."""

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
    live_available: int | None = None
    min_age: int | None = None
    max_age: int | None = None
    for_needs: frozenset[str] = frozenset()
    who_for: str | None = None
    languages: frozenset[str] = frozenset()
    accessibility: frozenset[str] = frozenset()
    free: bool | None = None
    cost: str | None = None
    sessions: tuple[Session, ...] = ()
    delivery: frozenset[str] = frozenset({"venue"})
    assured_date: date | None = None
    verified: bool = True
    status: str = "active"
    live: Live | None = field(default=None, compare=False)

    @staticmethod
    def from_doc(doc: dict[str, Any]) -> Asset:
        live = Live.from_doc(doc.get("live"))
        assured = doc.get("assured_date")
        return Asset(
            asset_id=doc["_id"],
            name=doc["name"],
            provider_org=doc["provider_org"],
            categories=frozenset(doc.get("categories") or ()),
            lat=doc.get("lat"),
            lon=doc.get("lon"),
            declared_capacity=doc.get("declared_capacity"),
            accepting_referrals=live.accepting_referrals if live else True,
            schedule=doc.get("schedule"),
            interests=frozenset(doc.get("interests") or ()),
            live_available=live.available if live else None,
            min_age=doc.get("min_age"),
            max_age=doc.get("max_age"),
            for_needs=frozenset(doc.get("for_needs") or ()),
            who_for=doc.get("who_for"),
            languages=frozenset(doc.get("languages") or ()),
            accessibility=frozenset(doc.get("accessibility") or ()),
            free=doc.get("free"),
            cost=doc.get("cost"),
            sessions=tuple(Session.model_validate(s) for s in doc.get("sessions") or ()),
            delivery=frozenset(doc.get("delivery") or ("venue",)),
            assured_date=date.fromisoformat(str(assured)[:10]) if assured else None,
            verified=bool(doc.get("verified", True)),
            status=doc.get("status") or "active",
            live=live,
        )
