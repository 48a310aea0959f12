"""The whole network as separate processes on its own embedded broker and database."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from linkwell.devstack import EmbeddedStack, free_port
from linkwell.network import Network
from linkwell.testing import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
GP = "gp-demo-headingley"


class RunningNetwork:
    def __init__(self, net: Network, receiver: Any) -> None:
        self.net = net
        self.receiver = receiver
        self.fhir = f"{net.url('referral-intake')}/fhir"

    def post_referral(self, resource: dict[str, Any], request_id: str | None = None) -> httpx.Response:
        headers = {"Content-Type": "application/fhir+json", "X-Partner-Id": GP}
        if request_id:
            headers["X-Request-ID"] = request_id
        return httpx.post(f"{self.fhir}/ServiceRequest", json=resource, headers=headers, timeout=10)

    def task(self, referral_id: str) -> dict[str, Any]:
        bundle = httpx.get(f"{self.fhir}/Task", params={"focus": f"ServiceRequest/{referral_id}"},
                           headers={"X-Partner-Id": GP}, timeout=10).json()
        return bundle["entry"][0]["resource"]

    def wait_for_task(self, referral_id: str, states: set[str], timeout: float = 30.0
                      ) -> tuple[dict[str, Any], float]:
        start = time.monotonic()
        while True:
            task = self.task(referral_id)
            if task["businessStatus"]["coding"][0]["code"] in states:
                return task, time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise AssertionError(f"Task stuck at {task['businessStatus']['coding'][0]['code']}")
            time.sleep(0.05)


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    data_dir = tmp_path_factory.mktemp("network")
    receiver = WebhookReceiver()
    partners = json.loads((ROOT / "config" / "partners.demo.json").read_text())
    for partner in partners["partners"]:
        if partner["org_id"] == GP:
            partner["callback_url"] = receiver.url(f"/webhooks/{GP}")
    partners_file = data_dir / "partners.json"
    partners_file.write_text(json.dumps(partners))

    stack = EmbeddedStack(data_dir, kafka_port=free_port(), mongo_port=free_port()).start()
    net = Network.prepare(ROOT, data_dir, random_ports=True, extra_env={
        **stack.env(),
        "LINKWELL_TRACE_FILE": str(data_dir / "traces" / "spans.jsonl"),
        "LINKWELL_PARTNERS_FILE": str(partners_file),
        "CAPACITY_RESUME_AFTER_SECONDS": "2",
        "CAPACITY_SWEEP_EVERY_SECONDS": "1",
    })
    net.stack = stack
    try:
        net.start_services()
        yield RunningNetwork(net, receiver)
    finally:
        net.stop()
        receiver.close()
