"""Test peers for partner-facing behaviour: a real webhook endpoint on loopback, and the whole
network running as processes (for end-to-end tests and benchmarks)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from linkwell.auth import PartnerAuth
from linkwell.devstack import EmbeddedStack, free_port
from linkwell.network import Network
from linkwell.partners import with_demo_keys

GP = "gp-demo-headingley"


class WebhookReceiver:
    """A real HTTP server on loopback that records what it is sent (a partner's endpoint)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(body),
                        "raw": body.decode(),
                    }
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/webhooks/gp") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()


class RunningNetwork:
    """The network's processes plus the GP's webhook endpoint, with a GP system's calls."""

    def __init__(self, net: Network, receiver: WebhookReceiver) -> None:
        self.net = net
        self.receiver = receiver
        self.fhir = f"{net.url('referral-intake')}/fhir"
        self.client = httpx.Client(timeout=10, auth=self.auth(GP))

    def auth(self, org_id: str) -> PartnerAuth:
        """Signs requests as one of the demo partners (a fresh token per request)."""
        key = (self.net.data_dir / "demo-keys" / f"{org_id}.pem").read_text()
        return PartnerAuth(key, org_id, self.net.env["INTAKE_PUBLIC_BASE_URL"])

    def post_referral(
        self, resource: dict[str, Any], request_id: str | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/fhir+json"}
        if request_id:
            headers["X-Request-ID"] = request_id
        return self.client.post(f"{self.fhir}/ServiceRequest", json=resource, headers=headers)

    def task(self, referral_id: str) -> dict[str, Any]:
        bundle = self.client.get(
            f"{self.fhir}/Task", params={"focus": f"ServiceRequest/{referral_id}"}
        ).json()
        return bundle["entry"][0]["resource"]

    def wait_for_task(
        self, referral_id: str, states: set[str], timeout: float = 30.0
    ) -> tuple[dict[str, Any], float]:
        start = time.monotonic()
        while True:
            task = self.task(referral_id)
            if task["businessStatus"]["coding"][0]["code"] in states:
                return task, time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise AssertionError(f"Task stuck at {task['businessStatus']['coding'][0]['code']}")
            time.sleep(0.05)

    def close(self) -> None:
        self.client.close()
        self.net.stop()
        self.receiver.close()


def launch(root: Path, data_dir: Path, extra_env: dict[str, str] | None = None) -> RunningNetwork:
    """Start a broker, a database and the four services as processes, all on free ports."""
    receiver = WebhookReceiver()
    partners_file = with_demo_keys(
        root / "config" / "partners.demo.json", data_dir / "demo-keys", data_dir / "partners.json"
    )
    partners = json.loads(partners_file.read_text())
    for partner in partners["partners"]:
        if partner["org_id"] == GP:
            partner["callback_url"] = receiver.url(f"/webhooks/{GP}")
    partners_file.write_text(json.dumps(partners))

    stack = EmbeddedStack(data_dir, kafka_port=free_port(), mongo_port=free_port()).start()
    net = Network.prepare(
        root,
        data_dir,
        random_ports=True,
        extra_env={
            **stack.env(),
            "LINKWELL_TRACE_FILE": str(data_dir / "traces" / "spans.jsonl"),
            "LINKWELL_PARTNERS_FILE": str(partners_file),
            "CAPACITY_RESUME_AFTER_SECONDS": "2",
            "CAPACITY_SWEEP_EVERY_SECONDS": "1",
            **(extra_env or {}),
        },
    )
    net.stack = stack
    running = RunningNetwork(net, receiver)
    try:
        net.start_services()
    except BaseException:
        running.close()
        raise
    return running


def referral(sample: dict[str, Any], reference: str) -> dict[str, Any]:
    """The sample referral as a distinct referral from the GP system (its own identifier)."""
    resource = json.loads(json.dumps(sample))
    resource["identifier"] = [
        {"system": "https://linkwell.example/Id/demo-gp-referral", "value": reference}
    ]
    return resource


class CapacityCluster:
    """Several capacity processes sharing one broker and one database, fed directly on Kafka:
    for the stress test and the contention benchmark."""

    def __init__(self, root: Path, data_dir: Path, instances: int, partitions: int) -> None:
        self.stack = EmbeddedStack(data_dir, kafka_port=free_port(), mongo_port=free_port())
        self.stack.start()
        self.partitions = partitions
        self.instances = instances
        self.nets: list[Network] = []
        self.root, self.data_dir = root, data_dir

    async def create_topics(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        from linkwell_schemas.events import TOPICS

        admin = AIOKafkaAdminClient(bootstrap_servers=self.stack.kafka_bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=self.partitions, replication_factor=1)
                    for t in TOPICS
                    if "{" not in t
                ]
            )
        finally:
            await admin.close()

    def start(self) -> None:
        for n in range(self.instances):
            net = Network.prepare(
                self.root,
                self.data_dir / f"capacity-{n}",
                random_ports=True,
                extra_env={
                    **self.stack.env(),
                    "LINKWELL_PARTNERS_FILE": str(self.root / "config" / "partners.demo.json"),
                    "LINKWELL_TRACE_FILE": str(self.data_dir / "traces" / "spans.jsonl"),
                    "CAPACITY_RESUME_AFTER_SECONDS": "3",
                    "CAPACITY_SWEEP_EVERY_SECONDS": "1",
                },
            )
            net.start_service("capacity")
            self.nets.append(net)
        for net in self.nets:
            net.wait_ready(names=["capacity"])

    def kill(self, n: int) -> None:
        self.nets[n].kill("capacity")

    def stop(self) -> None:
        for net in self.nets:
            net.stop()
        self.stack.stop()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of the values, for the benchmarks' figures."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]
