"""A Celery app as teams write one: invoices added up, a failing task, a bulk send reporting
its progress through celery-progress's ProgressRecorder, and a flaky task that retries once.
The broker comes from CELERY_BROKER (test_celery.py sets it), the result backend from
CELERY_BACKEND (the broker by default); CELERY_EVENTS=0 leaves task events off, as a worker
started without -E has them; SENTRY_DSN turns the Sentry SDK on (with its Celery integration)."""

import os
import time

from celery import Celery
from celery.contrib.abortable import AbortableTask
from celery_progress.backend import ProgressRecorder

if os.environ.get("SENTRY_DSN"):
    # As teams set it up: the SDK's defaults, which turn its Celery integration on.
    import sentry_sdk
    sentry_sdk.init(dsn=os.environ["SENTRY_DSN"])

broker = os.environ["CELERY_BROKER"]
app = Celery("shop", broker=broker, backend=os.environ.get("CELERY_BACKEND", broker))
app.conf.worker_send_task_events = os.environ.get("CELERY_EVENTS", "1") == "1"
app.conf.task_send_sent_event = True
app.conf.beat_schedule = {
    "nightly-report": {"task": "celery_app.nightly_report", "schedule": 2.0},
}

attempts = {}


@app.task
def add(x, y):
    return x + y


@app.task
def nightly_report():
    return "report sent"


@app.task
def boom(code):
    raise KeyError(code)


@app.task(bind=True)
def send_invoices(self, count):
    progress = ProgressRecorder(self)
    for i in range(count):
        time.sleep(0.05)
        progress.set_progress(i + 1, count, description=f"invoice {i + 1}")
    return count


@app.task(bind=True, max_retries=2)
def flaky(self, name):
    attempts[name] = attempts.get(name, 0) + 1
    if attempts[name] == 1:
        raise self.retry(exc=ConnectionError("SMTP server went away"), countdown=0.2)
    return f"{name} sent"


@app.task
def sleepy(seconds):
    """Runs long enough to be seen running, revoked and terminated."""
    time.sleep(seconds)
    return seconds


@app.task(bind=True, base=AbortableTask)
def abortable(self, seconds):
    """Works until told to stop, as long tasks written with AbortableTask do."""
    for _ in range(int(seconds * 10)):
        if self.is_aborted():
            return "aborted"
        time.sleep(0.1)
    return "finished"
