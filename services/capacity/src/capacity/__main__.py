"""Run capacity: `python -m capacity`."""

from __future__ import annotations

import logging

from capacity.app import SERVICE, build
from capacity.config import CapacitySettings
from linkwell.runtime import serve
from linkwell.telemetry import setup_tracing


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = CapacitySettings()
    setup_tracing(SERVICE, settings.otel_exporter_otlp_endpoint)
    app, _ = build(settings)
    serve(app, settings.host, settings.port)


if __name__ == "__main__":
    main()
