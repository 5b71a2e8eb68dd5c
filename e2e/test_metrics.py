"""OpenTelemetry metrics end to end: the real Python SDK's meter, configured only by the
standard OTEL_* variables, exports over OTLP/HTTP — cumulative (its default) and delta with
exponential histograms — and what it counted reads back through the API and the Metrics page
in Chromium (desktop and phone); a threshold rule on a gauge fires once to a local webhook."""

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from browser import make_browser, setup_first_admin
from harness import Server, api, vigie_binary, wait_for

APP = Path(__file__).with_name("otel_metrics_app.py")


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data)
        srv.token = srv.admin_token()
        yield srv
        srv.close()


def run_app(server, service, *args, **env):
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
        "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {server.key}",
        "OTEL_SERVICE_NAME": service,
        **env,
    }
    run = subprocess.run([sys.executable, str(APP), *args], env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    # The SDK logs a failed export and goes on: none may have failed.
    assert "Failed to export" not in run.stderr, run.stderr


def chart(server, name, **params):
    query = urllib.parse.urlencode({"project": 1, "range": "15m", **params})
    return api(server, f"/api/v1/metrics/{urllib.parse.quote(name)}?{query}")


def by_label(chart):
    return {g["label"]: g for g in chart["groups"]}


def test_what_the_sdk_counted_reads_back_the_same_with_either_temporality(server):
    run_app(server, "Invoices-API")
    run_app(server, "mailer",
            OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="delta",
            OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION="base2_exponential_bucket_histogram")

    metrics = {m["name"]: m for m in api(server, "/api/v1/metrics?project=1")["metrics"]}
    assert metrics["invoices.sent"]["kind"] == "counter"
    assert metrics["invoices.send.duration"]["kind"] == "histogram"
    assert metrics["invoices.send.duration"]["unit"] == "s"
    assert metrics["invoices.in_flight"]["kind"] == "up_down_counter"
    assert metrics["queue.depth"]["kind"] == "gauge"
    # Two services × two queues.
    assert metrics["invoices.sent"]["series"] == 4

    # 200 sends, 150 to mail and 50 to the other queue, whichever temporality carried them.
    for service in ["Invoices-API", "mailer"]:
        sums = by_label(chart(server, "invoices.sent", stat="sum", group_by="queue",
                              filter=f"service.name:{service}"))
        assert sums["mail"]["whole"] == 150, (service, sums)
        assert sums["<b>Reports</b>"]["whole"] == 50, (service, sums)
        # Observations per histogram: as many as sends; durations 0.05 … 0.95 s.
        durations = chart(server, "invoices.send.duration", stat="count",
                          filter=f"service.name:{service}")
        assert durations["groups"][0]["whole"] == 200, (service, durations)
        p95 = chart(server, "invoices.send.duration", stat="p95",
                    filter=f"service.name:{service}")["groups"][0]["whole"]
        assert 0.75 <= p95 <= 0.95 + 1e-9, (service, p95)
        average = chart(server, "invoices.send.duration", stat="avg",
                        filter=f"service.name:{service}")["groups"][0]["whole"]
        assert abs(average - 0.5) < 1e-6, (service, average)
    depth = by_label(chart(server, "queue.depth", stat="max", group_by="queue"))
    assert (depth["mail"]["whole"], depth["reports"]["whole"]) == (12, 3)
    # Nothing is in flight once the sends are done. The SDK's reader exports on its own
    # thread and clock, so an export between a send's +1 and its -1 saw one in flight.
    for service in ["Invoices-API", "mailer"]:
        last = chart(server, "invoices.in_flight", stat="last", filter=f"service.name:{service}")
        assert last["groups"][0]["whole"] == 0, (service, last)
    in_flight = chart(server, "invoices.in_flight", stat="max")["groups"][0]["whole"]
    assert in_flight in (0, 1), in_flight


def test_the_metrics_page_shows_the_chart_on_desktop_and_phone(server, tmp_path):
    browser = make_browser()
    try:
        setup_first_admin(browser, server, username="mira")
        browser.get(server.url + "/charts?metric=invoices.sent&group_by=queue&stat=sum&range=15m")
        assert browser.title.startswith("Metrics")
        names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, ".metric-list a")]
        assert names == ["invoices.in_flight", "invoices.send.duration", "invoices.sent", "queue.depth"]
        lines = browser.find_elements(By.CSS_SELECTOR, ".line-chart polyline")
        assert lines, "the chart draws its lines"
        legend = {row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[2].text
                  for row in browser.find_elements(By.CSS_SELECTOR, ".metric-main tbody tr")}
        # Data as sent: case kept, markup shown as text.
        assert legend == {"mail": "300", "<b>Reports</b>": "100"}, legend
        browser.save_screenshot(str(tmp_path / "metrics-desktop.png"))
        browser.set_window_size(390, 844)
        browser.refresh()
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
        browser.save_screenshot(str(tmp_path / "metrics-phone.png"))
        # A filter that cannot be read is named under the box, not an error page.
        browser.get(server.url + "/charts?metric=queue.depth&filter=nocolon")
        assert "is not an attribute filter" in browser.find_element(By.ID, "chart-problem").text
    finally:
        browser.quit()


class Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_threshold_on_a_gauge_fires_once_to_a_webhook(server):
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        channel = api(server, "/api/v1/alerts/channels?project=1", {
            "name": "ops", "target": {"kind": "webhook", "url": f"http://127.0.0.1:{hook.server_port}/hook"}})
        api(server, "/api/v1/alerts/rules?project=1", {
            "name": "mail queue deep",
            "rule": {"kind": "metric_threshold", "metric": "queue.depth", "stat": "max",
                     "filter": "queue:mail service.name:worker", "above": 100, "window_s": 300},
            "channels": [channel["id"]]})
        run_app(server, "worker", "40")
        run_app(server, "worker", "500")
        [message] = wait_for(lambda: Hook.received or None, "the alert at the webhook", timeout=40)
        assert message["status"] == "firing"
        assert "queue.depth" in message["title"] and "500" in message["title"], message
        assert message["link"].endswith("/charts?metric=queue.depth&stat=max")
        # Still above at the next readings: no second message.
        import time
        time.sleep(12)
        assert len(Hook.received) == 1, Hook.received
    finally:
        hook.shutdown()
