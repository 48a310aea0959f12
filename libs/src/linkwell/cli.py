"""`linkwell`: run the whole network on one machine, and follow a referral's trace.

linkwell up                      start broker, database and the four services
linkwell token <org-id>          a bearer token signed with a demo partner's key (one request)
linkwell demo-secrets <dir>      demo partner registry, partner keys and the network's keys
linkwell demo-receiver           the demo practice's webhook endpoint, printing each notice
linkwell trace <referral-id>     print the span tree of one referral
linkwell ops lag                 how far behind each consumer group is
linkwell ops dead-letters <svc>  what a service could not handle (origin, error; no bodies)
linkwell ops inspect <svc> <id>  one dead letter (--body to print the message body)
linkwell ops replay <svc> <id>   send dead letters back to their topic (--all for every one)
linkwell ops referral <id>       one referral as every service sees it
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from linkwell.telemetry import default_trace_file, read_spans, referral_traces, render_tree

DEMO_RECEIVER_PORT = 8090


class _DemoReceiver(BaseHTTPRequestHandler):
    """Stands in for the demo GP system's webhook endpoint, so the loop visibly closes."""

    seen: set[str] = set()

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()
        delivery = self.headers.get("webhook-id", "")
        if delivery in self.seen:  # as every Standard Webhooks receiver should: once per id
            print(f"  [webhook {delivery[:8]}... repeated; already handled]", flush=True)
            return
        self.seen.add(delivery)
        try:
            note = json.loads(body)
            print(
                f"  [webhook to {self.path.rsplit('/', 1)[-1]}] referral {note['referral_id']}: "
                f"{note['summary']}",
                flush=True,
            )
        except (ValueError, KeyError):
            print(f"  [webhook to {self.path}] {len(body)} bytes", flush=True)

    def log_message(self, *args: object) -> None:
        return None


def _up(args: argparse.Namespace) -> int:
    from linkwell.network import Network

    root = Path.cwd()
    data_dir = root / "data"
    net = Network.prepare(root, data_dir)
    receiver = ThreadingHTTPServer(("127.0.0.1", DEMO_RECEIVER_PORT), _DemoReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        embedded = [n for n in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL") if n not in net.env]
        net.start_embedded()
        if embedded:
            started = " and ".join(
                "Kafka broker" if name.startswith("KAFKA") else "MongoDB server"
                for name in embedded
            )
            print(
                f"embedded {started} started "
                f"({net.env['KAFKA_BOOTSTRAP_SERVERS']}, {net.env['MONGODB_URL'].split('/?')[0]})"
            )
        print("starting referral-intake, matching, capacity, notifications ...", flush=True)
        net.start_services()
        base = f"http://localhost:{net.ports['referral-intake']}/fhir"
        print(
            f"""
Linkwell is running.  FHIR base URL: {base}

Send a sample social prescribing referral as the demo GP practice (from this folder; each
request carries a fresh token signed with the practice's demo key):

  curl -si -X POST {base}/ServiceRequest -H 'Content-Type: application/fhir+json' \\
    -H "Authorization: Bearer $(.venv/bin/linkwell token gp-demo-headingley)" \\
    --data @examples/fhir/social-prescribing-referral.json

Then see its Task (use the id from the Location header):

  curl -s '{base}/Task?focus=ServiceRequest/<id>' \\
    -H "Authorization: Bearer $(.venv/bin/linkwell token gp-demo-headingley)"

and its trace across the services:  .venv/bin/linkwell trace <id>
Logs are in {data_dir / "logs"}.  Ctrl-C stops everything.
""",
            flush=True,
        )
        while not stopping.wait(1):
            for name, proc in net.processes.items():
                if proc.poll() is not None:
                    print(f"{name} exited (code {proc.returncode}); see data/logs/{name}.log")
                    stopping.set()
    finally:
        print("stopping ...", flush=True)
        net.stop()
        receiver.shutdown()
    return 0


def _token(args: argparse.Namespace) -> int:
    import os

    from linkwell.auth import mint_token

    key_file = Path(args.key) if args.key else Path("data") / "demo-keys" / f"{args.org_id}.pem"
    if not key_file.exists():
        print(
            f"no private key at {key_file}: `linkwell up` makes the demo partners' keys, or "
            "give --key",
            file=sys.stderr,
        )
        return 1
    audience = args.audience or os.environ.get(
        "INTAKE_PUBLIC_BASE_URL", "http://localhost:8080/fhir"
    )
    print(mint_token(key_file.read_text(), args.org_id, audience, args.lifetime))
    return 0


def _demo_secrets(args: argparse.Namespace) -> int:
    """For docker compose and demos: what `make up` prepares under data/, anywhere."""
    from linkwell.partners import action_keys, with_demo_keys

    out = Path(args.out)
    template = (
        Path(args.template) if args.template else Path.cwd() / "config" / "partners.demo.json"
    )
    registry = with_demo_keys(template, out / "demo-keys", out / "partners.json")
    if args.callback_base:  # where the demo receiver is reachable from the services
        data = json.loads(registry.read_text())
        local = f"http://127.0.0.1:{DEMO_RECEIVER_PORT}"
        for partner in data["partners"]:
            url = partner.get("callback_url") or ""
            if url.startswith(local):
                partner["callback_url"] = args.callback_base.rstrip("/") + url[len(local) :]
        registry.write_text(json.dumps(data, indent=1) + "\n")
    action_keys(out / "demo-keys")
    for path in out.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # read by the services' own user
    print(f"wrote {registry} and keys in {out / 'demo-keys'}")
    return 0


def _demo_receiver(args: argparse.Namespace) -> int:
    """The demo practice's webhook endpoint on its own (docker compose): prints each notice."""
    server = ThreadingHTTPServer((args.host, args.port), _DemoReceiver)
    print(f"demo webhook receiver on {args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _ops(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from linkwell import ops

    bootstrap = args.kafka or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    if args.what == "lag":
        for row in asyncio.run(ops.consumer_lag(bootstrap)):
            print(f"{row['group']:<70} {row['lag']:>8}")
        return 0
    if args.what == "dead-letters":
        if not args.target:
            print("which service? e.g. linkwell ops dead-letters matching", file=sys.stderr)
            return 2
        for letter in asyncio.run(ops.dead_letters(bootstrap, args.target)):
            print(json.dumps(letter))
        return 0
    if args.what in ("inspect", "replay"):
        if not args.target or not (args.letters or (args.what == "replay" and args.all)):
            print(
                f"which letters? linkwell ops {args.what} <service> <letter-id> ..."
                + (" (or --all)" if args.what == "replay" else ""),
                file=sys.stderr,
            )
            return 2
        if args.what == "inspect":
            found = [
                letter
                for letter in asyncio.run(
                    ops.dead_letters(bootstrap, args.target, 10_000, with_payload=args.body)
                )
                if letter["event_id"] in set(args.letters)
            ]
            for letter in found:
                print(json.dumps(letter, indent=1))
            return 0 if found else 1
        replayed = asyncio.run(
            ops.replay(bootstrap, args.target, None if args.all else set(args.letters))
        )
        for letter in replayed:
            print(json.dumps(letter))
        print(f"{len(replayed)} replayed", file=sys.stderr)
        return 0 if replayed else 1
    if not args.target:
        print("which referral? linkwell ops referral <id>", file=sys.stderr)
        return 2
    urls = {
        name: os.environ.get(
            f"LINKWELL_{name.upper().replace('-', '_')}_URL", f"http://127.0.0.1:{port}"
        )
        for name, port in (
            ("referral-intake", 8080),
            ("matching", 8081),
            ("capacity", 8082),
            ("notifications", 8083),
        )
    }
    headers = {}
    if args.as_partner:
        from linkwell.auth import mint_token

        key = (Path("data") / "demo-keys" / f"{args.as_partner}.pem").read_text()
        headers["Authorization"] = "Bearer " + mint_token(
            key,
            args.as_partner,
            f"http://localhost:{urls['referral-intake'].rsplit(':', 1)[-1]}/fhir",
        )
    print(json.dumps(asyncio.run(ops.referral_everywhere(urls, args.target, headers)), indent=1))
    return 0


def _trace(args: argparse.Namespace) -> int:
    path = Path(args.file) if args.file else default_trace_file()
    traces = referral_traces(read_spans(path), args.referral_id)
    if not traces:
        print(f"no spans for referral {args.referral_id} in {path}", file=sys.stderr)
        return 1
    for trace_id, spans in traces.items():
        services = sorted({s["service"] for s in spans})
        print(f"trace {trace_id}  ({len(spans)} spans; services: {', '.join(services)})")
        print(render_tree(spans))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="linkwell", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run the whole network on this machine").set_defaults(func=_up)
    token = sub.add_parser("token", help="mint a bearer token for one request")
    token.add_argument("org_id", help="the partner's organisation id, e.g. gp-demo-headingley")
    token.add_argument("--key", help="private key PEM (default: data/demo-keys/<org-id>.pem)")
    token.add_argument("--audience", help="FHIR base URL (default: http://localhost:8080/fhir)")
    token.add_argument("--lifetime", type=int, default=60, help="seconds (at most 300)")
    token.set_defaults(func=_token)
    secrets = sub.add_parser(
        "demo-secrets", help="write the demo partner registry and demo keys into a directory"
    )
    secrets.add_argument("out", help="directory to write (partners.json, demo-keys/)")
    secrets.add_argument(
        "--template", help="partner registry template (default: config/partners.demo.json)"
    )
    secrets.add_argument(
        "--callback-base",
        help="rewrite the demo receiver's callback URLs to this base, e.g. "
        "http://demo-receiver:8090",
    )
    secrets.set_defaults(func=_demo_secrets)
    receiver = sub.add_parser("demo-receiver", help="the demo practice's webhook endpoint")
    receiver.add_argument("--host", default="127.0.0.1")
    receiver.add_argument("--port", type=int, default=DEMO_RECEIVER_PORT)
    receiver.set_defaults(func=_demo_receiver)
    ops_cmd = sub.add_parser("ops", help="consumer lag, dead letters, one referral everywhere")
    ops_cmd.add_argument("what", choices=["lag", "dead-letters", "inspect", "replay", "referral"])
    ops_cmd.add_argument("target", nargs="?", help="a service (dead letters) or a referral id")
    ops_cmd.add_argument("letters", nargs="*", help="dead-letter event ids (inspect, replay)")
    ops_cmd.add_argument("--all", action="store_true", help="replay every dead letter")
    ops_cmd.add_argument("--body", action="store_true", help="inspect: print the message body")
    ops_cmd.add_argument("--kafka", help="bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS)")
    ops_cmd.add_argument("--as-partner", help="read the Task as this demo partner")
    ops_cmd.set_defaults(func=_ops)
    trace = sub.add_parser("trace", help="print the span tree of one referral")
    trace.add_argument("referral_id")
    trace.add_argument("--file", help="span file (default: $LINKWELL_TRACE_FILE or data/traces)")
    trace.set_defaults(func=_trace)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
