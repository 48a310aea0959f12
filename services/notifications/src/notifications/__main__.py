"""Run notifications: `python -m notifications`."""

from __future__ import annotations

from linkwell.logs import setup_logging
from linkwell.runtime import serve
from linkwell.telemetry import setup_tracing
from notifications.app import SERVICE, build
from notifications.config import NotifySettings


def main() -> None:
    setup_logging(SERVICE)
    settings = NotifySettings()
    setup_tracing(SERVICE, settings.otel_exporter_otlp_endpoint)
    app, _ = build(settings)
    serve(app, settings.host, settings.port)


if __name__ == "__main__":
    main()
