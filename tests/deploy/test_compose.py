"""docker-compose.yml is valid Compose, builds what exists, and configures only what the
services read. (No Docker engine here: the file is checked, not run.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from pydantic import AliasChoices

from capacity.config import CapacitySettings
from linkwell.network import SERVICES
from linkwell_schemas.events import COMPACTED_TOPICS, TOPICS, dead_letter_topic
from matching.config import MatchingSettings
from notifications.config import NotifySettings
from referral_intake.config import IntakeSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SETTINGS = {
    "referral-intake": IntakeSettings,
    "matching": MatchingSettings,
    "capacity": CapacitySettings,
    "notifications": NotifySettings,
}
# read straight from the environment, outside any settings class (libs/src/linkwell)
PROCESS_ENV = {"LINKWELL_TRACE_FILE", "OTEL_EXPORTER_OTLP_ENDPOINT"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def variables_read(settings: type) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    names = set(PROCESS_ENV)
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice) for choice in alias.choices}
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def test_compose_file_follows_the_compose_specification(compose) -> None:
    schema = json.loads((ROOT / "deploy" / "schemas" / "compose-spec.json").read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(compose), key=lambda e: e.path)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_every_service_of_the_network_runs_with_health_checks(compose) -> None:
    services = compose["services"]
    assert set(SETTINGS) <= set(services)
    for name in SETTINGS:
        service = services[name]
        check = " ".join(service["healthcheck"]["test"])
        port = SERVICES[name][2]
        assert f"http://localhost:{port}/readyz" in check, name
        assert service["depends_on"]["kafka-topics"]["condition"] == (
            "service_completed_successfully"
        )
        assert service["depends_on"]["mongodb-init"]["condition"] == (
            "service_completed_successfully"
        )
    for infra in ("kafka", "mongodb"):
        assert services[infra]["healthcheck"]["test"], infra
    assert "--replSet" in services["mongodb"]["command"]
    assert "rs.initiate" in " ".join(services["mongodb-init"]["command"])
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "16686:16686" in services["jaeger"]["ports"]
    assert services["referral-intake"]["ports"] == ["8080:8080"]


def test_every_build_has_a_dockerfile_whose_entry_point_exists(compose) -> None:
    built = {n: s for n, s in compose["services"].items() if "build" in s}
    assert set(SETTINGS) <= set(built)
    for name, service in built.items():
        dockerfile = ROOT / service["build"]["context"] / service["build"]["dockerfile"]
        assert dockerfile.exists(), name
        text = dockerfile.read_text()
        assert re.search(r"^FROM python:3\.1[1-9]", text, re.M), name
        assert "COPY . /src" in text and "uv export --frozen" in text
        package = re.search(r"--package (\S+)", text).group(1)
        assert (ROOT / "services" / package / "pyproject.toml").exists(), package
        module = re.search(r'CMD \["python", "-m", "(\w+)"\]', text).group(1)
        assert (ROOT / "services" / package / "src" / module / "__main__.py").exists()
        assert re.search(r"^USER \d+", text, re.M), f"{name} runs as root"
        command = service.get("command")
        if command:  # the image's own tool, e.g. linkwell demo-secrets
            help_text = subprocess.run(
                [sys.executable, "-m", "linkwell.cli", command[1], "--help"],
                capture_output=True,
                text=True,
            )
            assert help_text.returncode == 0, help_text.stderr


def test_every_variable_compose_sets_is_one_the_service_reads(compose) -> None:
    for name, settings in SETTINGS.items():
        environment = compose["services"][name]["environment"]
        unknown = set(environment) - variables_read(settings)
        assert not unknown, f"{name} does not read {sorted(unknown)}"


def test_the_files_compose_points_at_exist(compose, tmp_path: Path) -> None:
    command = compose["services"]["demo-secrets"]["command"]
    assert command[:3] == ["linkwell", "demo-secrets", "/secrets"]
    subprocess.run(
        [sys.executable, "-m", "linkwell.cli", "demo-secrets", str(tmp_path), *command[3:]],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    registry = json.loads((tmp_path / "partners.json").read_text())
    callbacks = [p["callback_url"] for p in registry["partners"] if p.get("callback_url")]
    receiver = compose["services"]["demo-receiver"]["command"]
    port = receiver[receiver.index("--port") + 1]
    assert callbacks and all(
        url.startswith(f"http://demo-receiver:{port}/webhooks/") for url in callbacks
    )
    for name in SETTINGS:
        for value in compose["services"][name]["environment"].values():
            value = str(value)
            if value.startswith("/secrets/"):
                assert (tmp_path / value.removeprefix("/secrets/")).exists(), value
            elif value.startswith("/src/"):
                assert (ROOT / value.removeprefix("/src/")).exists(), value
    topics = compose["services"]["kafka-topics"]
    assert "./deploy/base/kafka:/topics:ro" in topics["volumes"]
    assert (ROOT / "deploy" / "base" / "kafka" / "create-topics.sh").exists()


def test_topic_list_has_every_event_topic_and_dead_letters() -> None:
    rows = {}
    for line in (ROOT / "deploy" / "base" / "kafka" / "topics.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            topic, partitions, configs = line.split()
            rows[topic] = (int(partitions), dict(c.split("=") for c in configs.split(",")))
    wanted = set(TOPICS) | {dead_letter_topic(s) for s in SERVICES}
    assert set(rows) == wanted
    for topic, (partitions, configs) in rows.items():
        compacted = topic in COMPACTED_TOPICS
        assert (configs["cleanup.policy"] == "compact") == compacted, topic
        assert partitions >= 1


def test_the_demo_receiver_answers_and_prints_each_notice_once() -> None:
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "linkwell.cli", "demo-receiver", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "demo webhook receiver" in proc.stdout.readline()
        note = json.dumps({"referral_id": "r-1", "summary": "Place held"}).encode()
        for _ in range(2):  # the same webhook-id twice: handled once
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/webhooks/gp-demo-headingley",
                data=note,
                headers={"webhook-id": "msg_1", "content-type": "application/json"},
            )
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert urllib.request.urlopen(request, timeout=5).status == 204
                    break
                except OSError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
        assert proc.stdout.readline().strip() == (
            "[webhook to gp-demo-headingley] referral r-1: Place held"
        )
        assert "repeated" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
