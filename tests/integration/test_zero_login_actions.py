"""A volunteer-run lunch club with no IT: a held place reaches it by email (a real SMTP
server on loopback), with links to accept or decline. Following a link asks to confirm
(opening it changes nothing), confirming updates the referral exactly as a Task update would,
and a tampered, expired or reused link is refused with a clear page."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from linkwell.actions import ActionSigner
from linkwell.auth import PartnerAuth, generate_key
from linkwell.documents import MemoryDocumentStore
from linkwell.partners import Partner
from linkwell_schemas.events import (
    Organisation,
    PlaceReserved,
    ReferralReceived,
    ReferralUpdated,
)
from notifications.app import build as build_notifications
from notifications.config import NotifySettings
from referral_intake.app import build as build_intake
from referral_intake.config import IntakeSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "examples" / "fhir" / "social-prescribing-referral.json").read_text())
ACTIONS = "http://localhost:8080/actions"
GP_KEY, GP_PUBLIC = generate_key()
LINK_KEY, LINK_PUBLIC = generate_key()
GP = Partner(org_id="gp-demo-headingley", name="GP", kind="gp", tenant="t", public_key=GP_PUBLIC)
CLUB = Partner(
    org_id="vcse-lunch", name="Lunch club", kind="vcse", tenant="t", email="lunchclub@example.org"
)


async def test_lunch_club_accepts_from_its_email_without_logging_in(smtp, tmp_path) -> None:
    mailbox, port = smtp
    (tmp_path / "link.pem").write_text(LINK_KEY)
    (tmp_path / "link.pub.pem").write_text(LINK_PUBLIC)
    intake_app, intake = build_intake(
        IntakeSettings(
            action_verify_key_file=tmp_path / "link.pub.pem", redrive_after_seconds=3600
        ),
        store=MemoryDocumentStore(),
        partners=[GP, CLUB],
    )
    updates: list[ReferralUpdated] = []

    @intake.broker.subscriber(ReferralUpdated.topic, group_id="observer")
    async def observe(body: dict) -> None:
        updates.append(ReferralUpdated.model_validate(body))

    notify_app, notify = build_notifications(
        NotifySettings(
            smtp_host="127.0.0.1",
            smtp_port=port,
            action_signing_key_file=tmp_path / "link.pem",
            actions_base_url=ACTIONS,
        ),
        store=MemoryDocumentStore(),
        partners=[GP, CLUB],
    )
    async with (
        TestKafkaBroker(intake.broker) as intake_broker,
        TestKafkaBroker(notify.broker) as notify_broker,
    ):
        await intake.start()
        await notify.start()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=intake_app),
            base_url="http://localhost:8080",
            auth=PartnerAuth(GP_KEY, GP.org_id, "http://localhost:8080/fhir"),
        )
        created = await client.post(
            "/fhir/ServiceRequest", json=SAMPLE, headers={"Content-Type": "application/fhir+json"}
        )
        referral_id = created.json()["id"]
        received = ReferralReceived(
            producer="referral-intake",
            tenant="t",
            correlation_id=referral_id,
            referral_id=referral_id,
            source=Organisation(org_id=GP.org_id, kind="gp"),
            fhir_reference=f"ServiceRequest/{referral_id}",
        )
        held = PlaceReserved(
            producer="capacity",
            tenant="t",
            correlation_id=referral_id,
            referral_id=referral_id,
            asset_id="lunch",
            asset_name="Friendship Lunch Club",
            provider_org=CLUB.org_id,
            hold_expires_at=datetime.now(UTC) + timedelta(days=3),
        )
        await intake_broker.publish(held.model_dump_json().encode(), PlaceReserved.topic)
        await notify_broker.publish(received.model_dump_json().encode(), ReferralReceived.topic)
        await notify_broker.publish(held.model_dump_json().encode(), PlaceReserved.topic)

        [message] = mailbox.messages
        assert message["To"] == "lunchclub@example.org"
        text = message.get_payload(decode=True).decode().replace("\r\n", "\n")
        assert "Friendship Lunch Club" in text and "9000000009" not in text
        accept = re.search(r"Accept:\n(\S+)", text).group(1)
        decline = re.search(r"Decline:\n(\S+)", text).group(1)
        path = accept.removeprefix("http://localhost:8080")

        opened = await client.get(path, auth=None)  # a mail scanner, or the volunteer looking
        assert opened.status_code == 200 and "<form method=post>" in opened.text
        task = (await client.get(f"/fhir/Task/{referral_id}")).json()
        assert task["status"] == "received"  # opening changed nothing

        confirmed = await client.post(path, auth=None)
        assert confirmed.status_code == 200 and "accepted" in confirmed.text
        task = (await client.get(f"/fhir/Task/{referral_id}")).json()
        assert task["status"] == "accepted"
        await intake.relay.relay_once()
        assert [(u.status.value, u.by) for u in updates] == [("accepted", CLUB.org_id)]

        again = await client.post(path, auth=None)
        assert again.status_code == 409 and "already been used" in again.text
        late_decline = await client.post(
            decline.removeprefix("http://localhost:8080"), content="reason=no-capacity", auth=None
        )
        assert late_decline.status_code == 200  # declining after accepting is allowed

        tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        assert (await client.post(tampered, auth=None)).status_code == 400
        expired = ActionSigner(LINK_KEY, ACTIONS).link(
            ACTIONS, referral_id, CLUB.org_id, "accept", time.time() - 60
        )
        page = await client.get(expired.removeprefix("http://localhost:8080"), auth=None)
        assert page.status_code == 410 and "expired" in page.text
        forged = ActionSigner(generate_key()[0], ACTIONS).link(
            ACTIONS, referral_id, CLUB.org_id, "accept", time.time() + 60
        )
        assert (
            await client.post(forged.removeprefix("http://localhost:8080"), auth=None)
        ).status_code == 400
        await client.aclose()
        await intake.relay.stop()
        await notify.relay.stop()
    task_after = updates
    assert [u.status.value for u in task_after][-1] == "declined"
