"""A service instrumented with the OpenTelemetry Python SDK, configured only by the standard
environment variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
OTEL_SERVICE_NAME), as a team points its app at Vigie: it handles one request that fails,
logs on the way, exports its spans and logs over OTLP/HTTP, and prints the trace id."""

import logging

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

tracer_provider = TracerProvider()
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(tracer_provider)
log_provider = LoggerProvider()
log_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
logger = logging.getLogger("invoices.api")
logger.addHandler(LoggingHandler(logger_provider=log_provider))
logger.setLevel(logging.INFO)

tracer = trace.get_tracer("invoices.api")
with tracer.start_as_current_span("GET /invoices/{id}", kind=SpanKind.SERVER,
                                  attributes={"http.route": "/invoices/{id}",
                                              "http.request.method": "GET"}) as request:
    with tracer.start_as_current_span("SELECT invoices", kind=SpanKind.CLIENT,
                                      attributes={"db.system": "postgresql"}):
        logger.info("invoice %s loaded", "F-2026-0042")
    try:
        raise KeyError("customer_email")
    except KeyError as error:
        request.record_exception(error)
        request.set_status(Status(StatusCode.ERROR, "KeyError: 'customer_email'"))
        logger.error("invoice F-2026-0042 cannot be sent")
    print(format(request.get_span_context().trace_id, "032x"))

assert tracer_provider.force_flush(10_000)
assert log_provider.force_flush(10_000)
tracer_provider.shutdown()
log_provider.shutdown()
