"""A scheduled task watched by the real sentry-sdk's cron monitoring (one process per run:
the SDK is global state). Usage: monitor_app.py DSN ok|fail SLUG"""

import sys

import sentry_sdk
from sentry_sdk.crons import monitor

dsn, outcome, slug = sys.argv[1:4]
sentry_sdk.init(dsn=dsn, environment="production")


@monitor(monitor_slug=slug, monitor_config={
    "schedule": {"type": "crontab", "value": "0 3 * * *"},
    "timezone": "Europe/Paris",
    "checkin_margin": 5,
    "max_runtime": 60,
})
def send_invoices():
    if outcome == "fail":
        raise RuntimeError("SMTP 421 4.7.0 too many messages")


try:
    send_invoices()
except RuntimeError:
    pass
sentry_sdk.flush(timeout=10)
