"""One trace across a web request and the Celery task it started, from the real OpenTelemetry
Python SDK and instrumentations (otel_shop.py: FastAPI, httpx, Celery, Redis, logging) on a real
Redis: the trace holds the HTTP spans, the publish and the task run with its error; the task's
logs carry the trace; the failure is an issue of that trace; the task (a job, through Vigie's
Celery events) links the trace both ways — checked through the API and in Chromium."""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import json
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from browser import phone, setup_first_admin, sideways_overflow
from harness import Server, api, stop, vigie_binary, wait_for

HERE = Path(__file__).resolve().parent
REDIS = os.environ.get("VIGIE_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not REDIS, reason="VIGIE_TEST_REDIS_URL is not set")
# A database of its own, so other Celery apps on this Redis do not mix in.
BROKER = (REDIS or "").rsplit("/", 1)[0] + "/12"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def shop():
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, "--celery-broker", BROKER)
        srv.token = srv.admin_token()
        env = {
            **os.environ,
            "PYTHONPATH": str(HERE),
            "CELERY_BROKER": BROKER,
            "SHOP_URL": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": srv.url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {srv.key}",
            # Export within half a second rather than the default five.
            "OTEL_BSP_SCHEDULE_DELAY": "300",
            "OTEL_BLRP_SCHEDULE_DELAY": "300",
        }
        logs = open(os.path.join(data, "shop.log"), "w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "otel_shop", "worker", "-E", "-c", "1",
             "-n", "otel@%h", "--loglevel=warning"],
            cwd=HERE, env={**env, "OTEL_SERVICE_NAME": "shop-worker"}, stdout=logs, stderr=logs)
        web = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "otel_shop:api", "--port", str(port),
             "--log-level", "warning"],
            cwd=HERE, env={**env, "OTEL_SERVICE_NAME": "shop-api", "OTEL_SHOP_ROLE": "api"},
            stdout=logs, stderr=logs)
        try:
            wait_for(lambda: api(srv, "/api/v1/celery/workers?project=1"), "the worker's heartbeat")
            wait_for(lambda: reachable(env["SHOP_URL"] + "/customers"), "the shop's web server")
            yield srv, env["SHOP_URL"], os.path.join(data, "shop.log")
        finally:
            stop(web)
            stop(worker)
            logs.close()
            srv.close()


def reachable(url):
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def post(url):
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=30) as r:
        return json.load(r)


def by_name(spans, name):
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, (name, [s["name"] for s in spans])
    return found[0]


def test_a_request_and_its_celery_task_read_as_one_trace(shop, browser, shots):
    srv, shop_url, shop_log = shop
    started = post(shop_url + "/invoices/send?count=5&fail_at=4")
    task_id, trace_id = started["task_id"], started["trace_id"]

    def whole():
        try:
            spans = api(srv, f"/api/v1/traces/{trace_id}?project=1")["spans"]
        except urllib.error.HTTPError as e:
            if e.code == 404:  # no span of it stored yet
                return None
            raise
        names = {s["name"] for s in spans}
        return spans if "run/otel_shop.send_invoices" in names and "POST /invoices/send" in names else None

    spans = wait_for(whole, "the request's and the task's spans", timeout=30)
    assert "Failed to export" not in open(shop_log).read()
    request = by_name(spans, "POST /invoices/send")
    assert (request["service"], request["kind"], request["parent_span_id"]) == ("shop-api", "server", "")
    # The httpx call and the request it made, in the same trace (the instrumentations still
    # speak the older HTTP conventions by default: `http.url`, not `url.full`).
    fetch = [s for s in spans if s["kind"] == "client" and s["service"] == "shop-api"
             and dict(s["attributes"]).get("http.url", "").endswith("/customers")]
    assert len(fetch) == 1, [(s["name"], s["kind"]) for s in spans]
    listed = by_name(spans, "GET /customers")
    assert listed["parent_span_id"] == fetch[0]["span_id"]
    publish = by_name(spans, "apply_async/otel_shop.send_invoices")
    assert (publish["kind"], publish["service"]) == ("producer", "shop-api")
    run = by_name(spans, "run/otel_shop.send_invoices")
    assert (run["kind"], run["service"], run["parent_span_id"]) == ("consumer", "shop-worker", publish["span_id"])
    assert dict(run["attributes"])["messaging.message.id"] == task_id
    assert run["status"] == "error"
    assert [e["name"] for e in run["events"]] == ["exception"]
    assert dict(run["events"][0]["attributes"])["exception.type"] == "smtplib.SMTPRecipientsRefused"
    assert request["start"] <= publish["start"] <= run["start"]
    # Redis calls the task made (celery-progress storing its progress) hang under the run.
    assert any(s["parent_span_id"] == run["span_id"] and s["kind"] == "client" for s in spans)

    # The task's logs carry the trace, each with the span it was written in.
    query = urllib.parse.quote(f"trace:{trace_id}")
    def the_logs():
        hits = api(srv, f"/api/v1/logs/search?project=1&q={query}")["hits"]
        return hits if len(hits) >= 5 else None
    hits = wait_for(the_logs, "the trace's logs")
    messages = {h["message"]: h for h in hits}
    for n in (1, 2, 3):
        assert messages[f"invoice {n} sent to customer{n}@example.com"]["span_id"] == run["span_id"]
    refused = messages["invoice 4 to customer4@example.com refused by the SMTP server"]
    assert refused["level"] == "error"
    assert messages[f"bulk send {task_id} started for 5 customers"]["span_id"] == request["span_id"]

    # The failure is an issue whose event belongs to the trace.
    def the_issue():
        issues = api(srv, "/api/v1/issues?project=1")["issues"]
        return [i for i in issues if i["title"].startswith("SMTPRecipientsRefused")]
    [issue] = wait_for(the_issue, "the task's issue")
    events = api(srv, f"/api/v1/issues/{issue['id']}/events?project=1")
    assert trace_id in {e["trace_id"] for e in events}

    # The task, as Vigie's Celery events saw it, is a failed job that got 3 of 5 done.
    job = wait_for(lambda: (j := api(srv, f"/api/v1/jobs/{task_id}?project=1")) and j["status"] == "failed" and j,
                   "the task's job")
    assert job["processed"] == 3 and job["total"] == 5, job

    # The endpoint and the task are on the Performance page.
    names = {t["name"]: t for t in api(srv, "/api/v1/transactions?project=1")}
    assert names["POST /invoices/send"]["op"] == "http.server"
    assert names["otel_shop.send_invoices"]["failure_rate"] == 1.0

    # In the browser: the job page, the Celery task page and the trace link one another.
    setup_first_admin(browser, srv)
    browser.get(f"{srv.url}/jobs/{task_id}")
    browser.find_element(By.CSS_SELECTOR, f"#job-related a[href='/traces/{trace_id}']")
    browser.get(f"{srv.url}/celery/tasks/{task_id}")
    browser.find_element(By.CSS_SELECTOR, f"#task-related a[href='/traces/{trace_id}']").click()
    wait_for(lambda: trace_id in browser.current_url, "the trace page")
    page = browser.find_element(By.TAG_NAME, "main").text
    for seen in ["shop-api", "shop-worker", "POST /invoices/send", "run/otel_shop.send_invoices",
                 "invoice 2 sent to customer2@example.com", "SMTPRecipientsRefused"]:
        assert seen in page, seen
    assert browser.find_elements(By.CSS_SELECTOR, f"#trace-jobs a[href='/jobs/{task_id}']")
    shots(browser, "78-otel-shop-trace")
    with phone(browser):
        assert sideways_overflow(browser) <= 0, "the trace page scrolls sideways on a phone"
        shots(browser, "79-otel-shop-trace-phone")
