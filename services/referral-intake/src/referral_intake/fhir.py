"""The FHIR R4 edge: parse with the R4B models, check what the library does not, render Tasks
and OperationOutcomes. Error text names element paths, never submitted values.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from pydantic import ValidationError

from referral_intake.domain import (
    DECLINE_REASON_SYSTEM,
    NHS_NUMBER_SYSTEM,
    ODS_SYSTEM,
    SNOMED,
    SOCIAL_PRESCRIBING_DECLINED,
    SOCIAL_PRESCRIBING_REFERRAL,
    needs_of,
    valid_nhs_number,
    valid_ods_code,
)

FHIR_JSON = "application/fhir+json"
ACCEPTED_CONTENT_TYPES = frozenset({"application/fhir+json", "application/json"})
JSON_PATCH_TYPES = frozenset({"application/json-patch+json"})
SAFE_HEADER_VALUE = re.compile(r"^[A-Za-z0-9\-_.:]{1,128}$")

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


def validate_structure(data: dict[str, Any], resource_type: str, model: type[Any]) -> Any:
    """The resource parsed as FHIR R4 (`fhir.resources.R4B`), or 400 naming each bad element."""
    found = data.get("resourceType")
    if found != resource_type:
        raise FhirError(
            400,
            [
                (
                    "invalid",
                    f"Expected resourceType {resource_type}, got {_safe_name(found)}",
                    "resourceType",
                )
            ],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_input=False, include_url=False):
            issues.append(
                (
                    "structure" if err["type"] == "extra_forbidden" else "value",
                    f"{_path(resource_type, err['loc'])}: {err['msg']}",
                    _path(resource_type, err["loc"]),
                )
            )
        raise FhirError(400, issues) from None
    except (TypeError, ValueError, KeyError, AttributeError, LookupError):
        # the model library gives up on some malformed shapes (a nested resource with no
        # usable resourceType, for one) without a validation error: still the sender's fault
        raise FhirError(
            400,
            [("structure", f"{resource_type}: not readable as FHIR R4 JSON", resource_type)],
        ) from None


def parse_service_request(data: dict[str, Any]) -> ServiceRequest:
    model: ServiceRequest = validate_structure(data, "ServiceRequest", ServiceRequest)
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
    problems += identifier_problems(data)
    if not (is_social_prescribing(data) or needs_of(data)):
        problems.append(
            (
                "ServiceRequest.code",
                "not a social prescribing referral: code it SNOMED 871731000000106 (referral to "
                "social prescribing service) or give a social need (reasonCode, category or "
                "reason text)",
            )
        )
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


def identifier_problems(
    data: dict[str, Any], prefix: str = "ServiceRequest"
) -> list[tuple[str, str]]:
    """NHS numbers must pass their check digit; ODS codes must look like ODS codes. The values
    themselves are never repeated back."""
    problems: list[tuple[str, str]] = []

    def check(identifier: Any, path: str) -> None:
        if not isinstance(identifier, dict) or not isinstance(identifier.get("value"), str):
            return
        system, value = identifier.get("system"), identifier["value"]
        if system == NHS_NUMBER_SYSTEM and not valid_nhs_number(value):
            problems.append((f"{path}.value", "not a valid NHS number (Modulus 11 check digit)"))
        if system == ODS_SYSTEM and not valid_ods_code(value):
            problems.append((f"{path}.value", "not a valid ODS organisation code"))

    subject = data.get("subject")
    if isinstance(subject, dict):
        check(subject.get("identifier"), f"{prefix}.subject.identifier")
    for key in ("requester",):
        ref = data.get(key)
        if isinstance(ref, dict):
            check(ref.get("identifier"), f"{prefix}.{key}.identifier")
    for n, ref in enumerate(data.get("performer") or []):
        if isinstance(ref, dict):
            check(ref.get("identifier"), f"{prefix}.performer[{n}].identifier")
    for c, res in enumerate(data.get("contained") or []):
        if isinstance(res, dict) and res.get("resourceType") == "Patient":
            for n, ident in enumerate(res.get("identifier") or []):
                check(ident, f"{prefix}.contained[{c}].identifier[{n}]")
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
        "authoredOn": doc["received_at"],
        "lastModified": doc["updated_at"],
        "requester": {
            "identifier": {
                "system": "https://linkwell.example/Id/partner",
                "value": doc["source_org"],
            }
        },
    }
    subject = doc["service_request"].get("subject") or {}
    if not str(subject.get("reference", "")).startswith("#"):  # contained: not resolvable here
        task["for"] = subject
    if t.get("owner"):
        task["owner"] = {
            "identifier": {"system": "https://linkwell.example/Id/partner", "value": t["owner"]}
        }
    if t.get("status_reason") or t.get("status_reason_text"):
        reason: dict[str, Any] = {}
        if t.get("status_reason") == "person-declined":
            reason["coding"] = [
                {
                    "system": SNOMED,
                    "code": SOCIAL_PRESCRIBING_DECLINED,
                    "display": "Social prescribing declined",
                }
            ]
        elif t.get("status_reason"):
            reason["coding"] = [{"system": DECLINE_REASON_SYSTEM, "code": t["status_reason"]}]
        if t.get("status_reason_text"):
            reason["text"] = t["status_reason_text"]
        task["statusReason"] = reason
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
                "valueString": (
                    f"{wl['asset_id']} position {wl['position']} (expected wait: {wl['band']})"
                    if wl.get("position")
                    else f"{wl['asset_id']} (position to follow)"
                ),
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


def render_task_history(doc: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Every change of the Task, newest first, as a FHIR history Bundle: what it became, when,
    who made the change (the partner, or the network service whose event moved it)."""
    current = render_task(doc, base_url)
    entries = []
    history = [h for h in doc.get("history", []) if h.get("changed") or h["event"] == "received"]
    for version, h in reversed(list(enumerate(history, start=1))):
        snapshot = {
            "resourceType": "Task",
            "id": current["id"],
            "meta": {"versionId": str(version), "lastUpdated": h["at"]},
            "status": h["status"],
            "businessStatus": {
                "coding": [
                    {
                        "system": "https://linkwell.example/CodeSystem/referral-state",
                        "code": h["business_status"],
                    }
                ]
            },
            "intent": "order",
            "focus": current["focus"],
            "lastModified": h["at"],
        }
        entries.append(
            {
                "fullUrl": f"{base_url}/Task/{current['id']}",
                "resource": snapshot,
                "request": {
                    "method": "POST" if h["event"] == "received" else "PUT",
                    "url": f"Task/{current['id']}",
                },
                "response": {"status": "200", "lastModified": h["at"]},
                "extension": [
                    {
                        "url": "https://linkwell.example/StructureDefinition/changed-by",
                        "valueString": f"{h['by']} ({h['event']})",
                    }
                ],
            }
        )
    bundle = {"resourceType": "Bundle", "type": "history", "total": len(entries), "entry": entries}
    return bundle


def organisation_param(value: str) -> str:
    """An organisation in a search: `Organization/<id>`, `<system>|<id>` or just `<id>`."""
    return value.rsplit("|", 1)[-1].rsplit("/", 1)[-1]


def if_none_exist_identifier(header: str | None) -> dict[str, str] | None:
    """The identifier of a conditional create (`If-None-Exist: identifier=system|value`)."""
    if not header:
        return None
    from urllib.parse import parse_qsl

    params = parse_qsl(header.strip().lstrip("?"), keep_blank_values=True)
    if len(params) != 1 or params[0][0] != "identifier" or not params[0][1]:
        raise FhirError(
            400,
            [
                (
                    "not-supported",
                    "If-None-Exist supports one parameter: identifier=system|value",
                    None,
                )
            ],
        )
    system, bar, value = params[0][1].rpartition("|")
    if not bar:
        system, value = "", params[0][1]
    if not value:
        raise FhirError(400, [("invalid", "If-None-Exist identifier has no value", None)])
    return {"system": system, "value": value}


def message_response(
    request_header: dict[str, Any], base_url: str, referral_id: str
) -> dict[str, Any]:
    """The acknowledgement of a referral message: a message Bundle whose MessageHeader answers
    the request's (response.identifier = its id) and points at the referral."""
    import uuid
    from datetime import UTC, datetime

    header_id = str(uuid.uuid4())
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": header_id,
        "eventCoding": request_header.get("eventCoding"),
        "source": {"name": "Linkwell referral-intake", "endpoint": base_url},
        "response": {
            "identifier": str(request_header.get("id") or ""),
            "code": "ok",
        },
        "focus": [{"reference": f"{base_url}/ServiceRequest/{referral_id}"}],
    }
    if not header["response"]["identifier"]:
        header["response"]["identifier"] = "unknown"
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "message",
        "timestamp": datetime.now(UTC).isoformat(),
        "entry": [{"fullUrl": f"urn:uuid:{header_id}", "resource": header}],
    }


def if_match_version(header: str | None) -> int | None:
    """The version in an If-Match header (`W/"3"`), or 400 when it is not one of ours."""
    if not header:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise FhirError(400, [("invalid", 'If-Match must be a version ETag such as W/"3"', None)])
    return int(value)


def parse_json_patch(body: bytes) -> list[dict[str, Any]]:
    try:
        operations = json.loads(body)
    except ValueError:
        raise FhirError(400, [("structure", "Body is not valid JSON", None)]) from None
    if not isinstance(operations, list) or not all(
        isinstance(op, dict) and isinstance(op.get("op"), str) for op in operations
    ):
        raise FhirError(
            400, [("structure", "A JSON Patch is a list of operations with an op", None)]
        )
    return operations


def apply_json_patch(task: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    import jsonpatch
    import jsonpointer

    try:
        patched = jsonpatch.JsonPatch(operations).apply(task)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        kind = "failed test" if isinstance(exc, jsonpatch.JsonPatchTestFailed) else "invalid"
        raise FhirError(
            422, [("processing", f"The patch cannot be applied ({kind} operation)", None)]
        ) from None
    except (TypeError, KeyError, ValueError):
        raise FhirError(400, [("structure", "The patch is malformed", None)]) from None
    if not isinstance(patched, dict):
        raise FhirError(422, [("processing", "The patch does not leave a Task", None)])
    return patched


def capability_statement(base_url: str, software_version: str) -> dict[str, Any]:
    """What this server does, and nothing it does not."""
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
        "format": ["application/fhir+json", "application/json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": (
                        "Every request carries Authorization: Bearer <JWT>, signed (ES256 or "
                        "RS256) with the partner's registered private key; claims iss = sub = "
                        f"partner id, aud = {base_url}, exp within 5 minutes of iat, and a jti "
                        "used once. A partner sees referrals it made or is asked to perform; "
                        "link-worker services see their tenant's."
                    )
                },
                "resource": [
                    {
                        "type": "ServiceRequest",
                        "interaction": [{"code": "create"}, {"code": "read"}],
                        "conditionalCreate": True,
                        "documentation": (
                            "A social prescribing referral (SNOMED 871731000000106); the person "
                            "as a contained Patient or referenced within a transaction Bundle. "
                            "The same identifier, or the same X-Request-ID, is one referral. "
                            "If-None-Exist supports identifier=system|value."
                        ),
                    },
                    {
                        "type": "Task",
                        "interaction": [
                            {"code": "read"},
                            {"code": "update"},
                            {"code": "patch"},
                            {"code": "search-type"},
                            {"code": "history-instance"},
                        ],
                        "versioning": "versioned-update",
                        "conditionalUpdate": False,
                        "documentation": (
                            "One Task per referral, kept current by the network. The performer "
                            "sets status accepted, rejected (statusReason coded), in-progress "
                            "(attendance) or completed (output 'outcome'); the requester sets "
                            "cancelled. If-Match is honoured."
                        ),
                        "searchParam": [
                            {"name": "focus", "type": "reference"},
                            {"name": "status", "type": "token"},
                            {"name": "owner", "type": "reference"},
                            {"name": "requester", "type": "reference"},
                            {"name": "_count", "type": "number"},
                        ],
                    },
                ],
                "interaction": [
                    {
                        "code": "transaction",
                        "documentation": (
                            "One ServiceRequest with its Patient, Condition, Goal, Consent ... "
                            "(POST entries, urn:uuid references)"
                        ),
                    }
                ],
                "operation": [
                    {
                        "name": "process-message",
                        "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
                        "documentation": (
                            "Booking and Referral Standard style servicerequest-request: new, "
                            "re-sent, or withdrawn (ServiceRequest revoked or entered-in-error)."
                        ),
                    }
                ],
            }
        ],
    }
