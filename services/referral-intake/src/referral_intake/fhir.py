"""The FHIR R4 edge: parse with the R4B models, check what the library does not, render Tasks
and OperationOutcomes. Error text names element paths, never submitted values.
"""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from pydantic import ValidationError

from referral_intake.domain import SNOMED, SOCIAL_PRESCRIBING_REFERRAL

FHIR_JSON = "application/fhir+json"
ACCEPTED_CONTENT_TYPES = {"application/fhir+json", "application/json"}

REQUEST_STATUSES = {
    "draft",
    "active",
    "on-hold",
    "revoked",
    "completed",
    "entered-in-error",
    "unknown",
}
REQUEST_INTENTS = {
    "proposal",
    "plan",
    "directive",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
}
REQUEST_PRIORITIES = {"routine", "urgent", "asap", "stat"}


class FhirError(Exception):
    """An HTTP error answered with an OperationOutcome."""

    def __init__(
        self,
        status: int,
        issues: list[tuple[str, str, str | None]],
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__("; ".join(msg for _, msg, _ in issues))
        self.status = status
        self.issues = issues  # (code, diagnostics, expression)
        self.headers = headers


def _safe_name(value: object) -> str:
    """A resource type name fit to echo back; anything else could carry personal data."""
    return value if isinstance(value, str) and value.isalnum() else "something else"


def operation_outcome(
    issues: list[tuple[str, str, str | None]], severity: str = "error"
) -> dict[str, Any]:
    out = []
    for code, diagnostics, expression in issues:
        issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
        if expression:
            issue["expression"] = [expression]
        out.append(issue)
    return {"resourceType": "OperationOutcome", "issue": out}


def _path(resource_type: str, loc: tuple[Any, ...]) -> str:
    parts = [resource_type]
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FhirError(
            400,
            [("structure", f"Body is not valid JSON (line {getattr(exc, 'lineno', '?')})", None)],
        ) from None
    if not isinstance(data, dict):
        raise FhirError(400, [("structure", "Body must be a JSON object (a FHIR resource)", None)])
    return data


def parse_service_request(data: dict[str, Any]) -> ServiceRequest:
    resource_type = data.get("resourceType")
    if resource_type != "ServiceRequest":
        raise FhirError(
            400,
            [
                (
                    "invalid",
                    f"Expected resourceType ServiceRequest, got {_safe_name(resource_type)}",
                    "resourceType",
                )
            ],
        )
    try:
        model = ServiceRequest.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_input=False, include_url=False):
            issues.append(
                (
                    "structure" if err["type"] == "extra_forbidden" else "value",
                    f"{_path('ServiceRequest', err['loc'])}: {err['msg']}",
                    _path("ServiceRequest", err["loc"]),
                )
            )
        raise FhirError(400, issues) from None
    problems = check_referral(data)
    if problems:
        raise FhirError(
            422,
            [
                ("required" if "required" in m else "code-invalid", f"{p}: {m}", p)
                for p, m in problems
            ],
        )
    return model


def check_referral(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Required elements and code bindings the model does not enforce."""
    problems: list[tuple[str, str]] = []
    if not data.get("status"):
        problems.append(("ServiceRequest.status", "required element missing"))
    elif data["status"] not in REQUEST_STATUSES:
        problems.append(("ServiceRequest.status", "code not in RequestStatus value set"))
    elif data["status"] not in {"active", "draft"}:
        problems.append(("ServiceRequest.status", "a new referral must be active"))
    if not data.get("intent"):
        problems.append(("ServiceRequest.intent", "required element missing"))
    elif data["intent"] not in REQUEST_INTENTS:
        problems.append(("ServiceRequest.intent", "code not in RequestIntent value set"))
    if data.get("priority") and data["priority"] not in REQUEST_PRIORITIES:
        problems.append(("ServiceRequest.priority", "code not in RequestPriority value set"))
    subject = data.get("subject")
    if not subject or not (subject.get("reference") or subject.get("identifier")):
        problems.append(("ServiceRequest.subject", "required element missing"))
    elif (ref := subject.get("reference", "")).startswith("#"):
        ids = {
            c.get("id")
            for c in data.get("contained", []) or []
            if c.get("resourceType") == "Patient"
        }
        if ref[1:] not in ids:
            problems.append(
                (
                    "ServiceRequest.subject.reference",
                    "contained Patient not found for this reference",
                )
            )
    return problems


def contained_patient(data: dict[str, Any]) -> dict[str, Any] | None:
    ref = (data.get("subject") or {}).get("reference", "")
    for res in data.get("contained", []) or []:
        if res.get("resourceType") == "Patient" and (
            not ref.startswith("#") or res.get("id") == ref[1:]
        ):
            return dict(res)
    return None


def is_social_prescribing(data: dict[str, Any]) -> bool:
    for key in ("code", "category"):
        concepts = data.get(key)
        concepts = concepts if isinstance(concepts, list) else [concepts or {}]
        for concept in concepts:
            for coding in concept.get("coding", []) or []:
                if (
                    coding.get("system") == SNOMED
                    and coding.get("code") == SOCIAL_PRESCRIBING_REFERRAL
                ):
                    return True
    return False


# ---------------------------------------------------------------- Task


def render_task(doc: dict[str, Any], base_url: str) -> dict[str, Any]:
    t = doc["task"]
    sr_id = doc["_id"]
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": sr_id,
        "meta": {"versionId": str(doc.get("_v", 1)), "lastUpdated": doc["updated_at"]},
        "identifier": [{"system": "https://linkwell.example/Id/referral", "value": sr_id}],
        "basedOn": [{"reference": f"ServiceRequest/{sr_id}"}],
        "status": t["status"],
        "businessStatus": {
            "coding": [
                {
                    "system": "https://linkwell.example/CodeSystem/referral-state",
                    "code": t["business_status"],
                }
            ],
            "text": t["business_text"],
        },
        "intent": "order",
        "code": {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/CodeSystem/task-code",
                    "code": "fulfill",
                    "display": "Fulfill the focal request",
                }
            ]
        },
        "focus": {"reference": f"ServiceRequest/{sr_id}"},
        "for": doc["service_request"].get("subject"),
        "authoredOn": doc["received_at"],
        "lastModified": doc["updated_at"],
        "requester": {
            "identifier": {
                "system": "https://linkwell.example/Id/partner",
                "value": doc["source_org"],
            }
        },
    }
    if t.get("owner"):
        task["owner"] = {
            "identifier": {"system": "https://linkwell.example/Id/partner", "value": t["owner"]}
        }
    if t.get("status_reason"):
        task["statusReason"] = {"text": t["status_reason"]}
    outputs = []
    if t.get("held_asset"):
        asset = t["held_asset"]
        outputs.append(
            {
                "type": {"text": "place-held"},
                "valueReference": {
                    "identifier": {
                        "system": "https://linkwell.example/Id/asset",
                        "value": asset["asset_id"],
                    },
                    "display": asset.get("asset_name") or asset["asset_id"],
                },
            }
        )
    if t.get("waitlist"):
        wl = t["waitlist"]
        outputs.append(
            {
                "type": {"text": "waitlisted"},
                "valueString": f"{wl['asset_id']} position {wl['position']} ({wl['band']})",
            }
        )
    if t.get("outcome"):
        outputs.append({"type": {"text": "outcome"}, "valueString": t["outcome"]})
    if outputs:
        task["output"] = outputs
    notes = [
        {
            "time": h["at"],
            "text": f"{h['delivery']['role']} informed by {h['delivery']['channel']}: "
            f"{h['delivery']['outcome']}",
        }
        for h in doc.get("history", [])
        if h.get("delivery")
    ]
    if notes:
        task["note"] = notes
    Task.model_validate(task)  # what we serve is valid R4
    return task


def capability_statement(base_url: str, software_version: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-22",
        "kind": "instance",
        "software": {"name": "Linkwell referral-intake", "version": software_version},
        "implementation": {
            "description": "Linkwell social prescribing referral network",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {
                        "type": "ServiceRequest",
                        "interaction": [{"code": "create"}, {"code": "read"}],
                        "conditionalCreate": False,
                    },
                    {
                        "type": "Task",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [{"name": "focus", "type": "reference"}],
                    },
                ],
            }
        ],
    }
