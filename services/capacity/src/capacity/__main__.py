"""Run capacity: `python -m capacity`."""

from __future__ import annotations

from capacity.app import SERVICE, build
from capacity.config import CapacitySettings
from linkwell.logs import setup_logging
from linkwell.runtime import serve
from linkwell.telemetry import setup_tracing


def main() -> None:
    setup_logging(SERVICE)
    settings = CapacitySettings()
    setup_tracing(SERVICE, settings.otel_exporter_otlp_endpoint)
    app, _ = build(settings)
    serve(app, settings.host, settings.port)


if __name__ == "__main__":
    main()
