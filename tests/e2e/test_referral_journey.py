"""A GP referral flows through all four services, as separate processes, on a real broker and
database: the Task reaches a held place, the referrer is told, one trace covers every hop."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from standardwebhooks import Webhook

from linkwell import ops
from linkwell.telemetry import read_spans, referral_traces
from linkwell.testing import GP as GP_ID
from linkwell.testing import referral
from linkwell_schemas.events import ReferralReceived, dead_letter_topic

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "examples" / "fhir" / "social-prescribing-referral.json").read_text())
SDOH_FOOD = json.loads(
    (
        ROOT
        / "services"
        / "referral-intake"
        / "tests"
        / "fixtures"
        / "fhir"
        / "01_sdohcc_servicerequest_food_pantry.json"
    ).read_text()
)


def send_raw(bootstrap: str, topic: str, value: bytes, key: bytes) -> None:
    """Put bytes on a topic as a faulty producer would."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    asyncio.run(send())


def test_gp_referral_gets_a_place_held_the_referrer_told_and_one_trace(network) -> None:
    created = network.post_referral(SAMPLE)
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    assert created.headers["location"].endswith(f"/ServiceRequest/{referral_id}")

    task, _ = network.wait_for_task(referral_id, {"place-held"}, timeout=60)
    assert task["status"] == "received"
    assert task["code"]["coding"][0]["code"] == "fulfill"
    held = task["output"][0]["valueReference"]
    assert held["identifier"]["system"] == "https://linkwell.example/Id/asset"
    assert held["display"]  # the name of the asset holding the place
    assert task["owner"]["identifier"]["value"].startswith("vcse-")

    deadline = time.monotonic() + 30
    while not any(r["body"]["referral_id"] == referral_id for r in network.receiver.received):
        assert time.monotonic() < deadline, "referrer never told"
        time.sleep(0.1)
    told = next(r for r in network.receiver.received if r["body"]["referral_id"] == referral_id)
    assert told["body"]["summary"].startswith(f"A place is held at {held['display']}")
    assert "9000000009" not in json.dumps(told)

    deadline = time.monotonic() + 30
    while "note" not in task:  # the delivery comes back to the Task
        assert time.monotonic() < deadline, "delivery never recorded on the Task"
        time.sleep(0.1)
        task = network.task(referral_id)
    assert task["note"][0]["text"] == "referrer informed by webhook: delivered"

    spans_file = Path(network.net.env["LINKWELL_TRACE_FILE"])
    deadline = time.monotonic() + 10
    while True:
        traces = referral_traces(read_spans(spans_file), referral_id)
        services = {s["service"] for spans in traces.values() for s in spans}
        if len(services) == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    first_trace = [
        t
        for t, spans in traces.items()
        if any(s["name"].startswith("POST /fhir/ServiceRequest") for s in spans)
    ]
    assert len(first_trace) == 1
    spans = traces[first_trace[0]]
    assert {s["service"] for s in spans} == {
        "referral-intake",
        "matching",
        "capacity",
        "notifications",
    }
    assert not any("9000000009" in json.dumps(s) for s in spans)

    printed = subprocess.run(
        [sys.executable, "-m", "linkwell.cli", "trace", referral_id, "--file", str(spans_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"trace {first_trace[0]}" in printed
    assert "capacity" in printed and "POST /fhir/ServiceRequest" in printed


def test_task_shows_the_held_place_within_two_seconds_once_warm(network) -> None:
    network.wait_for_task(
        network.post_referral(SAMPLE, request_id="warm-up").json()["id"],
        {"place-held", "waitlisted"},
        timeout=60,
    )
    created = network.post_referral(referral(SAMPLE, "timed-0001"))
    _, took = network.wait_for_task(created.json()["id"], {"place-held", "waitlisted"})
    assert took < 2.0, f"Task took {took:.2f}s to show the outcome"


def test_real_gravity_sdoh_food_referral_is_matched_to_a_food_asset(network) -> None:
    created = network.post_referral(SDOH_FOOD)
    assert created.status_code == 201, created.text
    task, _ = network.wait_for_task(created.json()["id"], {"place-held", "waitlisted"}, timeout=60)
    assert task["output"][0]["valueReference"]["identifier"]["value"] in {
        "burley-community-pantry",
        "headingley-lunch-club",
    }


def test_same_referral_sent_twice_is_one_referral(network) -> None:
    resource = referral(SAMPLE, "twice-0001")
    first, second = network.post_referral(resource), network.post_referral(resource)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]


def test_malformed_event_is_dead_lettered_and_the_next_referral_still_flows(network) -> None:
    bootstrap = network.net.env["KAFKA_BOOTSTRAP_SERVERS"]

    send_raw(bootstrap, ReferralReceived.topic, b'{"referral_id": ', b"poison")
    created = network.post_referral(referral(SAMPLE, "after-poison-0001"))
    assert created.status_code == 201
    network.wait_for_task(created.json()["id"], {"place-held", "waitlisted"}, timeout=60)

    async def dead_letters() -> list[dict]:
        letters = AIOKafkaConsumer(
            dead_letter_topic("matching"),
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            group_id="e2e-dlq-reader",
        )
        await letters.start()
        records: list[dict] = []
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while not records and asyncio.get_running_loop().time() < deadline:
                got = await letters.getmany(timeout_ms=2_000)
                records += [json.loads(r.value) for batch in got.values() for r in batch]
        finally:
            await letters.stop()
        return records

    records = asyncio.run(dead_letters())
    assert [r["origin_key"] for r in records] == ["poison"]
    assert records[0]["origin_topic"] == ReferralReceived.topic
    assert records[0]["consumer_group"] == f"matching.{ReferralReceived.topic}"
    assert records[0]["payload"] == '{"referral_id": '


def test_referrer_down_for_a_while_is_told_once_it_recovers(network) -> None:
    network.receiver.fail_first = 3  # the practice's endpoint answers 503 three times
    created = network.post_referral(referral(SAMPLE, "while-down-0001"))
    referral_id = created.json()["id"]
    network.wait_for_task(referral_id, {"place-held", "waitlisted"}, timeout=60)
    deadline = time.monotonic() + 60
    while not [r for r in network.receiver.received if r["body"]["referral_id"] == referral_id]:
        assert time.monotonic() < deadline, "never delivered after the endpoint recovered"
        time.sleep(0.2)
    time.sleep(3)  # any duplicate would have arrived by now
    told = [r for r in network.receiver.received if r["body"]["referral_id"] == referral_id]
    assert len(told) == 1
    secret = json.loads((network.net.data_dir / "partners.json").read_text())["partners"][0][
        "webhook_secret"
    ]
    headers = {k.lower(): v for k, v in told[0]["headers"].items()}
    assert Webhook(secret).verify(told[0]["raw"], headers)["referral_id"] == referral_id
    task = network.task(referral_id)
    deadline = time.monotonic() + 30
    while "delivered" not in json.dumps(task.get("note", [])):
        assert time.monotonic() < deadline, "the delivery never reached the Task"
        time.sleep(0.2)
        task = network.task(referral_id)
    assert "retrying" in json.dumps(task["note"])  # the Task shows the failed attempts too


def test_ops_command_shows_lag_dead_letters_and_one_referral_everywhere(network) -> None:
    bootstrap = network.net.env["KAFKA_BOOTSTRAP_SERVERS"]

    send_raw(bootstrap, ReferralReceived.topic, b"not json", b"ops-poison")
    created = network.post_referral(referral(SAMPLE, "ops-0001"))
    referral_id = created.json()["id"]
    network.wait_for_task(referral_id, {"place-held", "waitlisted"}, timeout=60)

    deadline = time.monotonic() + 30
    while True:
        lag = {row["group"]: row["lag"] for row in asyncio.run(ops.consumer_lag(bootstrap))}
        if lag.get("matching.intake.referral-received.v1") == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert lag["matching.intake.referral-received.v1"] == 0
    assert "capacity.matching.match-proposed.v1" in lag

    letters = asyncio.run(ops.dead_letters(bootstrap, "matching"))
    mine = [letter for letter in letters if letter["origin_key"] == "ops-poison"]
    assert mine and mine[0]["error_type"] == "ValidationError"
    assert all("payload" not in letter for letter in letters)  # bodies are not printed

    urls = {name: network.net.url(name) for name in ops.SERVICES}
    token = network.auth(GP_ID)

    def fresh_headers() -> dict[str, str]:  # a partner token is good for one request
        request = httpx.Request("GET", network.fhir)
        return {"Authorization": next(token.auth_flow(request)).headers["authorization"]}

    # each service learns of the referral from its own consumer: wait until every one has
    deadline = time.monotonic() + 30
    while True:
        seen = asyncio.run(ops.referral_everywhere(urls, referral_id, fresh_headers()))
        if all("referral_id" in seen[s] for s in ("matching", "notifications")) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.5)
    assert seen["referral-intake"]["business_status"] in {"place-held", "waitlisted"}
    assert seen["capacity"]["state"] in {"held", "waitlisted"}
    assert seen["matching"]["referral_id"] == referral_id
    assert seen["notifications"]["referral_id"] == referral_id


def test_every_service_logs_the_referral_as_json_in_its_trace_and_never_the_person(
    network,
) -> None:
    person = json.loads(json.dumps(SAMPLE))
    person["identifier"][0]["value"] = "demo-logs-0001"
    patient = person["contained"][0]
    patient["identifier"][0]["value"] = "9434765919"
    patient["name"] = [{"family": "Quillfeather", "given": ["Ebenezer"]}]
    patient["telecom"] = [
        {"system": "phone", "value": "07700 900461", "use": "mobile"},
        {"system": "email", "value": "e.quillfeather@example.org"},
    ]
    created = network.post_referral(person)
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    network.wait_for_task(referral_id, {"place-held", "waitlisted"}, timeout=60)

    spans_file = Path(network.net.env["LINKWELL_TRACE_FILE"])
    logs = network.net.data_dir / "logs"
    services = ("referral-intake", "matching", "capacity", "notifications")
    deadline = time.monotonic() + 30
    while True:
        traces = referral_traces(read_spans(spans_file), referral_id)
        posted = [
            t
            for t, spans in traces.items()
            if any(s["name"] == "POST /fhir/ServiceRequest" for s in spans)
        ]
        lines = {
            name: [json.loads(line) for line in (logs / f"{name}.log").read_text().splitlines()]
            for name in services
        }
        in_trace = {
            name
            for name in services
            if posted and any(e.get("trace_id") == posted[0] for e in lines[name])
        }
        if in_trace == set(services) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert in_trace == set(services)  # every service's log leads to the referral's trace

    handled = [
        e
        for e in lines["matching"]
        if e.get("trace_id") == posted[0] and e.get("topic") == "intake.referral-received.v1"
    ]
    assert handled and handled[0]["referral_id"] == referral_id and handled[0]["span_id"]
    accepted = [e for e in lines["referral-intake"] if e.get("trace_id") == posted[0]]
    assert any(e["message"] == "POST /fhir/ServiceRequest 201" for e in accepted)

    text = "".join((logs / f"{name}.log").read_text() for name in services)
    for personal in (
        "9434765919",
        "943 476 5919",
        "Quillfeather",
        "07700 900461",
        "900461",
        "e.quillfeather",
        "1948-03-14",
        "LS6 3HN",
    ):
        assert personal not in text, f"personal data in the logs: {personal[:3]}…"
