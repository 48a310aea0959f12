"""Referral intake rules: what a referral says (normalisation) and what its Task shows (the
closed loop). Pure functions over plain data; no I/O.
"""

from __future__ import annotations

import csv
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from linkwell import geo
from linkwell_schemas.events import (
    Availability,
    Consent,
    DeliveryRecorded,
    Event,
    Location,
    MatchProposed,
    Need,
    PlaceRefused,
    PlaceReleased,
    PlaceReserved,
    ReferralEscalated,
    ReferralStatus,
    ReferralUpdated,
    Waitlisted,
)

SNOMED = "http://snomed.info/sct"
SOCIAL_PRESCRIBING_REFERRAL = "871731000000106"
SOCIAL_PRESCRIBING_DECLINED = "871711000000103"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
REFERRAL_NAMESPACE = uuid.UUID("6f1d2c1e-4b55-4f0e-9b7e-2f6c4f1f0a11")


class ReferralRejected(ValueError):
    """The request is well-formed FHIR but not an acceptable referral."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in problems))
        self.problems = problems


# ---------------------------------------------------------------- needs, interests, barriers

# Codes of the social prescribing code list shipped in data/ (need_social, signposting, ...)
_LIST_CATEGORY_BY_CODE = {
    "267076002": "loneliness",  # Feeling lonely
    "105529008": "loneliness",  # Lives alone
    "160726006": "loneliness",  # Lives alone no help available
    "161152002": "social-care",  # Social problem
    "81877007": "housing",  # Housing problems
    "417430008": "safeguarding",  # Vulnerable adult
    "390893007": "physical-activity",  # Referral to physical activity program
    "771491000000104": "weight",
    "837111000000105": "weight",
    "1057351000000106": "low-mood",  # Signposting to depression self-help group
    "1053831000000101": "anxiety",  # Signposting to Anxiety UK
    "1053781000000106": "low-mood",  # Signposting to Bipolar UK
    "1084431000000106": "social-care",
    "306238000": "social-care",
}

# Common clinical findings GP systems send as reasons (SNOMED CT International)
_CLINICAL_CATEGORY_BY_CODE = {
    "52448006": "dementia",  # Dementia
    "26929004": "dementia",  # Alzheimer's disease
    "13645005": "long-term-condition",  # Chronic obstructive lung disease
    "44054006": "long-term-condition",  # Diabetes mellitus type 2
    "35489007": "low-mood",  # Depressive disorder
    "197480006": "anxiety",  # Anxiety disorder
    "6471006": "mental-health-crisis",  # Suicidal thoughts
    "467771000124109": "food",  # Assistance with application for food pantry program
}

# Gravity SDOH domain codes used as ServiceRequest.category
_SDOH_CATEGORY = {
    # SNOMED CT social-determinant findings used by the Gravity SDOH value sets
    "733423003": "food",  # Food insecurity (finding)
    "32911000": "housing",  # Homeless (finding)
    "73438004": "employment",  # Unemployed (finding)
    "422650009": "loneliness",  # Social isolation (finding)
    # Gravity SDOH temporary category codes
    "food-insecurity": "food",
    "housing-instability": "housing",
    "homelessness": "housing",
    "financial-insecurity": "money",
    "social-connection": "loneliness",
    "digital-literacy": "digital",
    "employment-status": "employment",
    "inadequate-housing": "housing",
}

_NEED_WORDS: list[tuple[str, str]] = [
    (
        r"suicid|self[- ]harm|kill (him|her|my|them)sel|end (my|his|her) life|psychosis|"
        r"mental health crisis|in crisis",
        "mental-health-crisis",
    ),
    (r"safeguard|abuse|neglect|domestic violence|coercive", "safeguarding"),
    (r"lonel|isolat|lives alone|no one to talk", "loneliness"),
    (r"bereave|widow|grief|griev|since (his|her|their) (wife|husband|partner) died", "bereavement"),
    (r"low mood|depress|feeling down|\b(feeling|and|very|so) low\b", "low-mood"),
    (r"anxi|stress|panic", "anxiety"),
    (r"inactiv|more active|exercise|walking group|physical activity", "physical-activity"),
    (r"weight", "weight"),
    (
        r"copd|diabetes|arthritis|chronic pain|long[- ]term condition|heart failure|lung",
        "long-term-condition",
    ),
    (r"debt|money|benefit|bills|financ", "money"),
    (r"food|hungry|food ?bank|pantry", "food"),
    (r"housing|homeless|evict|damp", "housing"),
    (r"\bcarer\b|caring for|respite", "carer"),
    (r"dementia|memory", "dementia"),
    (r"digital|online|computer|internet|smartphone", "digital"),
    (r"little english|esol|new arrival|refugee|asylum|learn english", "language"),
    (r"\bjob\b|employment|unemploy|volunteer", "employment"),
    (r"\bart\b|\barts\b|music|sing|choir|craft|paint|knit", "creativity"),
    (r"garden|nature|outdoor|allotment", "nature"),
]

_INTEREST_WORDS: list[tuple[str, str]] = [
    (r"sing|choir", "singing"),
    (r"garden|allotment", "gardening"),
    (r"walk", "walking"),
    (r"paint|draw|\bart\b", "art"),
    (r"music", "music"),
    (r"knit|craft|sew", "crafts"),
    (r"cook|baking", "cooking"),
    (r"read|book", "reading"),
    (r"football|sport|bowls", "sport"),
    (r"\bdiy\b|woodwork|tools|men'?s shed", "making and mending"),
]

_BARRIER_WORDS: list[tuple[str, str]] = [
    (
        r"no car|does(n't| not) drive|no transport|can't get (out|about)|cannot get (out|about)",
        "transport",
    ),
    (r"wheelchair|mobility|walking frame|can'?t walk far|housebound", "mobility"),
    (r"little english|interpreter|limited english|speaks little", "language"),
    (r"can'?t afford|cost|no money", "cost"),
    (r"confidence|nervous|shy|anxious about groups", "confidence"),
]


def _scan(text: str, rules: list[tuple[str, str]]) -> list[str]:
    found: list[str] = []
    lowered = text.lower()
    for pattern, label in rules:
        if re.search(pattern, lowered) and label not in found:
            found.append(label)
    return found


@lru_cache(maxsize=1)
def code_list() -> dict[str, str]:
    """SNOMED code -> display, from the social prescribing code list shipped with intake."""
    path = resources.files("referral_intake") / "data" / "social_prescribing_snomed.csv"
    with path.open() as fh:
        return {row["code"]: row["display"] for row in csv.DictReader(fh)}


def _codings(concepts: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [c for concept in concepts or [] for c in concept.get("coding", []) or []]


def _texts(service_request: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    for key in ("reasonCode", "category"):
        for concept in service_request.get(key, []) or []:
            if concept.get("text"):
                texts.append(concept["text"])
            texts.extend(c.get("display", "") for c in concept.get("coding", []) or [])
    code = service_request.get("code") or {}
    if code.get("text"):
        texts.append(code["text"])
    texts.extend(c.get("display", "") for c in code.get("coding", []) or [])
    contained = {f"#{c.get('id')}": c for c in service_request.get("contained") or []}
    for ref in service_request.get("reasonReference", []) or []:
        if ref.get("display"):
            texts.append(ref["display"])
        condition = contained.get(ref.get("reference", ""))
        if condition and condition.get("resourceType") == "Condition":
            code = condition.get("code") or {}
            texts.append(code.get("text") or "")
            texts.extend(c.get("display", "") for c in code.get("coding", []) or [])
    for note in service_request.get("note", []) or []:
        if note.get("text"):
            texts.append(note["text"])
    if service_request.get("patientInstruction"):
        texts.append(service_request["patientInstruction"])
    return [t for t in texts if t]


def needs_of(service_request: dict[str, Any]) -> list[Need]:
    needs: dict[str, Need] = {}
    reasons = {r.get("reference") for r in service_request.get("reasonReference") or []}
    conditions = [
        c
        for c in service_request.get("contained") or []
        if c.get("resourceType") == "Condition" and f"#{c.get('id')}" in reasons
    ]
    for coding in (
        _codings(service_request.get("reasonCode"))
        + _codings([service_request.get("code") or {}])
        + _codings(service_request.get("category"))
        + _codings([c.get("code") or {} for c in conditions])
    ):
        code = coding.get("code")
        category = (
            _LIST_CATEGORY_BY_CODE.get(code or "")
            or _CLINICAL_CATEGORY_BY_CODE.get(code or "")
            or _SDOH_CATEGORY.get(code or "")
        )
        if category and category not in needs:
            needs[category] = Need(
                category=category,
                code=code,
                system=coding.get("system"),
                display=coding.get("display") or code_list().get(code or ""),
            )
    for category in _scan(" . ".join(_texts(service_request)), _NEED_WORDS):
        needs.setdefault(category, Need(category=category))
    return list(needs.values())


def interests_of(service_request: dict[str, Any]) -> list[str]:
    return _scan(" . ".join(_texts(service_request)), _INTEREST_WORDS)


def barriers_of(service_request: dict[str, Any], patient: dict[str, Any] | None) -> list[str]:
    barriers = _scan(" . ".join(_texts(service_request)), _BARRIER_WORDS)
    if patient and interpreter_required(patient) and "language" not in barriers:
        barriers.append("language")
    return barriers


_ACCESS_WORDS: list[tuple[str, str]] = [
    (r"wheelchair", "wheelchair"),
    (
        r"wheelchair|walking frame|zimmer|can'?t (manage )?stairs|step[- ]free|mobility scooter",
        "step-free",
    ),
    (r"hearing aid|hard of hearing|hearing loop|deaf", "hearing-loop"),
    (r"continence|accessible toilet", "accessible-toilet"),
    (r"sight loss|partially sighted|visually impaired|large print", "large-print"),
]

_FHIR_DAYS = {
    "mon": "MO",
    "tue": "TU",
    "wed": "WE",
    "thu": "TH",
    "fri": "FR",
    "sat": "SA",
    "sun": "SU",
}
_FHIR_WHEN = {
    "MORN": "morning",
    "MORN.early": "morning",
    "MORN.late": "morning",
    "NOON": "afternoon",
    "AFT": "afternoon",
    "AFT.early": "afternoon",
    "AFT.late": "afternoon",
    "EVE": "evening",
    "EVE.early": "evening",
    "EVE.late": "evening",
    "NIGHT": "evening",
}


def accessibility_of(service_request: dict[str, Any]) -> list[str]:
    """Access needs a venue must meet, from what the referrer wrote."""
    return _scan(" . ".join(_texts(service_request)), _ACCESS_WORDS)


def availability_of(service_request: dict[str, Any]) -> list[Availability]:
    """When the person can take part, from occurrenceTiming.repeat (dayOfWeek, when)."""
    repeat = (service_request.get("occurrenceTiming") or {}).get("repeat") or {}
    days = [_FHIR_DAYS[d] for d in repeat.get("dayOfWeek") or [] if d in _FHIR_DAYS]
    periods = sorted({_FHIR_WHEN[w] for w in repeat.get("when") or [] if w in _FHIR_WHEN})
    if not days and periods:
        days = list(_FHIR_DAYS.values())
    slots: list[Availability] = []
    for day in days:
        for period in periods or [None]:
            slots.append(Availability(day=day, period=period))  # type: ignore[arg-type]
    return slots


def interpreter_required(patient: dict[str, Any]) -> bool:
    for ext in patient.get("extension", []) or []:
        if ext.get("url", "").endswith("interpreterRequired") and ext.get("valueBoolean"):
            return True
    for comm in patient.get("communication", []) or []:
        for ext in comm.get("extension", []) or []:
            if ext.get("url", "").endswith("interpreterRequired") and ext.get("valueBoolean"):
                return True
    return False


def preferred_language(patient: dict[str, Any] | None) -> str | None:
    if not patient:
        return None
    comms = patient.get("communication", []) or []
    ordered = sorted(comms, key=lambda c: not c.get("preferred", False))
    for comm in ordered:
        for coding in (comm.get("language") or {}).get("coding", []) or []:
            if coding.get("code"):
                return str(coding["code"])
    return None


def age_band(birth_date: str | None, today: date) -> str | None:
    if not birth_date:
        return None
    try:
        parts = [int(p) for p in birth_date.split("-")]
        born = date(parts[0], parts[1] if len(parts) > 1 else 7, parts[2] if len(parts) > 2 else 1)
    except (ValueError, IndexError):
        return None
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age < 0:
        return None
    bands = [
        (18, "0-17"),
        (25, "18-24"),
        (35, "25-34"),
        (45, "35-44"),
        (55, "45-54"),
        (65, "55-64"),
        (75, "65-74"),
        (85, "75-84"),
    ]
    for upper, label in bands:
        if age < upper:
            return label
    return "85+"


def location_of(patient: dict[str, Any] | None) -> Location | None:
    if not patient:
        return None
    addresses = patient.get("address", []) or []
    ordered = sorted(addresses, key=lambda a: a.get("use") not in ("home", None))
    for address in ordered:
        if address.get("postalCode"):
            place = geo.locate(address["postalCode"])
            if place:
                return Location(
                    postcode_sector=place.sector or place.outcode,
                    lat=place.lat,
                    lon=place.lon,
                    precision_km=place.precision_km,
                )
    return None


def consent_of(patient: dict[str, Any] | None) -> Consent:
    """Contact preferences: telecom present means a channel exists; consent to be contacted is
    only ever given explicitly (a Consent resource, handled at the FHIR edge)."""
    channel = None
    if patient:
        systems = {t.get("system") for t in patient.get("telecom", []) or []}
        channel = (
            "sms"
            if "sms" in systems or "phone" in systems
            else ("email" if "email" in systems else None)
        )
    return Consent(contact_person=False, do_not_contact=False, preferred_channel=channel)


# ---------------------------------------------------------------- identity and idempotency


def referral_id_for(
    tenant: str, partner: str, identifiers: list[dict[str, Any]], request_id: str | None
) -> str:
    """The same business identifier (or the same X-Request-ID) always gives the same referral."""
    for ident in identifiers:
        if ident.get("value"):
            basis = f"{tenant}|{partner}|id|{ident.get('system', '')}|{ident['value']}"
            return str(uuid.uuid5(REFERRAL_NAMESPACE, basis))
    if request_id:
        return str(uuid.uuid5(REFERRAL_NAMESPACE, f"{tenant}|{partner}|request|{request_id}"))
    return str(uuid.uuid4())


# ---------------------------------------------------------------- the Task (closed loop)


# every business status a Task can show (Task.businessStatus), for counting referrals by state
BUSINESS_STATES = (
    "received",
    "matched",
    "no-match",
    "escalated",
    "place-held",
    "waitlisted",
    "refused-capacity",
    "place-released",
    "accepted",
    "declined",
    "attended",
    "completed",
    "cancelled",
    "revoked",
)


@dataclass
class TaskState:
    status: str = "requested"
    business_status: str = "received"
    business_text: str = "Referral received by the network"
    owner: str | None = None
    held_asset: dict[str, Any] | None = None
    waitlist: dict[str, Any] | None = None
    status_reason: str | None = None  # coded (DECLINE_REASONS)
    status_reason_text: str | None = None  # the partner's words: on the Task only, never in events
    outcome: str | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    last_event_at: str | None = None


def _text_of_candidates(event: MatchProposed) -> str:
    if not event.candidates:
        return f"No community asset proposed: {event.no_match_reason or 'no reason given'}"
    best = event.candidates[0]
    return f"{len(event.candidates)} proposed; best: {best.asset_name} ({'; '.join(best.reasons)})"


def apply_event(task: dict[str, Any], event: Event) -> dict[str, Any]:
    """The Task after a downstream event. Later events win; events that arrive late (from
    another topic) are kept in the history but do not move the Task backwards."""
    state = TaskState(**task)
    at = event.occurred_at.isoformat()
    newer = state.last_event_at is None or at >= state.last_event_at
    if isinstance(event, DeliveryRecorded):
        return task  # recorded in the history only
    if isinstance(event, MatchProposed):
        state.candidates = [c.model_dump() for c in event.candidates]
        if newer:
            state.business_status = "matched" if event.candidates else "no-match"
            state.business_text = _text_of_candidates(event)
    elif isinstance(event, ReferralEscalated):
        if newer:
            state.business_status = "escalated"
            state.business_text = f"Escalated to a {event.route_to}: {event.reason}"
            state.owner = None
    elif isinstance(event, PlaceReserved):
        if newer:
            state.status = "received"
            state.business_status = "place-held"
            state.business_text = f"Place held at {event.asset_name or event.asset_id}"
            state.owner = event.provider_org
            state.held_asset = {
                "asset_id": event.asset_id,
                "asset_name": event.asset_name,
                "hold_expires_at": event.hold_expires_at.isoformat(),
            }
            state.waitlist = None
    elif isinstance(event, PlaceRefused):
        if newer:
            refused = ", ".join(f"{r.asset_id} ({r.reason})" for r in event.refusals)
            if event.waitlisted_at:
                # the waitlisting follows on another topic: show it now, not a refusal first
                state.status = "received"
                state.business_status = "waitlisted"
                state.business_text = (
                    f"No room yet ({refused}); waitlisted at {event.waitlisted_at}"
                )
                state.waitlist = state.waitlist or {
                    "asset_id": event.waitlisted_at,
                    "position": None,
                    "band": "unknown",
                }
            else:
                state.business_status = "refused-capacity"
                state.business_text = "No proposed asset has room: " + refused
    elif isinstance(event, Waitlisted):
        if newer:
            state.status = "received"
            state.business_status = "waitlisted"
            state.business_text = (
                f"Waitlisted at {event.asset_id}, position {event.position}, "
                f"expected wait {event.band.value}"
            )
            state.waitlist = {
                "asset_id": event.asset_id,
                "position": event.position,
                "band": event.band.value,
            }
    elif isinstance(event, PlaceReleased):
        if newer and state.held_asset and state.held_asset.get("asset_id") == event.asset_id:
            state.business_status = "place-released"
            state.business_text = f"Place at {event.asset_id} released ({event.reason})"
            state.held_asset = None
    elif isinstance(event, ReferralUpdated):
        status_map = {
            "accepted": "accepted",
            "declined": "rejected",
            "attended": "in-progress",
            "completed": "completed",
            "cancelled": "cancelled",
            "revoked": "cancelled",
        }
        state.status = status_map[event.status.value]
        state.business_status = event.status.value
        state.business_text = f"Referral {event.status.value} by {event.by or event.producer}"
        if event.status is ReferralStatus.declined:
            state.status_reason = event.reason
            state.business_text += f": {DECLINE_REASONS.get(event.reason or '', event.reason)}"
        if event.status is ReferralStatus.completed:
            state.outcome = event.outcome
    if newer:
        state.last_event_at = at
    return state.__dict__


def history_entry(event: Event, task: dict[str, Any]) -> dict[str, Any]:
    entry = {
        "at": event.occurred_at.isoformat(),
        "event": event.topic,
        "event_id": str(event.event_id),
        "by": event.producer,
        "status": task["status"],
        "business_status": task["business_status"],
    }
    if isinstance(event, DeliveryRecorded):
        entry["delivery"] = {
            "recipient": event.recipient,
            "role": event.role,
            "channel": event.channel,
            "outcome": event.outcome,
        }
    return entry


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


# ---------------------------------------------------------------- who may see a referral

SEES_WHOLE_TENANT = frozenset({"link-worker", "ops"})


def parties(doc: dict[str, Any]) -> set[str]:
    """Organisations party to a referral: its requester and its performer (requested, or the
    provider holding a place)."""
    task = doc.get("task") or {}
    return {
        org
        for org in (doc.get("source_org"), doc.get("requested_performer"), task.get("owner"))
        if org
    }


def may_see(org_id: str, kind: str, tenant: str, doc: dict[str, Any]) -> bool:
    """Link-worker services (and operators) see their tenant's referrals; GP practices and
    VCSE organisations see the referrals they made or are asked to perform."""
    if doc.get("tenant") != tenant:
        return False
    return kind in SEES_WHOLE_TENANT or org_id in parties(doc)


# ---------------------------------------------------------------- partners changing the Task

PERSON_DECLINED_SNOMED = SOCIAL_PRESCRIBING_DECLINED
DECLINE_REASON_SYSTEM = "https://linkwell.example/CodeSystem/decline-reason"
# coded so the reason can travel in events without free text (which may name the person)
DECLINE_REASONS = {
    "person-declined": "The person declined",
    "not-suitable": "The activity is not suitable for this person",
    "no-capacity": "No place after all",
    "unable-to-contact": "The person could not be contacted",
    "other": "Another reason (see the Task)",
}

# Task.status a partner may set -> (what it means, who may set it, from which Task.status)
CHANGES: dict[str, tuple[ReferralStatus, str, frozenset[str]]] = {
    "accepted": (ReferralStatus.accepted, "performer", frozenset({"requested", "received"})),
    "rejected": (
        ReferralStatus.declined,
        "performer",
        frozenset({"requested", "received", "accepted"}),
    ),
    "in-progress": (ReferralStatus.attended, "performer", frozenset({"accepted", "in-progress"})),
    "completed": (ReferralStatus.completed, "performer", frozenset({"accepted", "in-progress"})),
    "cancelled": (
        ReferralStatus.cancelled,
        "requester",
        frozenset({"requested", "received", "accepted", "in-progress"}),
    ),
}


class TaskChangeRefused(Exception):
    """A partner's change to a Task that the network will not make."""

    def __init__(self, status: int, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.path = path


@dataclass(frozen=True)
class TaskChange:
    status: ReferralStatus
    reason_code: str | None = None
    reason_text: str | None = None
    outcome: str | None = None


def roles_of(org_id: str, kind: str, doc: dict[str, Any]) -> set[str]:
    roles = set()
    if kind in SEES_WHOLE_TENANT:
        roles |= {"requester", "performer"}
    if org_id == doc.get("source_org"):
        roles.add("requester")
    if org_id in {doc.get("requested_performer"), (doc.get("task") or {}).get("owner")} - {None}:
        roles.add("performer")
    return roles


def decline_reason(status_reason: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(coded reason, free text) from a Task.statusReason."""
    if not status_reason:
        return None, None
    code = None
    for coding in status_reason.get("coding") or []:
        if coding.get("code") == PERSON_DECLINED_SNOMED:
            code = "person-declined"
        elif (
            coding.get("system") == DECLINE_REASON_SYSTEM and coding.get("code") in DECLINE_REASONS
        ):
            code = coding["code"]
    return code, status_reason.get("text")


def outcome_of(outputs: list[dict[str, Any]] | None) -> str | None:
    for output in outputs or []:
        if (output.get("type") or {}).get("text") == "outcome":
            value = output.get("valueString") or (output.get("valueCodeableConcept") or {}).get(
                "text"
            )
            if value:
                return str(value)
    return None


def partner_change(
    doc: dict[str, Any], org_id: str, kind: str, new_task: dict[str, Any]
) -> TaskChange | None:
    """What a partner's new version of the Task asks for, or TaskChangeRefused. None when the
    Task status is unchanged and there is nothing to record."""
    current = doc["task"]["status"]
    wanted = new_task.get("status")
    if wanted == current and wanted != "in-progress":
        return None
    if wanted not in CHANGES:
        raise TaskChangeRefused(
            422,
            "business-rule",
            f"A partner can set Task.status to {', '.join(CHANGES)}; not {wanted!s:.20}",
            "Task.status",
        )
    meaning, role, allowed_from = CHANGES[wanted]
    if role not in roles_of(org_id, kind, doc):
        raise TaskChangeRefused(
            403,
            "forbidden",
            f"Only the referral's {role} can set Task.status to {wanted}",
            "Task.status",
        )
    if current not in allowed_from:
        raise TaskChangeRefused(
            409,
            "conflict",
            f"Task.status cannot go from {current} to {wanted}",
            "Task.status",
        )
    code, text = decline_reason(new_task.get("statusReason"))
    if meaning is ReferralStatus.declined and code is None:
        raise TaskChangeRefused(
            422,
            "required",
            "Declining needs Task.statusReason coded from "
            f"{DECLINE_REASON_SYSTEM} ({', '.join(DECLINE_REASONS)}) or SNOMED "
            f"{PERSON_DECLINED_SNOMED} (the person declined)",
            "Task.statusReason",
        )
    return TaskChange(
        status=meaning,
        reason_code=code if meaning is ReferralStatus.declined else None,
        reason_text=text,
        outcome=outcome_of(new_task.get("output")) if meaning is ReferralStatus.completed else None,
    )


def revocation(doc: dict[str, Any], org_id: str, kind: str) -> TaskChange | None:
    """The referrer withdraws the referral (ServiceRequest revoked or entered-in-error)."""
    if "requester" not in roles_of(org_id, kind, doc):
        raise TaskChangeRefused(
            403, "forbidden", "Only the referrer can withdraw a referral", "ServiceRequest.status"
        )
    if doc["task"]["status"] == "cancelled":
        return None  # already withdrawn: the same message again changes nothing
    if doc["task"]["status"] in ("completed", "rejected"):
        raise TaskChangeRefused(
            409,
            "conflict",
            f"The referral is already {doc['task']['status']}",
            "ServiceRequest.status",
        )
    return TaskChange(status=ReferralStatus.revoked)


# ---------------------------------------------------------------- identifiers

NETWORK_ORG_SYSTEM = "https://linkwell.example/Id/partner"


def valid_nhs_number(value: str) -> bool:
    """NHS number check digit (Modulus 11): weights 10..2 on the first nine digits."""
    digits = value.replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def valid_ods_code(value: str) -> bool:
    return 3 <= len(value) <= 10 and value.isalnum() and value.upper() == value
