"""Run referral-intake: `python -m referral_intake`."""

from __future__ import annotations

from linkwell.logs import setup_logging
from linkwell.runtime import serve
from linkwell.telemetry import setup_tracing
from referral_intake.app import SERVICE, build
from referral_intake.config import IntakeSettings


def main() -> None:
    setup_logging(SERVICE)
    settings = IntakeSettings()
    setup_tracing(SERVICE, settings.otel_exporter_otlp_endpoint)
    app, _ = build(settings)
    serve(app, settings.host, settings.port)


if __name__ == "__main__":
    main()
