"""Fixtures shared by every test: the embedded Kafka-protocol broker and MongoDB-wire server,
started once per run on free ports (never skipped: they are the default infrastructure)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkwell.devstack import EmbeddedStack, free_port
from linkwell.testing import WebhookReceiver

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


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
