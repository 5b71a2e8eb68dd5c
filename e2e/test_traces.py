"""OpenTelemetry traces end to end: the real Python SDK, configured only by the standard
OTEL_* environment variables, exports spans and logs to Vigie over OTLP/HTTP; the trace reads
back whole, and the logs written inside it carry its id."""

import os
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import pytest

from harness import Server, api, vigie_binary, wait_for


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data)
        srv.token = srv.admin_token()
        yield srv
        srv.close()


def test_the_python_sdk_configured_by_environment_sends_one_trace(server):
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
        "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {server.key}",
        "OTEL_SERVICE_NAME": "Invoices-API",
    }
    run = subprocess.run([sys.executable, str(Path(__file__).with_name("otel_app.py"))],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    # The SDK says nothing when an export fails but logs it: none may have failed.
    assert "Failed to export" not in run.stderr, run.stderr
    trace_id = run.stdout.strip()
    assert len(trace_id) == 32

    trace = api(server, f"/api/v1/traces/{trace_id}?project=1")
    assert trace["services"] == ["Invoices-API"]
    assert trace["errors"] == 1
    request, query = trace["spans"]
    assert (request["name"], request["kind"], request["parent_span_id"]) == ("GET /invoices/{id}", "server", "")
    assert dict(request["attributes"])["http.route"] == "/invoices/{id}"
    assert request["status"] == "error"
    assert request["status_message"] == "KeyError: 'customer_email'"
    [exception] = request["events"]
    assert exception["name"] == "exception"
    assert dict(exception["attributes"])["exception.type"] == "KeyError"
    assert (query["name"], query["kind"], query["parent_span_id"]) == ("SELECT invoices", "client", request["span_id"])
    assert request["start"] <= query["start"] <= query["end"] <= request["end"]
    assert trace["duration_ns"] == request["end"] - request["start"]

    # The same endpoint and headers carried the logs, each with the trace and span it was in.
    query_text = urllib.parse.quote(f"trace:{trace_id}")
    hits = wait_for(lambda: api(server, f"/api/v1/logs/search?project=1&q={query_text}")["hits"] or None,
                    "the trace's logs")
    by_message = {h["message"]: h for h in hits}
    assert set(by_message) == {"invoice F-2026-0042 loaded", "invoice F-2026-0042 cannot be sent"}
    assert by_message["invoice F-2026-0042 loaded"]["span_id"] == query["span_id"]
    assert by_message["invoice F-2026-0042 cannot be sent"]["level"] == "error"
