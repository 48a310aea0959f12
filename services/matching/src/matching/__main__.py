"""Run matching: `python -m matching`.

Import a directory feed into matching's database (idempotent) and print what happened:

    python -m matching import <file-or-url> [--namespace NAME] [--tenant TENANT] [--dry-run]
                              [--keep-missing] [--force-withdrawal]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from linkwell.documents import MongoDocumentStore
from linkwell.logs import setup_logging
from linkwell.partners import load_partners
from linkwell.runtime import serve
from linkwell.telemetry import setup_tracing
from matching import oruk
from matching.app import SERVICE, build
from matching.config import MatchingSettings
from matching.directory import Directory
from matching.store import DirectoryStore


def import_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m matching import",
        description="Import an Open Referral UK feed (original or 3.0 shape) or a Linkwell "
        "directory file into the directory; re-importing changes nothing.",
    )
    parser.add_argument("source", help="a file path or an http(s) URL (pages are followed)")
    parser.add_argument("--namespace", default=None, help="prefix of the asset ids")
    parser.add_argument("--tenant", default=None)
    parser.add_argument("--dry-run", action="store_true", help="validate only; store nothing")
    parser.add_argument(
        "--keep-missing",
        action="store_true",
        help="leave active the assets this source listed before and lists no longer",
    )
    parser.add_argument(
        "--force-withdrawal",
        action="store_true",
        help="withdraw missing assets even when the feed looks incomplete",
    )
    args = parser.parse_args(argv)
    settings = MatchingSettings()
    partners = load_partners(settings.partners_file)
    try:
        report = oruk.read_feed(
            args.source,
            oruk.provider_lookup(partners),
            args.namespace or settings.directory_namespace,
        )
    except Exception as exc:
        print(f"could not read {args.source}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2

    async def store() -> None:
        documents = MongoDocumentStore(settings.mongodb_url, settings.database)
        try:
            directory = Directory(DirectoryStore(documents))
            await directory.import_report(
                report,
                args.tenant or settings.directory_tenant,
                withdraw_missing=not args.keep_missing,
                force=args.force_withdrawal,
            )
        finally:
            await documents.close()

    if not args.dry_run:
        asyncio.run(store())
    for problem in report.rejected:
        print(f"rejected {problem}")
    for problem in report.warnings:
        print(f"warning  {problem}")
    for note in report.notes:
        print(f"note     {note}")
    print(report.summary())
    return 0 if report.assets or not report.read else 1


def main() -> None:
    if sys.argv[1:2] == ["import"]:
        sys.exit(import_command(sys.argv[2:]))
    setup_logging(SERVICE)
    settings = MatchingSettings()
    setup_tracing(SERVICE, settings.otel_exporter_otlp_endpoint)
    app, _ = build(settings)
    serve(app, settings.host, settings.port)


if __name__ == "__main__":
    main()
