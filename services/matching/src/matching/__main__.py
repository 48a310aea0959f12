"""Run matching: `python -m matching`."""

from __future__ import annotations

import logging

from linkwell.runtime import serve
from linkwell.telemetry import setup_tracing
from matching.app import SERVICE, build
from matching.config import MatchingSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = MatchingSettings()
    setup_tracing(SERVICE, settings.otel_exporter_otlp_endpoint)
    app, _ = build(settings)
    serve(app, settings.host, settings.port)


if __name__ == "__main__":
    main()
