"""Composition root of referral-intake: FHIR routes, Kafka handlers, outbox relay and the
re-drive sweep."""

from __future__ import annotations

import html
import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from faststream.kafka import KafkaBroker
from opentelemetry import trace

from linkwell.actions import ActionLinkError, ActionVerifier
from linkwell.auth import AuthError, DocumentReplayGuard, TokenVerifier
from linkwell.documents import DocumentStore, MongoDocumentStore
from linkwell.partners import Partner, load_partners
from linkwell.runtime import ServiceRuntime
from linkwell.telemetry import current_trace_id
from linkwell_schemas.events import Organisation, Priority, ReferralReceived
from referral_intake import __version__, bundles, domain, fhir, handlers
from referral_intake.config import IntakeSettings
from referral_intake.store import REFERRALS, ReferralStore

SERVICE = "referral-intake"
MAX_SEARCH_VALUES = 100
SEARCH_PARAMS = {"focus", "status", "owner", "requester", "_count"}
log = logging.getLogger(__name__)


def fhir_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=fhir.FHIR_JSON)


def build(
    settings: IntakeSettings,
    store: DocumentStore | None = None,
    broker: KafkaBroker | None = None,
    partners: list[Partner] | None = None,
) -> tuple[FastAPI, ServiceRuntime]:
    documents = store or MongoDocumentStore(settings.mongodb_url, settings.database)
    runtime = ServiceRuntime(
        SERVICE,
        documents,
        [REFERRALS],
        settings.kafka_bootstrap_servers,
        broker=broker,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    referrals = ReferralStore(documents, on_written=runtime.relay.wake)
    handlers.register(runtime.consumer, referrals)

    async def referrals_by_state() -> dict[str, float]:
        return {
            state: await documents.count(REFERRALS, {"task.business_status": state})
            for state in domain.BUSINESS_STATES
        }

    runtime.metrics.observe(
        "linkwell_referrals", "Referrals by the state their Task shows", "state", referrals_by_state
    )
    registry = {
        p.org_id: p
        for p in (partners if partners is not None else load_partners(settings.partners_file))
    }
    runtime.on_startup(referrals.setup)
    runtime.every(
        "redrive-stalled-referrals",
        settings.redrive_every_seconds,
        lambda: referrals.redrive_stalled(settings.redrive_after_seconds, settings.max_redrives),
    )
    base = settings.public_base_url.rstrip("/")
    by_identifier: dict[tuple[str | None, str | None], str] = {}
    for p in registry.values():
        by_identifier[(domain.NETWORK_ORG_SYSTEM, p.org_id)] = p.org_id
        if p.ods_code:
            by_identifier[(domain.ODS_SYSTEM, p.ods_code)] = p.org_id
        if p.network_identifier:
            by_identifier[(domain.NETWORK_ORG_SYSTEM, p.network_identifier)] = p.org_id
    replay = DocumentReplayGuard(documents)
    verifier = TokenVerifier(registry, settings.token_audience or base, replay)
    runtime.every("forget-used-tokens", 60.0, replay.forget_expired)

    app = runtime.http_app("Linkwell referral-intake (FHIR R4)", version=__version__)
    app.state.runtime = runtime
    app.state.referrals = referrals

    @app.middleware("http")
    async def echo_request_ids(request: Request, call_next: Any) -> Response:
        """X-Request-ID and X-Correlation-ID come back on every answer (NHS API convention),
        so a GP system can match answers to requests; unsafe values are not echoed."""
        response: Response = await call_next(request)
        for header in ("x-request-id", "x-correlation-id"):
            value = request.headers.get(header)
            if value and fhir.SAFE_HEADER_VALUE.match(value):
                response.headers[header] = value
        return response

    @app.exception_handler(fhir.FhirError)
    async def fhir_error(_: Request, exc: fhir.FhirError) -> JSONResponse:
        return fhir_response(fhir.operation_outcome(exc.issues), exc.status, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error handling a request: %s", type(exc).__name__)
        return fhir_response(
            fhir.operation_outcome(
                [("exception", "Internal error; the request was not applied", None)]
            ),
            500,
        )

    async def partner_of(request: Request) -> Partner:
        try:
            partner = await verifier.partner(request.headers.get("authorization"))
        except AuthError as exc:
            raise fhir.FhirError(
                exc.status,
                [("login", exc.message, None)],
                {"WWW-Authenticate": f'Bearer realm="{base}", error="invalid_token"'},
            ) from None
        trace.get_current_span().set_attribute("linkwell.partner", partner.org_id)
        request.state.partner = partner
        return partner

    async def read_body(
        request: Request, accepted: frozenset[str] | set[str] = fhir.ACCEPTED_CONTENT_TYPES
    ) -> bytes:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in accepted:
            raise fhir.FhirError(
                415,
                [("not-supported", f"Content-Type must be {' or '.join(sorted(accepted))}", None)],
            )
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise fhir.FhirError(413, [("too-costly", "Request body too large", None)])
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > settings.max_body_bytes:
                raise fhir.FhirError(413, [("too-costly", "Request body too large", None)])
        return body

    @app.get("/fhir/metadata")
    async def metadata() -> JSONResponse:
        return fhir_response(fhir.capability_statement(base, __version__))

    def existing_response(doc: dict[str, Any]) -> JSONResponse:
        return fhir_response(
            doc["service_request"],
            200,
            {"Location": f"{base}/ServiceRequest/{doc['_id']}", "ETag": 'W/"1"'},
        )

    async def accept_referral(
        partner: Partner,
        data: dict[str, Any],
        request_id: str | None,
        bundled: bundles.BundledReferral | None = None,
        raw: dict[str, Any] | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """Store a new referral with its Task and its received event, in one write. (False,
        the first) when the same referral was already accepted."""
        fhir.parse_service_request(data)
        performer = requested_performer(data)
        referral_id = domain.referral_id_for(
            partner.tenant, partner.org_id, data.get("identifier") or [], request_id
        )
        span = trace.get_current_span()
        span.set_attribute("linkwell.referral_id", referral_id)
        existing = await referrals.get(referral_id)
        if existing is not None:
            return False, existing

        now = datetime.now(UTC)
        stored = dict(data)
        stored["id"] = referral_id
        stored["meta"] = {
            **(data.get("meta") or {}),
            "versionId": "1",
            "lastUpdated": now.isoformat(),
        }
        patient = fhir.contained_patient(data)
        consent = domain.consent_of(patient)
        if bundled is not None and bundled.consent is not None:
            consent = bundled.consent.model_copy(
                update={
                    "preferred_channel": bundled.consent.preferred_channel
                    or consent.preferred_channel
                }
            )
        event = ReferralReceived(
            producer=SERVICE,
            tenant=partner.tenant,
            correlation_id=referral_id,
            referral_id=referral_id,
            source=Organisation(
                org_id=partner.org_id, kind=partner.kind if partner.kind != "ops" else None
            ),
            requested_performer=performer,
            priority=Priority(data.get("priority") or "routine"),
            needs=domain.needs_of(data),
            interests=domain.interests_of(data),
            goals=bundled.goals if bundled is not None else [],
            barriers=domain.barriers_of(data, patient),
            location=domain.location_of(patient),
            age_band=domain.age_band((patient or {}).get("birthDate"), now.date()),
            language=domain.preferred_language(patient),
            accessibility=domain.accessibility_of(data),
            availability=domain.availability_of(data),
            consent=consent,
            fhir_reference=f"ServiceRequest/{referral_id}",
        )
        doc = {
            "_id": referral_id,
            "tenant": partner.tenant,
            "source_org": partner.org_id,
            "requested_performer": performer,
            "request_id": request_id,
            "service_request": stored,
            "raw": raw if raw is not None else data,
            "task": domain.TaskState().__dict__,
            "history": [
                {
                    "at": now.isoformat(),
                    "event": "received",
                    "by": partner.org_id,
                    "status": "requested",
                    "business_status": "received",
                    "trace_id": current_trace_id(),
                }
            ],
            "received_at": now.isoformat(),
            "updated_at": now.isoformat(),
            "moved_at": time.time(),
            "stage": "received",
            "redrives": 0,
        }
        return await referrals.create(doc, event)

    @app.post("/fhir/ServiceRequest")
    async def create_service_request(request: Request) -> JSONResponse:
        partner = await partner_of(request)
        data = fhir.parse_json(await read_body(request))
        condition = fhir.if_none_exist_identifier(request.headers.get("if-none-exist"))
        if condition is not None:
            # conditional create: the identifier decides the referral id, so "exists" is a read
            match_id = domain.referral_id_for(partner.tenant, partner.org_id, [condition], None)
            existing = await referrals.get(match_id)
            if existing is not None:
                fhir.parse_service_request(data)  # a bad body is still refused
                return existing_response(existing)
        created, written = await accept_referral(partner, data, request.headers.get("x-request-id"))
        if not created:
            return existing_response(written)
        return fhir_response(
            written["service_request"],
            201,
            {"Location": f"{base}/ServiceRequest/{written['_id']}", "ETag": 'W/"1"'},
        )

    @app.post("/fhir")
    async def transaction(request: Request) -> JSONResponse:
        """A transaction Bundle carrying one referral and what supports it."""
        partner = await partner_of(request)
        data = fhir.parse_json(await read_body(request))
        bundled = bundles.unpack(data, "transaction")
        created, written = await accept_referral(
            partner,
            bundled.service_request,
            request.headers.get("x-request-id"),
            bundled,
            raw=data,
        )
        referral_id = written["_id"]
        status = "201 Created" if created else "200 OK"
        entries = []
        for rtype in bundled.entry_order:
            response: dict[str, Any] = {"status": status}
            if rtype == "ServiceRequest":
                response["location"] = f"ServiceRequest/{referral_id}/_history/1"
                response["etag"] = 'W/"1"'
            else:  # kept inside the referral, readable with it
                response["location"] = f"ServiceRequest/{referral_id}"
            entries.append({"response": response})
        return fhir_response(
            {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}, 200
        )

    @app.post("/fhir/$process-message")
    async def process_message(request: Request) -> JSONResponse:
        """NHS Booking and Referral Standard style: a new referral, an update, or a
        cancellation (the ServiceRequest revoked or entered-in-error)."""
        partner = await partner_of(request)
        data = fhir.parse_json(await read_body(request))
        bundled = bundles.unpack(data, "message")
        header = bundled.message_header or {}
        event_code = bundles.message_event(header)
        if event_code != bundles.REQUEST_EVENT:
            raise fhir.FhirError(
                422,
                [
                    (
                        "not-supported",
                        f"MessageHeader.eventCoding must be {bundles.REQUEST_EVENT}",
                        "Bundle.entry[0].resource.eventCoding",
                    )
                ],
            )
        service_request = bundled.service_request
        request_id = request.headers.get("x-request-id")
        if service_request.get("status") in ("revoked", "entered-in-error"):
            referral_id = domain.referral_id_for(
                partner.tenant, partner.org_id, service_request.get("identifier") or [], None
            )
            doc = await referrals.get(referral_id)
            if doc is None or not domain.may_see(partner.org_id, partner.kind, partner.tenant, doc):
                raise fhir.FhirError(
                    404,
                    [("not-found", "No referral with that identifier to cancel", None)],
                )
            try:
                await referrals.change_by_partner(
                    referral_id,
                    partner.org_id,
                    lambda current: domain.revocation(current, partner.org_id, partner.kind),
                    None,
                    current_trace_id(),
                )
            except domain.TaskChangeRefused as refused:
                raise fhir.FhirError(
                    refused.status, [(refused.code, refused.message, refused.path)]
                ) from None
        else:
            created, doc = await accept_referral(
                partner, service_request, request_id, bundled, raw=data
            )
            referral_id = doc["_id"]
        return fhir_response(fhir.message_response(header, base, referral_id), 200)

    def requested_performer(data: dict[str, Any]) -> str | None:
        """The network organisation asked to perform the referral (a two-way referral names a
        link-worker service, a VCSE organisation or a practice), or None: left to matching."""
        performers = data.get("performer") or []
        if not performers:
            return None
        ref = performers[0]
        identifier = ref.get("identifier")
        if identifier is None and str(ref.get("reference", "")).startswith("#"):
            for res in data.get("contained") or []:
                if res.get("id") == ref["reference"][1:]:
                    identifier = (res.get("identifier") or [None])[0]
        if not identifier:
            return None  # a reference into the sender's own system: matching decides
        org = by_identifier.get((identifier.get("system"), identifier.get("value")))
        if org is None:
            raise fhir.FhirError(
                422,
                [
                    (
                        "not-found",
                        "ServiceRequest.performer[0]: not an organisation in this network",
                        "ServiceRequest.performer[0]",
                    )
                ],
            )
        return org

    async def readable(referral_id: str, request: Request) -> dict[str, Any]:
        partner = await partner_of(request)
        doc = await referrals.get(referral_id)
        if doc is None or doc["tenant"] != partner.tenant:
            raise fhir.FhirError(404, [("not-found", "No such resource", None)])
        if not domain.may_see(partner.org_id, partner.kind, partner.tenant, doc):
            raise fhir.FhirError(
                403, [("forbidden", "This organisation is not party to the referral", None)]
            )
        return doc

    @app.get("/fhir/ServiceRequest/{referral_id}")
    async def read_service_request(referral_id: str, request: Request) -> JSONResponse:
        doc = await readable(referral_id, request)
        return fhir_response(doc["service_request"])

    def task_response(doc: dict[str, Any]) -> JSONResponse:
        return fhir_response(fhir.render_task(doc, base), 200, {"ETag": f'W/"{doc.get("_v", 1)}"'})

    @app.get("/fhir/Task/{referral_id}")
    async def read_task(referral_id: str, request: Request) -> JSONResponse:
        return task_response(await readable(referral_id, request))

    @app.get("/fhir/Task/{referral_id}/_history")
    async def task_history(referral_id: str, request: Request) -> JSONResponse:
        doc = await readable(referral_id, request)
        return fhir_response(fhir.render_task_history(doc, base))

    async def change_task(
        request: Request, partner: Partner, referral_id: str, new_task: dict[str, Any]
    ) -> JSONResponse:
        if new_task.get("id") not in (None, referral_id):
            raise fhir.FhirError(400, [("invalid", "Task.id does not match the URL", "Task.id")])
        try:
            doc = await referrals.change_by_partner(
                referral_id,
                partner.org_id,
                lambda current: domain.partner_change(
                    current, partner.org_id, partner.kind, new_task
                ),
                fhir.if_match_version(request.headers.get("if-match")),
                current_trace_id(),
            )
        except domain.TaskChangeRefused as refused:
            raise fhir.FhirError(
                refused.status, [(refused.code, refused.message, refused.path)]
            ) from None
        return task_response(doc)

    @app.put("/fhir/Task/{referral_id}")
    async def update_task(referral_id: str, request: Request) -> JSONResponse:
        """The performer accepts, declines (with a reason), records attendance or completes
        (with an outcome in Task.output); the requester cancels."""
        doc = await readable(referral_id, request)
        partner = request.state.partner
        data = fhir.parse_json(await read_body(request))
        fhir.validate_structure(data, "Task", fhir.Task)
        return await change_task(request, partner, doc["_id"], data)

    @app.patch("/fhir/Task/{referral_id}")
    async def patch_task(referral_id: str, request: Request) -> JSONResponse:
        """The same changes as PUT, as a JSON Patch (RFC 6902) on the current Task."""
        doc = await readable(referral_id, request)
        partner = request.state.partner
        operations = fhir.parse_json_patch(await read_body(request, fhir.JSON_PATCH_TYPES))
        patched = fhir.apply_json_patch(fhir.render_task(doc, base), operations)
        fhir.validate_structure(patched, "Task", fhir.Task)
        return await change_task(request, partner, doc["_id"], patched)

    @app.get("/fhir/Task")
    async def search_tasks(
        request: Request,
        focus: str | None = None,
        status: str | None = None,
        owner: str | None = None,
        requester: str | None = None,
        count: int = Query(default=50, alias="_count"),
    ) -> JSONResponse:
        """Tasks by focus (any of several referrals), status (any of several), owner or
        requester (an organisation: `Organization/<id>`, `<system>|<id>` or `<id>`). Only
        Tasks the partner may see are returned."""
        partner = await partner_of(request)
        unknown = set(request.query_params) - SEARCH_PARAMS
        if unknown:
            raise fhir.FhirError(
                400,
                [
                    (
                        "not-supported",
                        f"Unsupported search parameter {sorted(unknown)[0]!s:.40}",
                        None,
                    )
                ],
            )
        if not (focus or status or owner or requester):
            raise fhir.FhirError(
                400,
                [("required", "Search needs focus, status, owner or requester", None)],
            )
        if not 1 <= count <= MAX_SEARCH_VALUES:
            raise fhir.FhirError(
                400, [("invalid", f"_count must be 1 to {MAX_SEARCH_VALUES}", "_count")]
            )
        query: dict[str, Any] = {"tenant": partner.tenant}
        if focus:
            # FHIR search: a comma-separated value means any of them
            ids = list(dict.fromkeys(v.rsplit("/", 1)[-1] for v in focus.split(",") if v))
            if len(ids) > MAX_SEARCH_VALUES:
                raise fhir.FhirError(
                    400,
                    [
                        (
                            "too-costly",
                            f"At most {MAX_SEARCH_VALUES} focus values per search",
                            "focus",
                        )
                    ],
                )
            query["_id"] = {"$in": ids}
        if status:
            query["task.status"] = {"$in": [s for s in status.split(",") if s]}
        if owner:
            query["task.owner"] = fhir.organisation_param(owner)
        if requester:
            query["source_org"] = fhir.organisation_param(requester)
        entries = []
        for doc in await referrals.search(query, limit=count):
            if not domain.may_see(partner.org_id, partner.kind, partner.tenant, doc):
                continue
            task = fhir.render_task(doc, base)
            entries.append(
                {
                    "fullUrl": f"{base}/Task/{task['id']}",
                    "resource": task,
                    "search": {"mode": "match"},
                }
            )
        return fhir_response(
            {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
        )

    @app.get("/internal/referrals/{referral_id}/contact", include_in_schema=False)
    async def person_contact(referral_id: str, request: Request) -> JSONResponse:
        """For the network's notifications service only, at the moment it sends: how to reach
        the person, if they agreed to be contacted and did not ask not to be."""
        partner = await partner_of(request)
        if partner.kind != "service":
            raise fhir.FhirError(403, [("forbidden", "Only network services may ask", None)])
        doc = await referrals.get(referral_id)
        if doc is None or partner.tenant not in ("*", doc["tenant"]):
            raise fhir.FhirError(404, [("not-found", "No such resource", None)])
        received = doc.get("received_event") or {}
        consent = received.get("consent") or {}
        if not consent.get("contact_person") or consent.get("do_not_contact"):
            return JSONResponse({"may_contact": False})
        patient = fhir.contained_patient(doc["service_request"]) or {}
        reach: dict[str, str] = {}
        for telecom in patient.get("telecom") or []:
            system, value = telecom.get("system"), telecom.get("value")
            if system == "email" and value:
                reach.setdefault("email", value)
            if system in ("sms", "phone") and value and telecom.get("use") in (None, "mobile"):
                reach.setdefault("sms", value)
        return JSONResponse(
            {
                "may_contact": True,
                "language": received.get("language"),
                "preferred_channel": consent.get("preferred_channel"),
                **reach,
            },
            headers={"Cache-Control": "no-store"},
        )

    actions_base = settings.actions_base_url or base.rsplit("/fhir", 1)[0] + "/actions"
    actions = (
        ActionVerifier(settings.action_verify_key_file.read_text(), actions_base, replay)
        if settings.action_verify_key_file
        else None
    )

    def action_page(status: int, title: str, text: str, form: str = "") -> HTMLResponse:
        body = (
            "<!doctype html><html lang=en><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>{html.escape(title)}</title><body style='font-family:sans-serif;"
            f"max-width:36em;margin:2em auto'><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(text)}</p>{form}</body></html>"
        )
        return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    WORDS = {"accept": "Accept", "decline": "Decline", "attended": "Record attendance for"}

    @app.get("/actions/{token}", include_in_schema=False)
    async def action_confirm(token: str) -> HTMLResponse:
        """Opening a link changes nothing (mail scanners open links too): it asks to confirm."""
        if actions is None:
            return action_page(404, "Not available", "Action links are not enabled here.")
        try:
            claim = actions.read(token)
        except ActionLinkError as exc:
            return action_page(exc.status, "Link not usable", exc.message)
        choices = ""
        if claim.action == "decline":
            options = "".join(
                f"<option value='{code}'>{html.escape(words)}</option>"
                for code, words in domain.DECLINE_REASONS.items()
            )
            choices = f"<p><label>Why? <select name=reason>{options}</select></label></p>"
        form = (
            f"<form method=post>{choices}<button type=submit>"
            f"{WORDS[claim.action]} this referral</button></form>"
        )
        return action_page(
            200, f"{WORDS[claim.action]} a referral", f"Referral {claim.referral_id[:8]}", form
        )

    @app.post("/actions/{token}", include_in_schema=False)
    async def action_apply(token: str, request: Request) -> HTMLResponse:
        if actions is None:
            return action_page(404, "Not available", "Action links are not enabled here.")
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")[:2000]))
        try:
            claim = actions.read(token)
            partner = registry.get(claim.org_id)
            if partner is None:
                return action_page(403, "Link not usable", "This organisation is not registered.")
            new_task: dict[str, Any] = {
                "status": {"accept": "accepted", "decline": "rejected", "attended": "in-progress"}[
                    claim.action
                ]
            }
            if claim.action == "decline":
                reason = form.get("reason", "other")
                code = reason if reason in domain.DECLINE_REASONS else "other"
                new_task["statusReason"] = {
                    "coding": [{"system": domain.DECLINE_REASON_SYSTEM, "code": code}]
                }
            await actions.use(token)
            await referrals.change_by_partner(
                claim.referral_id,
                claim.org_id,
                lambda current: domain.partner_change(
                    current, claim.org_id, partner.kind, new_task
                ),
                None,
                current_trace_id(),
            )
        except ActionLinkError as exc:
            return action_page(exc.status, "Link not usable", exc.message)
        except domain.TaskChangeRefused as refused:
            return action_page(refused.status, "Not changed", refused.message)
        done = {"accept": "accepted", "decline": "declined", "attended": "recorded"}
        return action_page(
            200, "Thank you", f"The referral is {done[claim.action]}. You can close this page."
        )

    @app.api_route("/fhir/{resource_type}", methods=["GET", "POST", "PUT", "DELETE"])
    async def unsupported(resource_type: str) -> Response:
        raise fhir.FhirError(
            404, [("not-supported", "Resource type or interaction not supported here", None)]
        )

    return app, runtime
