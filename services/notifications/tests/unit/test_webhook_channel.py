"""Webhooks a partner can verify with an off-the-shelf Standard Webhooks library, and an
endpoint that keeps failing is left alone for a while rather than hammered."""

from __future__ import annotations

import base64
import os

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from notifications.channels import CircuitBreaker, WebhookChannel

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


async def test_webhooks_verify_with_the_standard_webhooks_library(webhook_receiver) -> None:
    channel = WebhookChannel()
    body = {"type": "capacity.place-reserved.v1", "referral_id": "r1", "summary": "held"}
    result = await channel.send(webhook_receiver.url(), "evt-1:gp-1:webhook", body, SECRET)
    await channel.close()
    assert result.delivered
    [got] = webhook_receiver.received
    headers = {k.lower(): v for k, v in got["headers"].items()}
    assert headers["webhook-id"] == "evt-1:gp-1:webhook"
    assert Webhook(SECRET).verify(got["raw"], headers) == body
    with pytest.raises(WebhookVerificationError):  # a tampered body does not verify
        Webhook(SECRET).verify(got["raw"].replace("r1", "r2"), headers)
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(WebhookVerificationError):  # nor does another partner's secret
        Webhook(other).verify(got["raw"], headers)


async def test_circuit_opens_after_repeated_failures_and_closes_after_cool_off(
    webhook_receiver,
) -> None:
    webhook_receiver.fail_first = 3
    breaker = CircuitBreaker(threshold=3, cool_off=60)
    channel = WebhookChannel(breaker=breaker)
    url = webhook_receiver.url()
    results = [await channel.send(url, f"d{n}", {"n": n}, None) for n in range(5)]
    assert [r.detail for r in results] == [
        "HTTP 503",
        "HTTP 503",
        "HTTP 503",
        "circuit open: endpoint failing, waiting before retrying",
        "circuit open: endpoint failing, waiting before retrying",
    ]
    assert len(webhook_receiver.received) == 0  # the endpoint was not called while open
    breaker.open_until.clear()  # cool-off over
    assert (await channel.send(url, "d5", {"n": 5}, None)).delivered
    await channel.close()
