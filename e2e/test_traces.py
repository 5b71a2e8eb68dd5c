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

    # The request is an endpoint on the Performance page, named as Sentry SDKs name theirs; it
    # ended in error, so it failed.
    endpoints = api(server, "/api/v1/transactions?project=1")
    [endpoint] = [t for t in endpoints if t["name"] == "GET /invoices/{id}"]
    assert (endpoint["op"], endpoint["count"], endpoint["failure_rate"]) == ("http.server", 1, 1.0)
    duration_ms = trace["duration_ns"] / 1e6
    assert abs(endpoint["max_ms"] - duration_ms) <= max(1.0, duration_ms * 0.02), (endpoint, duration_ms)

    # The exception the SDK recorded is an issue, with the frames of its Python traceback.
    issues = api(server, "/api/v1/issues?project=1")["issues"]
    [issue] = [i for i in issues if i["title"] == "KeyError: 'customer_email'"]
    assert issue["culprit"] == "GET /invoices/{id}"
    [event_meta] = api(server, f"/api/v1/issues/{issue['id']}/events?project=1")
    assert event_meta["trace_id"] == trace_id
    event = api(server, f"/api/v1/events/{event_meta['event_id']}?project=1")
    body = event.get("event", event)
    [exception] = body["exception"]["values"]
    frames = exception["stacktrace"]["frames"]
    assert frames[-1]["filename"].endswith("otel_app.py"), frames
    assert frames[-1]["in_app"] is True

    # Search finds the trace by what began it; its id alone opens it.
    found = api(server, "/api/v1/traces?project=1&q=" + urllib.parse.quote("service:Invoices-API error min:1us"))
    assert [t["trace_id"] for t in found["traces"]] == [trace_id]
    assert found["traces"][0]["name"] == "GET /invoices/{id}"
