"""Referrals that arrive as Bundles: a FHIR transaction (Patient, ServiceRequest, Condition,
Goal, Consent ... linked by `urn:uuid` references) or a message in the NHS Booking and Referral
Standard style (MessageHeader first, focus on the ServiceRequest).

Either way the result is one ServiceRequest with the other resources contained in it and every
reference rewritten to `#id`, so the rest of intake handles it exactly as a ServiceRequest
posted alone, and the Bundle as received is kept beside it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from linkwell_schemas.events import Consent
from referral_intake.fhir import FhirError, validate_structure

# what a referral Bundle may carry; anything else is refused rather than silently dropped
SUPPORTING = frozenset(
    {
        "Patient",
        "Condition",
        "Goal",
        "Consent",
        "Observation",
        "QuestionnaireResponse",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "RelatedPerson",
        "Location",
        "HealthcareService",
        "DocumentReference",
    }
)
BARS_EVENTS = "https://fhir.nhs.uk/CodeSystem/message-events-bars"
REQUEST_EVENT = "servicerequest-request"
_SAFE_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass
class BundledReferral:
    service_request: dict[str, Any]
    consent: Consent | None = None
    goals: list[str] = field(default_factory=list)
    message_header: dict[str, Any] | None = None
    entry_order: list[str] = field(default_factory=list)  # resource type of each entry


def _issue(status: int, code: str, message: str, path: str | None) -> FhirError:
    return FhirError(status, [(code, message, path)])


def _walk_references(node: Any, visit: Any) -> None:
    """Call visit(dict holding "reference") for every Reference in a resource."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            visit(node)
        for key, value in node.items():
            if key not in ("contained", "text"):
                _walk_references(value, visit)
    elif isinstance(node, list):
        for item in node:
            _walk_references(item, visit)


def unpack(data: dict[str, Any], expected_type: str) -> BundledReferral:
    """The referral in a transaction or message Bundle, or FhirError naming the bad element."""
    if data.get("resourceType") == "Bundle" and data.get("type") != expected_type:
        kind = data.get("type") if data.get("type") in ("transaction", "message", "batch") else "?"
        raise _issue(
            422,
            "invalid",
            f"Expected a {expected_type} Bundle, got type {kind}",
            "Bundle.type",
        )
    validate_structure(data, "Bundle", Bundle)
    entries = data.get("entry") or []
    if not entries:
        raise _issue(422, "required", "The Bundle has no entries", "Bundle.entry")

    by_url: dict[str, int] = {}
    for n, entry in enumerate(entries):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            raise _issue(422, "required", "Every entry needs a resource", f"Bundle.entry[{n}]")
        url = entry.get("fullUrl")
        if url:
            if url in by_url:
                raise _issue(
                    422,
                    "invalid",
                    f"fullUrl repeats entry {by_url[url]}; each must be unique",
                    f"Bundle.entry[{n}].fullUrl",
                )
            by_url[url] = n
        rtype = resource.get("resourceType")
        if expected_type == "transaction":
            request = entry.get("request") or {}
            if (
                request.get("method") != "POST"
                or str(request.get("url", "")).split("?")[0] != rtype
            ):
                raise _issue(
                    422,
                    "not-supported",
                    "Only creating new resources is supported: request.method POST and "
                    "request.url the resource type",
                    f"Bundle.entry[{n}].request",
                )
        allowed = (
            SUPPORTING
            | {"ServiceRequest"}
            | ({"MessageHeader"} if expected_type == "message" else set())
        )
        if rtype not in allowed:
            raise _issue(
                422,
                "not-supported",
                f"{rtype if isinstance(rtype, str) and rtype.isalpha() else 'This resource type'}"
                " is not part of a referral here",
                f"Bundle.entry[{n}].resource",
            )

    header = None
    if expected_type == "message":
        first = entries[0]["resource"]
        if first.get("resourceType") != "MessageHeader":
            raise _issue(
                422,
                "invalid",
                "A message Bundle starts with its MessageHeader",
                "Bundle.entry[0].resource",
            )
        header = first
        if sum(1 for e in entries if e["resource"].get("resourceType") == "MessageHeader") > 1:
            raise _issue(422, "invalid", "Only one MessageHeader", "Bundle.entry")

    requests = [
        n for n, e in enumerate(entries) if e["resource"]["resourceType"] == "ServiceRequest"
    ]
    if len(requests) != 1:
        raise _issue(
            422,
            "invalid",
            f"A referral Bundle carries exactly one ServiceRequest (found {len(requests)})",
            "Bundle.entry",
        )
    sr_index = requests[0]
    if header is not None:
        focus = [f.get("reference") for f in header.get("focus") or []]
        sr_url = entries[sr_index].get("fullUrl")
        sr_local = f"ServiceRequest/{entries[sr_index]['resource'].get('id')}"
        if not any(ref in (sr_url, sr_local) for ref in focus):
            raise _issue(
                422,
                "invalid",
                "MessageHeader.focus must reference the ServiceRequest in the Bundle",
                "Bundle.entry[0].resource.focus",
            )

    # local ids for every supporting resource, and where each can be found
    local_id: dict[int, str] = {}
    taken: set[str] = set()
    for n, entry in enumerate(entries):
        if n == sr_index or entry["resource"]["resourceType"] == "MessageHeader":
            continue
        own = entry["resource"].get("id")
        candidate = own if isinstance(own, str) and _SAFE_ID.match(own) else f"r{n}"
        while candidate in taken:
            candidate = f"{candidate}-{n}"
        taken.add(candidate)
        local_id[n] = candidate
    lookup: dict[str, int] = {}
    for n in local_id:
        entry = entries[n]
        if entry.get("fullUrl"):
            lookup[entry["fullUrl"]] = n
        resource = entry["resource"]
        if resource.get("id"):
            lookup[f"{resource['resourceType']}/{resource['id']}"] = n

    service_request = copy.deepcopy(entries[sr_index]["resource"])
    contained = [copy.deepcopy(entries[n]["resource"]) for n in local_id]
    already = {c.get("id") for c in service_request.get("contained") or []}

    def rewrite(path: str) -> Any:
        def visit(ref: dict[str, Any]) -> None:
            target = ref["reference"]
            if target.startswith("#"):
                return
            if target in lookup:
                ref["reference"] = f"#{local_id[lookup[target]]}"
            elif target.startswith("urn:uuid:") or target.startswith("urn:oid:"):
                raise _issue(
                    422,
                    "not-found",
                    "A reference does not resolve to any entry in the Bundle",
                    path,
                )

        return visit

    _walk_references(service_request, rewrite(f"Bundle.entry[{sr_index}].resource"))
    for n, resource in zip(local_id, contained, strict=True):
        resource["id"] = local_id[n]
        resource.pop("contained", None)  # contained resources may not nest
        resource.pop("text", None)
        _walk_references(resource, rewrite(f"Bundle.entry[{n}].resource"))
    clash = already & set(local_id.values())
    if clash:
        raise _issue(
            422,
            "invalid",
            "A contained resource id repeats the id of a Bundle entry",
            f"Bundle.entry[{sr_index}].resource.contained",
        )
    # everything the Bundle carried is kept with the referral and referenced from it
    referenced = set()
    _walk_references(service_request, lambda ref: referenced.add(ref["reference"]))
    supporting = list(service_request.get("supportingInfo") or [])
    for resource in contained:
        if f"#{resource['id']}" not in referenced:
            supporting.append({"reference": f"#{resource['id']}"})
    if supporting:
        service_request["supportingInfo"] = supporting
    service_request["contained"] = list(service_request.get("contained") or []) + contained
    service_request.pop("id", None)

    return BundledReferral(
        service_request=service_request,
        consent=consent_from(contained),
        goals=goals_from(contained),
        message_header=header,
        entry_order=[e["resource"]["resourceType"] for e in entries],
    )


def consent_from(resources: list[dict[str, Any]]) -> Consent | None:
    """An active Consent: `provision.type` deny means do not contact the person at all;
    permit means they agreed to be contacted about this referral."""
    for resource in resources:
        if resource.get("resourceType") != "Consent" or resource.get("status") != "active":
            continue
        provision = (resource.get("provision") or {}).get("type")
        if provision == "deny":
            return Consent(contact_person=False, do_not_contact=True, preferred_channel="none")
        if provision == "permit":
            return Consent(contact_person=True, do_not_contact=False)
    return None


def goals_from(resources: list[dict[str, Any]]) -> list[str]:
    """Coded goals only: a goal's free text is the person's own words and stays in the FHIR."""
    goals = []
    for resource in resources:
        if resource.get("resourceType") != "Goal":
            continue
        for coding in (resource.get("description") or {}).get("coding") or []:
            if coding.get("display"):
                goals.append(str(coding["display"]))
                break
    return goals


def message_event(header: dict[str, Any]) -> str | None:
    coding = header.get("eventCoding") or {}
    return coding.get("code") if isinstance(coding, dict) else None
