"""A GP system subscribed to its referrals' Tasks gets id-only FHIR rest-hook notifications;
a group with only a mobile phone gets a text through a GOV.UK Notify-shaped SMS API. Both
against real HTTP servers on loopback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from fhir.resources.R4B.bundle import Bundle

from linkwell.documents import MemoryDocumentStore
from linkwell.partners import Partner
from linkwell_schemas.events import CapacityStale, Organisation, PlaceReserved, ReferralReceived
from notifications.app import build
from notifications.config import NotifySettings

SERVICE_ID, SECRET = str(uuid.uuid4()), str(uuid.uuid4())
API_KEY = f"linkwell_test-{SERVICE_ID}-{SECRET}"


class NotifyShapedApi:
    """Accepts what GOV.UK Notify accepts: a bearer JWT from the API key, and a body naming a
    phone number, a template and its personalisation."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                token = self.headers["authorization"].removeprefix("Bearer ")
                try:
                    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
                    ok = claims["iss"] == SERVICE_ID and abs(claims["iat"] - time.time()) < 30
                except jwt.PyJWTError:
                    ok = False
                valid = self.path == "/v2/notifications/sms" and {
                    "phone_number",
                    "template_id",
                    "personalisation",
                } <= set(body)
                status = 201 if ok and valid else 403 if not ok else 400
                if status == 201:
                    api.sent.append(body)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"id": "sent"}')

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def notify_api() -> Iterator[NotifyShapedApi]:
    api = NotifyShapedApi()
    yield api
    api.server.shutdown()


def events(provider: str | None = None) -> tuple[ReferralReceived, PlaceReserved]:
    return (
        ReferralReceived(
            producer="referral-intake",
            tenant="t",
            correlation_id="r1",
            referral_id="r1",
            source=Organisation(org_id="gp-1", kind="gp"),
            fhir_reference="ServiceRequest/r1",
        ),
        PlaceReserved(
            producer="capacity",
            tenant="t",
            correlation_id="r1",
            referral_id="r1",
            asset_id="lunch",
            asset_name="Lunch club",
            provider_org=provider,
            hold_expires_at=datetime.now(UTC) + timedelta(days=3),
        ),
    )


async def test_gp_system_gets_an_id_only_rest_hook_naming_the_task(webhook_receiver) -> None:
    gp = Partner(
        org_id="gp-1",
        name="GP",
        kind="gp",
        tenant="t",
        fhir_rest_hook_url=webhook_receiver.url("/fhir-hooks/gp-1"),
    )
    app, _ = build(
        NotifySettings(intake_fhir_base="https://intake.example/fhir"),
        store=MemoryDocumentStore(),
        partners=[gp],
    )
    received, held = events()
    await app.state.notifier.on_referral_received(received)
    await app.state.notifier.notify(held)
    [hook] = webhook_receiver.received
    assert hook["headers"]["content-type"] == "application/fhir+json"
    bundle = Bundle.model_validate(hook["body"])
    assert bundle.type == "history"
    status = hook["body"]["entry"][0]["resource"]
    event = next(p for p in status["parameter"] if p["name"] == "notification-event")
    focus = next(p for p in event["part"] if p["name"] == "focus")
    assert focus["valueReference"]["reference"] == "https://intake.example/fhir/Task/r1"
    assert "resource" not in hook["body"]["entry"][1]  # id-only: no content travels


async def test_group_with_a_mobile_gets_a_text_through_a_notify_shaped_api(notify_api) -> None:
    gp = Partner(org_id="gp-1", name="GP", kind="gp", tenant="t")
    club = Partner(
        org_id="vcse-lunch", name="Lunch club", kind="vcse", tenant="t", sms_number="07700900123"
    )
    app, _ = build(
        NotifySettings(
            sms_base_url=notify_api.url, sms_api_key=API_KEY, sms_template_id=str(uuid.uuid4())
        ),
        store=MemoryDocumentStore(),
        partners=[gp, club],
    )
    received, held = events(provider="vcse-lunch")
    await app.state.notifier.on_referral_received(received)
    await app.state.notifier.notify(held)
    await app.state.notifier.notify(held)  # redelivered: one text only
    [text] = notify_api.sent
    assert text["phone_number"] == "07700900123"
    assert text["personalisation"]["message"].startswith("A referral is waiting for a place at")
    deliveries = await app.state.notifier.deliveries.listing(referral_id="r1")
    assert [(d["channel"], d["state"]) for d in deliveries] == [("sms", "delivered")]


async def test_a_wrong_sms_api_key_is_not_retried_forever(notify_api) -> None:
    gp = Partner(org_id="gp-1", name="GP", kind="gp", tenant="t")
    club = Partner(
        org_id="vcse-lunch", name="Lunch club", kind="vcse", tenant="t", sms_number="07700900123"
    )
    wrong = f"linkwell_test-{SERVICE_ID}-{uuid.uuid4()}"
    app, _ = build(
        NotifySettings(sms_base_url=notify_api.url, sms_api_key=wrong, sms_template_id="t"),
        store=MemoryDocumentStore(),
        partners=[gp, club],
    )
    received, held = events(provider="vcse-lunch")
    await app.state.notifier.on_referral_received(received)
    await app.state.notifier.notify(held)
    [delivery] = await app.state.notifier.deliveries.listing(referral_id="r1")
    assert (delivery["state"], delivery["last_detail"]) == ("dead", "HTTP 403")
    assert notify_api.sent == []


async def test_provider_is_asked_to_confirm_stale_capacity_once(webhook_receiver) -> None:
    club = Partner(
        org_id="vcse-lunch",
        name="Lunch club",
        kind="vcse",
        tenant="t",
        callback_url=webhook_receiver.url("/lunch"),
    )
    app, _ = build(NotifySettings(), store=MemoryDocumentStore(), partners=[club])
    stale = CapacityStale(
        producer="capacity",
        tenant="t",
        correlation_id="lunch",
        asset_id="lunch",
        provider_org="vcse-lunch",
        asset_name="Lunch club",
    )
    await app.state.notifier.on_capacity_stale(stale)
    await app.state.notifier.on_capacity_stale(stale)  # redelivered
    [asked] = webhook_receiver.received
    assert asked["body"]["summary"].startswith("Please confirm how many places Lunch club has")
    assert asked["body"]["asset_id"] == "lunch"
