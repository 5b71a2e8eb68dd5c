"""A FastAPI shop with a Celery worker, instrumented with the real OpenTelemetry Python SDK and
its instrumentations (FastAPI, httpx, Celery, Redis, logging) and exporting over OTLP/HTTP as
the OTEL_* variables say — how a team that chose OpenTelemetry over a Sentry SDK runs its app.

`POST /invoices/send` reads the customers from the shop's own `GET /customers` over httpx, then
starts `send_invoices` on the Celery worker (the broker is CELERY_BROKER, a real Redis). The task
reports its progress through celery-progress, logs a line per invoice, and fails at the
`fail_at`-th invoice with the SMTP error a bulk send meets. One trace holds it all.

Run as the API: `OTEL_SHOP_ROLE=api uvicorn otel_shop:api`; as the worker:
`celery -A otel_shop worker -E`. The worker sets its telemetry up in each pool process
(`worker_process_init`), as the Celery instrumentation's documentation asks: a provider made
before the fork would export from the parent only.
"""

import logging
import os
import smtplib
import time

import httpx
from celery import Celery
from celery.signals import worker_process_init
from celery_progress.backend import ProgressRecorder
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger("shop.invoices")

broker = os.environ["CELERY_BROKER"]
celery = Celery("otel_shop", broker=broker, backend=broker)
celery.conf.worker_send_task_events = True
celery.conf.task_send_sent_event = True


def set_up_telemetry():
    """Tracer and logger providers exporting over OTLP/HTTP, and the instrumentations."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    log_provider = LoggerProvider()
    log_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    set_logger_provider(log_provider)
    logging.getLogger().addHandler(LoggingHandler(logger_provider=log_provider))
    logging.getLogger().setLevel(logging.INFO)
    LoggingInstrumentor().instrument(set_logging_format=False)
    CeleryInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()
    RedisInstrumentor().instrument()


@worker_process_init.connect(weak=False)
def set_up_worker_telemetry(*_args, **_kwargs):
    set_up_telemetry()


@celery.task(bind=True)
def send_invoices(self, customers, fail_at):
    progress = ProgressRecorder(self)
    for number, customer in enumerate(customers, 1):
        if number == fail_at:
            log.error("invoice %d to %s refused by the SMTP server", number, customer)
            raise smtplib.SMTPRecipientsRefused({customer: (550, b"5.2.2 mailbox full")})
        time.sleep(0.05)
        log.info("invoice %d sent to %s", number, customer)
        progress.set_progress(number, len(customers), description=f"invoice {number}")
    return len(customers)


api = FastAPI()


@api.get("/customers")
def customers():
    return [f"customer{n}@example.com" for n in range(1, 11)]


@api.post("/invoices/send")
def send(count: int = 5, fail_at: int = 0):
    listed = httpx.get(os.environ["SHOP_URL"] + "/customers").json()
    result = send_invoices.delay(listed[:count], fail_at)
    log.info("bulk send %s started for %d customers", result.id, count)
    context = trace.get_current_span().get_span_context()
    return {"task_id": result.id, "trace_id": format(context.trace_id, "032x")}


if os.environ.get("OTEL_SHOP_ROLE") == "api":
    set_up_telemetry()
    FastAPIInstrumentor.instrument_app(api)
