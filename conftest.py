"""Fixtures shared by every test: the embedded Kafka-protocol broker and MongoDB-wire server,
started once per run on free ports (never skipped: they are the default infrastructure), and
Apache Kafka plus MongoDB in containers, which run only where a Docker engine answers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Infrastructure:
    """Where a test's broker and database are: the embedded pair or real containers."""

    name: str
    kafka_bootstrap_servers: str
    mongodb_url: str


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # no socket, no daemon, no permission: all mean "no Docker here"
        return False
    return True


@pytest.fixture(scope="session")
def containers() -> Iterator[Infrastructure]:
    """Apache Kafka and MongoDB (the production engines) in containers."""
    if not docker_answers():
        pytest.skip("no Docker engine answers: the Kafka and MongoDB container runs are skipped")
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mongodb import MongoDbContainer

    with (
        KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as kafka,
        MongoDbContainer("mongo:7.0") as mongo,
    ):
        yield Infrastructure("containers", kafka.get_bootstrap_server(), mongo.get_connection_url())


@pytest.fixture(params=["embedded", pytest.param("containers", marks=pytest.mark.containers)])
def infrastructure(request: pytest.FixtureRequest) -> Infrastructure:
    """Runs a test once on the embedded pair and once on Kafka + MongoDB containers."""
    if request.param == "containers":
        return request.getfixturevalue("containers")
    stack: EmbeddedStack = request.getfixturevalue("stack")
    return Infrastructure("embedded", stack.kafka_bootstrap_servers, stack.mongodb_url)


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
