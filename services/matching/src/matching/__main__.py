"""Run matching: `python -m matching`."""

from __future__ import annotations

from linkwell.logs import setup_logging
from linkwell.runtime import serve
from linkwell.telemetry import setup_tracing
from matching.app import SERVICE, build
from matching.config import MatchingSettings


def main() -> None:
    setup_logging(SERVICE)
    settings = MatchingSettings()
    setup_tracing(SERVICE, settings.otel_exporter_otlp_endpoint)
    app, _ = build(settings)
    serve(app, settings.host, settings.port)


if __name__ == "__main__":
    main()
