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

from linkwell.devstack import EmbeddedStack, free_port
from linkwell.network import Network

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
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
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

    def post_referral(
        self, resource: dict[str, Any], request_id: str | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/fhir+json", "X-Partner-Id": GP}
        if request_id:
            headers["X-Request-ID"] = request_id
        return httpx.post(f"{self.fhir}/ServiceRequest", json=resource, headers=headers, timeout=10)

    def task(self, referral_id: str) -> dict[str, Any]:
        bundle = httpx.get(
            f"{self.fhir}/Task",
            params={"focus": f"ServiceRequest/{referral_id}"},
            headers={"X-Partner-Id": GP},
            timeout=10,
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
        self.net.stop()
        self.receiver.close()


def launch(root: Path, data_dir: Path, extra_env: dict[str, str] | None = None) -> RunningNetwork:
    """Start a broker, a database and the four services as processes, all on free ports."""
    receiver = WebhookReceiver()
    partners = json.loads((root / "config" / "partners.demo.json").read_text())
    for partner in partners["partners"]:
        if partner["org_id"] == GP:
            partner["callback_url"] = receiver.url(f"/webhooks/{GP}")
    partners_file = data_dir / "partners.json"
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
