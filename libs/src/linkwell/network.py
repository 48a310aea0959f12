"""Running the whole network as separate processes: for `linkwell up`, end-to-end tests and
benchmarks. Each service is started with `python -m <package>` and its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from linkwell.devstack import EmbeddedStack, die_with_parent, free_port, stop_process
from linkwell.partners import action_keys, with_demo_keys

SERVICES: dict[str, tuple[str, str, int]] = {
    # name: (python package, environment prefix, default port)
    "referral-intake": ("referral_intake", "INTAKE_", 8080),
    "matching": ("matching", "MATCHING_", 8081),
    "capacity": ("capacity", "CAPACITY_", 8082),
    "notifications": ("notifications", "NOTIFY_", 8083),
}


@dataclass
class Network:
    root: Path
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stack: EmbeddedStack | None = None

    @classmethod
    def prepare(
        cls,
        root: Path,
        data_dir: Path,
        random_ports: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> Network:
        env = {k: v for k, v in os.environ.items()}
        ports = {
            name: (free_port() if random_ports else default)
            for name, (_, _, default) in SERVICES.items()
        }
        net = cls(root=root, data_dir=data_dir, env=env, ports=ports)
        env.setdefault("LINKWELL_TRACE_FILE", str(data_dir / "traces" / "spans.jsonl"))
        if "LINKWELL_PARTNERS_FILE" not in env and "LINKWELL_PARTNERS_FILE" not in (
            extra_env or {}
        ):
            env["LINKWELL_PARTNERS_FILE"] = str(
                with_demo_keys(
                    root / "config" / "partners.demo.json",
                    data_dir / "demo-keys",
                    data_dir / "partners.json",
                )
            )
        env.setdefault("MATCHING_DIRECTORY_FILE", str(root / "config" / "demo-directory.json"))
        for name, (_, prefix, _) in SERVICES.items():
            env[f"{prefix}PORT"] = str(ports[name])
            env.setdefault(f"{prefix}HOST", "127.0.0.1")
        env["INTAKE_PUBLIC_BASE_URL"] = f"http://localhost:{ports['referral-intake']}/fhir"
        env["NOTIFY_INTAKE_FHIR_BASE"] = env["INTAKE_PUBLIC_BASE_URL"]
        env["CAPACITY_PUBLIC_BASE_URL"] = f"http://localhost:{ports['capacity']}"
        env.setdefault(
            "NOTIFY_SERVICE_KEY_FILE", str(data_dir / "demo-keys" / "linkwell-notifications.pem")
        )
        env["NOTIFY_ACTIONS_BASE_URL"] = f"http://localhost:{ports['referral-intake']}/actions"
        if "NOTIFY_ACTION_SIGNING_KEY_FILE" not in env:
            # the key pair behind zero-login action links: notifications signs, intake checks
            private, public = action_keys(data_dir / "demo-keys")
            env["NOTIFY_ACTION_SIGNING_KEY_FILE"] = str(private)
            env.setdefault("INTAKE_ACTION_VERIFY_KEY_FILE", str(public))
        env.update(extra_env or {})
        return net

    def start_embedded(self, kafka_port: int | None = None, mongo_port: int | None = None) -> None:
        """Start the embedded broker and/or database where no connection string is given."""
        need_kafka = "KAFKA_BOOTSTRAP_SERVERS" not in self.env
        need_mongo = "MONGODB_URL" not in self.env
        if not (need_kafka or need_mongo):
            return
        stack = EmbeddedStack(self.data_dir, kafka_port or 9092, mongo_port or 27017)
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        if need_kafka:
            stack.kafka = stack.start_kafka()
            self.env["KAFKA_BOOTSTRAP_SERVERS"] = stack.kafka_bootstrap_servers
        if need_mongo:
            stack.mongo = stack.start_mongo()
            self.env["MONGODB_URL"] = stack.mongodb_url
        self.stack = stack

    def start_service(self, name: str) -> subprocess.Popen[bytes]:
        package = SERVICES[name][0]
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", package],
            env=self.env,
            cwd=self.root,
            stdout=(logs / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.processes[name] = proc
        return proc

    def start_services(self, timeout: float = 90.0) -> None:
        for name in SERVICES:
            self.start_service(name)
        self.wait_ready(timeout)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def wait_ready(self, timeout: float = 90.0, names: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        for name in names or list(SERVICES):
            while True:
                proc = self.processes[name]
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with code {proc.returncode}; see "
                        f"{self.data_dir / 'logs' / (name + '.log')}"
                    )
                try:
                    if httpx.get(f"{self.url(name)}/readyz", timeout=3).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready within {timeout:.0f}s")
                time.sleep(0.2)

    def kill(self, name: str) -> None:
        """Kill a service abruptly (SIGKILL), as a crash would."""
        proc = self.processes[name]
        os.killpg(proc.pid, 9)
        proc.wait()

    def stop(self) -> None:
        for proc in self.processes.values():
            stop_process(proc)
        self.processes.clear()
        if self.stack is not None:
            self.stack.stop()
