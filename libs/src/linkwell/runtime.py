"""The moving parts every service runs: Kafka broker client, outbox relay, idempotent consumers,
background sweeps, and an HTTP app with health endpoints. Each service's `app.py` composes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

from linkwell.documents import DocumentStore
from linkwell.messaging import Consumer, OutboxRelay, Publisher
from linkwell.metrics import ServiceMetrics
from linkwell.telemetry import TracingMiddleware
from linkwell_schemas.events import dead_letter_topic

log = logging.getLogger(__name__)

Sweep = Callable[[], Awaitable[Any]]


class ServiceRuntime:
    def __init__(
        self,
        name: str,
        store: DocumentStore,
        outbox_collections: Sequence[str],
        bootstrap_servers: str = "localhost:9092",
        broker: KafkaBroker | None = None,
        session_timeout_ms: int = 6000,
    ) -> None:
        self.name = name
        self.store = store
        self.broker = broker or KafkaBroker(
            bootstrap_servers,
            client_id=name,
            middlewares=[KafkaTelemetryMiddleware()],
            request_timeout_ms=10_000,
            logger=logging.getLogger(f"linkwell.{name}.kafka"),
            # "Received" / "Processed" at debug: the consumer logs one line per message
            # inside its span, with the trace and span ids
            log_level=logging.DEBUG,
        )
        self.publisher = Publisher(self.broker)
        self.consumer = Consumer(
            self.broker, name, self.publisher, session_timeout_ms=session_timeout_ms
        )
        self.relay = OutboxRelay(store, outbox_collections, self.publisher)
        self.metrics = ServiceMetrics(name)
        self.consumer.measured(self.metrics)
        self.relay.metrics = self.metrics
        self._sweeps: list[tuple[str, float, Sweep]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._startup: list[Callable[[], Awaitable[None]]] = []
        self.started = False
        if broker is None:
            self._observe_backlog(bootstrap_servers)

    def _observe_backlog(self, bootstrap_servers: str) -> None:
        """Consumer lag per group and dead-letter depth on /metrics, read from the broker."""
        from linkwell import ops

        latest: dict[str, Any] = {}

        async def read() -> tuple[dict[str, float], float]:
            if latest.get("at", 0.0) > asyncio.get_running_loop().time() - 1.0:
                return latest["lag"], latest["depth"]
            lag, depth = await asyncio.wait_for(
                ops.service_backlog(bootstrap_servers, self.name, dict(self.consumer.groups)),
                timeout=5,
            )
            latest.update(at=asyncio.get_running_loop().time(), lag=lag, depth=depth)
            return lag, depth

        async def lag() -> dict[str, float]:
            return (await read())[0]

        async def depth() -> dict[str, float]:
            return {dead_letter_topic(self.name): (await read())[1]}

        self.metrics.observe(
            "linkwell_consumer_lag", "Messages not yet handled, per consumer group", "group", lag
        )
        self.metrics.observe(
            "linkwell_dead_letter_depth",
            "Messages waiting in this service's dead-letter topic",
            "topic",
            depth,
        )

    def on_startup(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._startup.append(hook)

    def every(self, name: str, seconds: float, sweep: Sweep) -> None:
        """Run `sweep` periodically (self-healing re-drives, expiries)."""
        self._sweeps.append((name, seconds, sweep))

    async def start(self, with_broker: bool = True) -> None:
        for hook in self._startup:
            await hook()
        if with_broker:
            await self.broker.start()
        await self.relay.start()
        for name, seconds, sweep in self._sweeps:
            self._tasks.append(asyncio.create_task(self._loop(name, seconds, sweep)))
        self.started = True

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.relay.stop()
        await self.broker.stop()
        await self.store.close()
        self.started = False

    async def _loop(self, name: str, seconds: float, sweep: Sweep) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await sweep()
            except Exception:
                log.exception("sweep %s failed; will run again", name)

    async def ready(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.store.ping(), 2)
            checks["mongodb"] = "ok"
        except Exception as exc:  # readiness reports, never raises
            checks["mongodb"] = f"unreachable: {type(exc).__name__}"
        try:
            ok = await asyncio.wait_for(self.broker.ping(timeout=2), 3)
            checks["kafka"] = "ok" if ok else "unreachable"
        except Exception as exc:
            checks["kafka"] = f"unreachable: {type(exc).__name__}"
        return checks

    def http_app(self, title: str, **kwargs: Any) -> FastAPI:
        runtime = self

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await runtime.start()
            try:
                yield
            finally:
                await runtime.stop()

        app = FastAPI(title=title, lifespan=lifespan, **kwargs)
        app.add_middleware(TracingMiddleware, service=self.name)

        @app.get("/healthz", include_in_schema=False)
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "service": runtime.name}

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            try:
                await runtime.metrics.refresh()
            except Exception as exc:  # a scrape still answers when the database does not
                log.warning("observed metrics not refreshed: %s", type(exc).__name__)
            return Response(
                generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST
            )

        @app.get("/readyz", include_in_schema=False)
        async def readyz() -> JSONResponse:
            checks = await runtime.ready()
            ok = runtime.started and all(v == "ok" for v in checks.values())
            return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)

        return app


def serve(app: FastAPI, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
