"""A service measured with the OpenTelemetry Python SDK's meter, configured only by the
standard environment variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
OTEL_SERVICE_NAME, and OTEL_EXPORTER_OTLP_METRICS_* for temporality and histogram kind), as a
team points its app at Vigie: 200 invoices sent over a few exports, with a counter, a
histogram, an up-down counter and an observable gauge whose value is the first argument."""

import sys
import time

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

depth = float(sys.argv[1]) if len(sys.argv) > 1 else 12.0
reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=500)
provider = MeterProvider(metric_readers=[reader])
meter = provider.get_meter("invoices")
sent = meter.create_counter("invoices.sent", unit="1", description="Invoices sent")
duration = meter.create_histogram("invoices.send.duration", unit="s")
in_flight = meter.create_up_down_counter("invoices.in_flight")
meter.create_observable_gauge(
    "queue.depth",
    callbacks=[lambda options: [Observation(depth, {"queue": "mail"}),
                                Observation(3, {"queue": "reports"})]],
)

for i in range(200):
    queue = "mail" if i % 4 else "<b>Reports</b>"
    in_flight.add(1, {"queue": queue})
    sent.add(1, {"queue": queue})
    duration.record(0.05 + (i % 10) * 0.1, {"queue": queue})
    in_flight.add(-1, {"queue": queue})
    if i % 50 == 49:
        time.sleep(0.7)  # a few exports, as a running service makes them

assert provider.force_flush(10_000)
provider.shutdown()
