"""Delivery channels. Webhooks follow the Standard Webhooks specification: a JSON POST with
`webhook-id` (the same on every retry, so the receiver can drop repeats), `webhook-timestamp`
and `webhook-signature` (HMAC-SHA256 over id.timestamp.body with the partner's secret), so
partners verify them with any Standard Webhooks library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx


@dataclass(frozen=True)
class Attempted:
    delivered: bool
    detail: str
    retryable: bool = True


def secret_bytes(secret: str) -> bytes:
    """A Standard Webhooks secret: base64, optionally prefixed `whsec_`."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def signature(secret: str, msg_id: str, timestamp: int, payload: str) -> str:
    signed = f"{msg_id}.{timestamp}.{payload}".encode()
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass
class CircuitBreaker:
    """Per endpoint: after `threshold` failures in a row, stop calling it for `cool_off`
    seconds (deliveries wait, nothing is lost); one success closes it again."""

    threshold: int = 5
    cool_off: float = 30.0
    failures: dict[str, int] = field(default_factory=dict)
    open_until: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def endpoint(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def allows(self, url: str, now: float | None = None) -> bool:
        return self.open_until.get(self.endpoint(url), 0.0) <= (now or time.monotonic())

    def record(self, url: str, ok: bool, now: float | None = None) -> None:
        key = self.endpoint(url)
        if ok:
            self.failures.pop(key, None)
            self.open_until.pop(key, None)
            return
        self.failures[key] = self.failures.get(key, 0) + 1
        if self.failures[key] >= self.threshold:
            self.open_until[key] = (now or time.monotonic()) + self.cool_off
            self.failures[key] = 0


class WebhookChannel:
    def __init__(self, timeout: float = 5.0, breaker: CircuitBreaker | None = None) -> None:
        self.timeout = timeout
        self.breaker = breaker or CircuitBreaker()
        self._client: httpx.AsyncClient | None = None

    async def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def send(
        self,
        url: str,
        delivery_id: str,
        body: dict[str, Any],
        secret: str | None,
        content_type: str = "application/json",
    ) -> Attempted:
        """One attempt. Retrying is the dispatcher's job, on a schedule that survives
        restarts."""
        if not self.breaker.allows(url):
            return Attempted(False, "circuit open: endpoint failing, waiting before retrying")
        payload = json.dumps(body, separators=(",", ":"))
        timestamp = int(time.time())
        headers = {
            "content-type": content_type,
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
        }
        if secret:
            headers["webhook-signature"] = signature(secret, delivery_id, timestamp, payload)
        try:
            response = await (await self.client()).post(url, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            self.breaker.record(url, False)
            return Attempted(False, type(exc).__name__)
        ok = 200 <= response.status_code < 300
        self.breaker.record(url, ok)
        if ok:
            return Attempted(True, f"HTTP {response.status_code}")
        # a 4xx other than timeout or throttling will not get better by trying again
        retryable = response.status_code >= 500 or response.status_code in (408, 429)
        return Attempted(False, f"HTTP {response.status_code}", retryable)


class EmailChannel:
    """Email over SMTP, for organisations with no system to receive webhooks: a plain text
    part always (and nothing that needs a login to act on)."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout = timeout

    def _send(self, to: str, subject: str, text: str, delivery_id: str) -> None:
        import smtplib
        from email.message import EmailMessage
        from email.utils import make_msgid

        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(idstring=delivery_id.replace(":", ".")[:60])
        message["X-Linkwell-Delivery"] = delivery_id
        message.set_content(text)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)

    async def send(self, to: str, subject: str, text: str, delivery_id: str) -> Attempted:
        import asyncio
        import smtplib

        try:
            await asyncio.to_thread(self._send, to, subject, text, delivery_id)
        except smtplib.SMTPRecipientsRefused:
            return Attempted(False, "SMTP recipient refused", retryable=False)
        except (smtplib.SMTPException, OSError) as exc:
            return Attempted(False, type(exc).__name__)
        return Attempted(True, "SMTP accepted")


def rest_hook_bundle(subscription: str, task_url: str, event_number: int) -> dict[str, Any]:
    """A FHIR Subscriptions (R4 backport style) id-only notification: a `history` Bundle whose
    first entry is the subscription status (a Parameters resource) naming the Task that changed;
    the GP system then reads the Task with its own credentials. Sent as a signed webhook with
    content type application/fhir+json."""
    status = {
        "resourceType": "Parameters",
        "meta": {
            "profile": [
                "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                "backport-subscription-status-r4"
            ]
        },
        "parameter": [
            {"name": "subscription", "valueReference": {"reference": subscription}},
            {
                "name": "topic",
                "valueCanonical": "https://linkwell.example/SubscriptionTopic/task-changed",
            },
            {"name": "status", "valueCode": "active"},
            {"name": "type", "valueCode": "event-notification"},
            {"name": "events-since-subscription-start", "valueString": str(event_number)},
            {
                "name": "notification-event",
                "part": [
                    {"name": "event-number", "valueString": str(event_number)},
                    {"name": "focus", "valueReference": {"reference": task_url}},
                ],
            },
        ],
    }
    return {
        "resourceType": "Bundle",
        "type": "history",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": status,
                "request": {"method": "GET", "url": f"{subscription}/$status"},
                "response": {"status": "200"},
            },
            {
                "fullUrl": task_url,
                "request": {"method": "PUT", "url": task_url.split("/fhir/", 1)[-1]},
                "response": {"status": "200"},
            },
        ],
    }


class SmsChannel:
    """Text messages through a provider with the HTTP API shape UK public services use
    (GOV.UK Notify): POST /v2/notifications/sms with a template and personalisation, a bearer
    JWT (HS256, iss = service id, iat) made from the API key."""

    def __init__(self, base_url: str, api_key: str, template_id: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        # a Notify API key: <name>-<service id (uuid)>-<secret (uuid)>
        self.service_id = api_key[-73:-37]
        self.secret = api_key[-36:]
        self.template_id = template_id
        self.timeout = timeout

    async def send(self, phone_number: str, text: str, delivery_id: str) -> Attempted:
        import jwt

        token = jwt.encode(
            {"iss": self.service_id, "iat": int(time.time())}, self.secret, algorithm="HS256"
        )
        body = {
            "phone_number": phone_number,
            "template_id": self.template_id,
            "personalisation": {"message": text},
            "reference": delivery_id,
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(
                    f"{self.base_url}/v2/notifications/sms",
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )
        except httpx.HTTPError as exc:
            return Attempted(False, type(exc).__name__)
        if response.status_code == 201:
            return Attempted(True, "HTTP 201")
        retryable = response.status_code >= 500 or response.status_code == 429
        return Attempted(False, f"HTTP {response.status_code}", retryable)


class ContactBook:
    """How to reach a person who agreed to be contacted, asked of referral-intake at the moment
    of sending and kept nowhere: deliveries to a person store no address."""

    def __init__(
        self,
        intake_fhir_base: str,
        auth: httpx.Auth,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.origin = intake_fhir_base.rstrip("/").rsplit("/fhir", 1)[0]
        self.auth = auth
        self.transport = transport

    async def lookup(self, referral_id: str) -> dict[str, Any] | None:
        """The person's contact details, {"may_contact": False}, or None when intake could not
        be asked (try again later)."""
        try:
            async with httpx.AsyncClient(
                base_url=self.origin, auth=self.auth, transport=self.transport, timeout=10
            ) as client:
                answer = await client.get(f"/internal/referrals/{referral_id}/contact")
        except httpx.HTTPError:
            return None
        if answer.status_code != 200:
            return None if answer.status_code >= 500 else {"may_contact": False}
        found: dict[str, Any] = answer.json()
        return found
