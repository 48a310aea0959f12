"""Reminders are events: a provider that has not answered is reminded, a hold about to lapse
is flagged to both sides, a referral that has not been placed is raised with the referrer;
each once, and none after a partner has answered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from linkwell.documents import MemoryDocumentStore, change
from linkwell.partners import Partner
from linkwell_schemas.events import (
    Organisation,
    PlaceReserved,
    ReferralReceived,
    ReferralStatus,
    ReferralUpdated,
)
from notifications.app import build
from notifications.config import NotifySettings

DAY = 86400


@pytest.fixture
async def network(webhook_receiver) -> AsyncIterator[tuple[Any, Any, Any]]:
    partners = [
        Partner(
            org_id="gp-1",
            name="GP",
            kind="gp",
            tenant="t",
            callback_url=webhook_receiver.url("/gp"),
        ),
        Partner(
            org_id="vcse-lunch",
            name="Lunch club",
            kind="vcse",
            tenant="t",
            callback_url=webhook_receiver.url("/lunch"),
        ),
    ]
    app, runtime = build(NotifySettings(), store=MemoryDocumentStore(), partners=partners)
    async with TestKafkaBroker(runtime.broker) as broker:
        await runtime.start()
        yield app, runtime, broker
        await runtime.relay.stop()


async def send(broker, event) -> None:
    await broker.publish(event.model_dump_json().encode(), event.topic)


def received() -> ReferralReceived:
    return ReferralReceived(
        producer="referral-intake",
        tenant="t",
        correlation_id="r1",
        referral_id="r1",
        source=Organisation(org_id="gp-1", kind="gp"),
        fhir_reference="ServiceRequest/r1",
    )


async def age(app, days: float, hold_days: float | None = None) -> None:
    def older(doc):
        doc["awaiting"]["since"] -= days * DAY
        if hold_days is not None:
            doc["awaiting"]["hold_expires_at"] = time.time() + hold_days * DAY
        return doc

    await change(app.state.notifier.store.documents, "referrals", "r1", older)


async def remind(app, runtime) -> int:
    count = await app.state.notifier.remind()
    await runtime.relay.relay_once()  # the reminder events go out and come back to be told
    return count


def told(receiver, path: str) -> list[str]:
    return [r["body"]["summary"] for r in receiver.received if r["path"] == path]


async def eventually_told(receiver, path: str, words: str, seconds: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while not any(words in summary for summary in told(receiver, path)):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_unanswered_provider_is_reminded_once_and_not_after_answering(
    network, webhook_receiver
) -> None:
    app, runtime, broker = network
    await send(broker, received())
    held = PlaceReserved(
        producer="capacity",
        tenant="t",
        correlation_id="r1",
        referral_id="r1",
        asset_id="lunch",
        asset_name="Lunch club",
        provider_org="vcse-lunch",
        hold_expires_at=datetime.now(UTC) + timedelta(days=3),
    )
    await send(broker, held)
    assert await remind(app, runtime) == 0  # nothing due yet
    await age(app, days=4, hold_days=2)
    assert await remind(app, runtime) == 1
    assert await remind(app, runtime) == 0  # once
    assert told(webhook_receiver, "/lunch")[-1].startswith(
        "Reminder: a referral is still waiting for your answer at Lunch club"
    )
    await send(
        broker,
        ReferralUpdated(
            producer="referral-intake",
            tenant="t",
            correlation_id="r1",
            referral_id="r1",
            status=ReferralStatus.accepted,
            by="vcse-lunch",
        ),
    )
    assert (await app.state.notifier.store.get("r1"))["awaiting"] is None  # answered
    assert await remind(app, runtime) == 0


async def test_hold_about_to_lapse_is_flagged_to_both_sides(network, webhook_receiver) -> None:
    app, runtime, broker = network
    await send(broker, received())
    await send(
        broker,
        PlaceReserved(
            producer="capacity",
            tenant="t",
            correlation_id="r1",
            referral_id="r1",
            asset_id="lunch",
            asset_name="Lunch club",
            provider_org="vcse-lunch",
            hold_expires_at=datetime.now(UTC) + timedelta(hours=5),
        ),
    )
    assert await remind(app, runtime) == 1
    # the held-place notice and the reminder are separate deliveries: either may land first
    assert await eventually_told(webhook_receiver, "/lunch", "will be released")
    assert await eventually_told(webhook_receiver, "/gp", "has not been taken up yet")


async def test_referral_never_placed_is_raised_with_the_referrer(network, webhook_receiver) -> None:
    app, runtime, broker = network
    await send(broker, received())
    await age(app, days=3)
    assert await remind(app, runtime) == 1
    assert told(webhook_receiver, "/gp") == [
        "The referral has not been placed yet; a link worker may need to help"
    ]
