"""Fixtures shared by every test: the embedded Kafka-protocol broker and MongoDB-wire server,
started once per run on free ports (never skipped: they are the default infrastructure)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkwell.devstack import EmbeddedStack, free_port

ROOT = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    data_dir = tmp_path_factory.mktemp("embedded")
    embedded = EmbeddedStack(data_dir, kafka_port=free_port(), mongo_port=free_port())
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture
def database_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("LINKWELL_TRACE_FILE", str(ROOT / "data" / "test-traces" / "spans.jsonl"))


class WebhookReceiver:
    """A real HTTP server on loopback that records what it is sent (a partner's endpoint)."""

    def __init__(self, fail_first: int = 0) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
                receiver.received.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(body)})
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


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
