"""Notification delivery to many subscribers: 1,000 partner webhook endpoints on loopback,
one held place each, through the real delivery path (planned in the embedded database,
signed, posted, settled, recorded).

Prints deliveries per second and p50/p95/p99 from the event's occurred_at to the webhook
arriving at the subscriber.

    python bench/deliveries.py --subscribers 1000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from linkwell.devstack import EmbeddedStack, free_port
from linkwell.documents import MongoDocumentStore
from linkwell.partners import Partner
from linkwell.testing import percentile
from linkwell_schemas.events import Organisation, PlaceReserved, ReferralReceived
from notifications.app import build
from notifications.config import NotifySettings


class Subscribers:
    """One HTTP server on loopback standing in for every partner's endpoint."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.arrived.setdefault(self.headers["webhook-id"], time.time())
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


async def run(mongodb_url: str, args: argparse.Namespace) -> dict:
    subscribers = Subscribers()
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    partners = [
        Partner(
            org_id=f"gp-{n:04d}",
            name=f"Practice {n}",
            kind="gp",
            tenant="bench",
            callback_url=f"http://127.0.0.1:{subscribers.port}/hooks/gp-{n:04d}",
            webhook_secret=secret,
        )
        for n in range(args.subscribers)
    ]
    store = MongoDocumentStore(mongodb_url, "bench_notifications")
    app, runtime = build(NotifySettings(), store=store, partners=partners)
    notifier = app.state.notifier
    await app.state.notifier.deliveries.setup()
    received = [
        ReferralReceived(
            producer="referral-intake",
            tenant="bench",
            correlation_id=f"r{n}",
            referral_id=f"r{n}",
            source=Organisation(org_id=p.org_id, kind="gp"),
            fhir_reference=f"ServiceRequest/r{n}",
        )
        for n, p in enumerate(partners)
    ]
    for event in received:
        await notifier.on_referral_received(event)
    gate = asyncio.Semaphore(args.concurrency)
    occurred: dict[str, float] = {}

    async def tell(n: int) -> None:
        async with gate:
            event = PlaceReserved(
                producer="capacity",
                tenant="bench",
                correlation_id=f"r{n}",
                referral_id=f"r{n}",
                asset_id="lunch",
                asset_name="Lunch club",
                hold_expires_at=datetime.now(UTC) + timedelta(days=3),
            )
            occurred[f"{event.event_id}:gp-{n:04d}:webhook"] = event.occurred_at.timestamp()
            await notifier.notify(event)

    began = time.time()
    await asyncio.gather(*(tell(n) for n in range(args.subscribers)))
    took = time.time() - began
    await notifier.webhooks.close()
    await store.close()
    subscribers.server.shutdown()
    latencies = [
        (subscribers.arrived[key] - at) * 1000
        for key, at in occurred.items()
        if key in subscribers.arrived
    ]
    return {"delivered": len(latencies), "took": took, "latencies": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32, help="events handled at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="linkwell-notify-bench-") as folder:
        stack = EmbeddedStack(Path(folder), kafka_port=free_port(), mongo_port=free_port())
        (Path(folder) / "logs").mkdir(parents=True, exist_ok=True)
        stack.mongo = stack.start_mongo()
        try:
            result = asyncio.run(run(stack.mongodb_url, args))
        finally:
            stack.stop()
    ms = result["latencies"]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(
        f"{args.subscribers} webhook subscribers on loopback, {args.concurrency} events at once: "
        f"{result['delivered']} delivered in {result['took']:.1f} s "
        f"({result['delivered'] / result['took']:.0f}/s)"
    )
    print(
        f"event -> delivery: p50 {percentile(ms, 50):.1f} ms  p95 {percentile(ms, 95):.1f} ms  "
        f"p99 {percentile(ms, 99):.1f} ms  max {max(ms):.1f} ms"
    )
    if result["delivered"] < args.subscribers:
        sys.exit(f"{args.subscribers - result['delivered']} deliveries missing")


if __name__ == "__main__":
    main()
