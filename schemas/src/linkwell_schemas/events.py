"""Event contracts of the Linkwell network: one pydantic model per topic.

Within a major version changes are additive only; a breaking change is a new `.vN` topic.
Events carry the minimum necessary data: no names, NHS numbers or contact details.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Envelope fields every event carries."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    topic: ClassVar[str] = ""

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=_now)
    producer: str
    tenant: str
    correlation_id: str = Field(description="The referral journey this event belongs to")
    causation_id: str | None = Field(default=None, description="event_id of the cause")

    def key(self) -> str:
        """The subject the event is about: keeps one subject's events in order."""
        return str(getattr(self, "referral_id", None) or getattr(self, "asset_id", ""))


class SourceKind(StrEnum):
    gp = "gp"
    vcse = "vcse"
    link_worker = "link-worker"
    self_referral = "self"


class Priority(StrEnum):
    routine = "routine"
    urgent = "urgent"
    asap = "asap"
    stat = "stat"


class Need(BaseModel):
    category: str = Field(description="Network need category, e.g. loneliness, food, money")
    code: str | None = Field(default=None, description="SNOMED CT code when one was given")
    system: str | None = None
    display: str | None = None


class Location(BaseModel):
    postcode_sector: str | None = Field(default=None, description="e.g. 'LS6 1'")
    lat: float
    lon: float
    precision_km: float | None = Field(default=None, description="typical spread of the area")


class Consent(BaseModel):
    contact_person: bool = Field(
        default=False, description="The person agreed to be contacted about this referral"
    )
    do_not_contact: bool = False
    preferred_channel: Literal["sms", "email", "phone", "letter", "none"] | None = None


Day = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


class Availability(BaseModel):
    """When the person can usually take part (from ServiceRequest.occurrenceTiming)."""

    day: Day
    period: Literal["morning", "afternoon", "evening"] | None = Field(
        default=None, description="None: any time that day"
    )


class Organisation(BaseModel):
    org_id: str = Field(description="Network partner id of the organisation")
    kind: SourceKind | Literal["asset-provider"] | None = None


class ReferralReceived(Event):
    topic: ClassVar[str] = "intake.referral-received.v1"

    referral_id: str
    source: Organisation
    requested_performer: str | None = None
    priority: Priority = Priority.routine
    needs: list[Need] = Field(default_factory=list)
    interests: list[str] = Field(default_factory=list)
    goals: list[str] = Field(default_factory=list)
    barriers: list[str] = Field(default_factory=list)
    location: Location | None = None
    age_band: str | None = None
    language: str | None = None
    accessibility: list[str] = Field(
        default_factory=list,
        description="access needs: step-free, wheelchair, hearing-loop, accessible-toilet, "
        "large-print",
    )
    availability: list[Availability] = Field(default_factory=list)
    consent: Consent = Field(default_factory=Consent)
    fhir_reference: str = Field(description="ServiceRequest/<id> at the intake FHIR base")


class ReferralStatus(StrEnum):
    accepted = "accepted"
    declined = "declined"
    attended = "attended"
    completed = "completed"
    cancelled = "cancelled"
    revoked = "revoked"


class ReferralUpdated(Event):
    topic: ClassVar[str] = "intake.referral-updated.v1"

    referral_id: str
    status: ReferralStatus
    reason: str | None = None
    outcome: str | None = None
    by: str | None = Field(default=None, description="partner id that made the change")


class Candidate(BaseModel):
    asset_id: str
    asset_name: str
    provider_org: str
    score: float
    reasons: list[str]
    distance_km: float | None = None


class MatchProposed(Event):
    topic: ClassVar[str] = "matching.match-proposed.v1"

    referral_id: str
    candidates: list[Candidate]
    no_match_reason: str | None = Field(
        default=None, description="Why nothing was proposed: none eligible, none reachable ..."
    )
    gap: (
        Literal[
            "no-needs",
            "none-relevant",
            "requested-provider-unsuitable",
            "none-eligible",
            "all-paused",
            "none-in-language",
            "none-accessible",
            "none-affordable",
            "none-reachable",
            "all-full",
        ]
        | None
    ) = Field(
        default=None,
        description="Why the person cannot be placed now, for counting unmet need: the main "
        "reason nothing was proposed, or all-full when every candidate is full",
    )
    filtered: dict[str, int] = Field(
        default_factory=dict,
        description="relevant assets left out, by hard filter (ineligible, paused, language, "
        "inaccessible, cost, unreachable, other-provider, inactive)",
    )


class ReferralEscalated(Event):
    topic: ClassVar[str] = "matching.referral-escalated.v1"

    referral_id: str
    reason: str
    route_to: Literal["link-worker", "clinician"]


class PlaceReserved(Event):
    topic: ClassVar[str] = "capacity.place-reserved.v1"

    referral_id: str
    asset_id: str
    asset_name: str | None = None
    provider_org: str | None = None
    hold_expires_at: datetime


class Refusal(BaseModel):
    asset_id: str
    reason: Literal["at-capacity", "paused", "stale-data", "unknown-asset", "declined", "expired"]


class PlaceRefused(Event):
    topic: ClassVar[str] = "capacity.place-refused.v1"

    referral_id: str
    refusals: list[Refusal]
    waitlisted_at: str | None = Field(
        default=None,
        description="the asset where the person is being waitlisted (capacity.waitlisted.v1 "
        "follows with position and band); None when there is nowhere to wait",
    )


class WaitlistBand(StrEnum):
    under_1_month = "<1 month"
    one_to_3_months = "1-3 months"
    over_3_months = ">3 months"
    unknown = "unknown"


class Waitlisted(Event):
    topic: ClassVar[str] = "capacity.waitlisted.v1"

    referral_id: str
    asset_id: str
    position: int
    band: WaitlistBand = WaitlistBand.unknown


class PlaceReleased(Event):
    topic: ClassVar[str] = "capacity.place-released.v1"

    referral_id: str
    asset_id: str
    reason: Literal["declined", "expired", "cancelled", "completed"]


class CapacityChanged(Event):
    topic: ClassVar[str] = "capacity.capacity-changed.v1"

    asset_id: str
    capacity: int | None = Field(description="maximum places; None when unknown or stale")
    in_use: int
    held: int
    waitlist_length: int
    accepting_referrals: bool
    funded: int | None = Field(default=None, description="places paid for by a commissioner")
    unit: Literal["places", "sessions", "hours"] = "places"
    paused_reason: str | None = None
    resume_on: date | None = None
    stale: bool = Field(
        default=False, description="the provider has not confirmed capacity for too long"
    )
    confirmed_at: datetime | None = Field(
        default=None, description="when capacity was last declared or confirmed"
    )


class CapacityStale(Event):
    """A provider's capacity has not been confirmed for too long: matching treats it as
    unknown, and the provider is asked to confirm it (a request for notifications)."""

    topic: ClassVar[str] = "capacity.capacity-stale.v1"

    asset_id: str
    provider_org: str
    asset_name: str | None = None
    confirmed_at: datetime | None = None


class AssetChanged(Event):
    topic: ClassVar[str] = "directory.asset-changed.v1"

    asset_id: str
    provider_org: str
    asset_name: str
    declared_capacity: int | None = None
    accepting_referrals: bool = True
    verified: bool = True


class DeliveryRecorded(Event):
    topic: ClassVar[str] = "notifications.delivery-recorded.v1"

    referral_id: str
    recipient: str = Field(description="partner id, or 'person' for the person referred")
    role: Literal["referrer", "provider", "link-worker", "person"]
    channel: Literal["webhook", "fhir-rest-hook", "email", "sms"]
    about_event_id: str
    about_topic: str
    outcome: Literal["delivered", "retrying", "failed"] = Field(
        description="retrying: this attempt failed and another is scheduled; failed: no more "
        "attempts (the delivery is in the dead-letter store, replayable)"
    )
    attempts: int
    next_attempt_at: datetime | None = None
    detail: str | None = Field(default=None, description="status code or error class; no PII")


class Reminder(Event):
    """Something has waited too long: the provider has not answered a held place, a hold is
    about to lapse, or a referral has stalled. Delivered like any other notice."""

    topic: ClassVar[str] = "notifications.reminder.v1"

    referral_id: str
    kind: Literal["provider-unanswered", "hold-expiring", "referral-stalled"]
    asset_id: str | None = None
    asset_name: str | None = None
    provider_org: str | None = None
    due_at: datetime | None = Field(default=None, description="when the hold lapses")


class DeadLettered(Event):
    """A message a consumer can never process, kept with its origin so it can be replayed."""

    topic: ClassVar[str] = "{service}.dead-lettered.v1"

    origin_topic: str
    origin_partition: int | None = None
    origin_offset: int | None = None
    origin_key: str | None = None
    consumer_group: str
    error_type: str
    error: str = Field(description="What is wrong, with element paths; never the values")
    payload: str = Field(description="The message body exactly as received")


EVENT_TYPES: tuple[type[Event], ...] = (
    ReferralReceived,
    ReferralUpdated,
    MatchProposed,
    ReferralEscalated,
    PlaceReserved,
    PlaceRefused,
    Waitlisted,
    PlaceReleased,
    CapacityChanged,
    CapacityStale,
    AssetChanged,
    DeliveryRecorded,
    Reminder,
)

TOPICS: dict[str, type[Event]] = {cls.topic: cls for cls in EVENT_TYPES}

COMPACTED_TOPICS: frozenset[str] = frozenset({CapacityChanged.topic, AssetChanged.topic})


def dead_letter_topic(service: str) -> str:
    return f"{service}.dead-lettered.v1"
