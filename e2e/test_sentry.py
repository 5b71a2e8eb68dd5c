"""The real, unchanged `sentry-sdk` against a real Vigie: only the DSN points at Vigie.

`sentry_app.py` plays the application in its own process per scenario (the SDK is global
state): errors with locals, chained exceptions, breadcrumbs, user, tags and messages at every
level, a task transaction with spans (brotli, the SDK's default when `brotli` is installed);
a Starlette app served by uvicorn with the SDK's integration (gzip); and a flood that meets
the project's quota, after which the SDK must back off. Everything is checked as a user would:
`vigie issues list/show --json`, the API, and the Issues and Performance pages in Chromium.
"""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser import setup_first_admin

APP = Path(__file__).resolve().parent / "sentry_app.py"


def run_app(dsn, *args):
    out = subprocess.run([sys.executable, str(APP), args[0], dsn, *args[1:]],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def api(srv, path, body=None, method=None):
    req = urllib.request.Request(srv.url + path, headers={"Authorization": f"Bearer {srv.token}"})
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
        req.method = method or "POST"
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def issues(srv, *args):
    out = srv.cli("issues", "list", "--json", "-n", "100", *args, token=srv.token)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["issues"]


def by_title(srv, start, *args):
    found = [i for i in issues(srv, "--status", "all", *args) if i["title"].startswith(start)]
    assert found, f"no issue titled {start!r}"
    return found[0]


def test_errors_messages_and_a_transaction_arrive_scrubbed(vigie):
    did = run_app(vigie.dsn, "errors", "br")
    assert did["compression"] == "br", "the SDK compressed with brotli"

    key_error = by_title(vigie, "KeyError: 'BE'")
    assert key_error["culprit"] == "__main__ in render_invoice"
    assert key_error["level"] == "error" and key_error["users"] == 1
    shown = vigie.cli("issues", "show", str(key_error["id"]), "--json", token=vigie.token)
    detail = json.loads(shown.stdout)
    event = detail["latest_event"]
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert [f["function"] for f in frames][-2:] == ["send_invoices", "render_invoice"]
    assert frames[-1]["vars"]["password"] == "[Filtered]"
    assert "hunter2" not in json.dumps(event)
    assert event["user"]["id"] == "42" and "email" not in event["user"], "e-mail scrubbed by default"
    assert [b["message"] for b in event["breadcrumbs"]["values"]][:2] == [
        "connected to smtp.example.com", "loaded 500 invoices"]
    assert event["release"] == "shop@1.4.2" and event["environment"] == "production"
    tags = {(t["key"], t["value"]) for t in detail["tags"]}
    assert {("customer", "acme"), ("job_id", "nightly-invoices-7"), ("release", "shop@1.4.2")} <= tags

    # The chained exception keeps both, cause first.
    chained = by_title(vigie, "RuntimeError: cannot send the invoice e-mails")
    values = api(vigie, f"/api/v1/issues/{chained['id']}")["latest_event"]["exception"]["values"]
    assert [v["type"] for v in values] == ["ConnectionRefusedError", "RuntimeError"]

    # capture_message at every level, each with its level.
    levels = {i["level"] for i in issues(vigie, "--status", "all", "Quota", "exceeded")}
    assert levels == {"debug", "info", "warning", "error", "fatal"}

    # The human text view names the issue and its frames.
    text = vigie.cli("issues", "show", str(key_error["id"]), token=vigie.token).stdout
    assert "KeyError: 'BE'" in text and "render_invoice" in text and "nightly-invoices-7" in text

    # The task transaction with its spans.
    txs = {t["name"]: t for t in api(vigie, "/api/v1/transactions")}
    assert txs["send_invoices"]["op"] == "task" and txs["send_invoices"]["count"] == 1
    assert txs["send_invoices"]["p50_ms"] >= 70
    detail = api(vigie, "/api/v1/transactions/detail?name=send_invoices")
    assert {s["op"] for s in detail["spans"]} == {"db", "smtp"}


def test_an_asgi_app_names_transactions_by_route(vigie):
    did = run_app(vigie.dsn, "asgi", "gzip")
    assert did == {"statuses": [200, 200, 200, 500], "compression": "gzip"}
    txs = {t["name"]: t for t in api(vigie, "/api/v1/transactions")}
    # Endpoints carry their method, as the JavaScript SDKs name them.
    assert txs["GET /invoices/{id}"]["count"] == 3, txs.keys()
    assert txs["GET /invoices/{id}"]["op"] == "http.server"
    assert txs["GET /boom"]["failure_rate"] == 1.0
    boom = by_title(vigie, "ValueError: invoice template missing")
    event = api(vigie, f"/api/v1/issues/{boom['id']}")["latest_event"]
    assert event["request"]["url"].endswith("/boom")
    assert event["transaction"] == "/boom"


def test_the_sdk_backs_off_when_the_quota_is_reached(vigie):
    # A project of its own, so the other tests' events do not count against its quota.
    project = api(vigie, "/api/v1/projects", {"name": "flood"})
    api(vigie, f"/api/v1/error-settings?project={project['id']}", {"events_per_minute": 3}, method="PUT")
    # Start early in a minute so the quota's window does not turn during the flood.
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)
    did = run_app(project["dsn"], "flood", "gzip", "6")
    assert "error" in did["rate_limited"], did
    probes = issues(vigie, "--project", "flood", "--status", "all", "quota", "probe")
    assert sum(i["events"] for i in probes) == 3, probes


def test_issues_issue_and_performance_pages(vigie, browser, shots):
    setup_first_admin(browser, vigie)
    browser.get(vigie.url + "/issues")
    rows = browser.find_elements(By.CSS_SELECTOR, "[data-live-part=rows] tr")
    assert len(rows) >= 8
    assert browser.find_element(By.CSS_SELECTOR, "svg.spark")
    shots(browser, "30-issues")

    browser.find_element(By.LINK_TEXT, "KeyError: 'BE'").click()
    WebDriverWait(browser, 10).until(lambda b: "KeyError" in b.title)
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "render_invoice" in page and "[Filtered]" in page and "hunter2" not in page
    assert "connected to smtp.example.com" in page, "breadcrumbs shown"
    assert "same job" in page, "a link to the job's logs"
    shots(browser, "31-issue")

    # Resolve it from the page; the list no longer shows it among unresolved issues.
    browser.find_element(By.XPATH, "//button[text()='Resolve']").click()
    WebDriverWait(browser, 10).until(lambda b: "now resolved" in b.page_source)
    browser.get(vigie.url + "/issues")
    assert "KeyError: 'BE'" not in browser.find_element(By.TAG_NAME, "main").text

    browser.get(vigie.url + "/performance")
    table = browser.find_element(By.CSS_SELECTOR, "table.transactions").text
    assert "/invoices/{id}" in table and "send_invoices" in table
    shots(browser, "32-performance")
    browser.find_element(By.LINK_TEXT, "send_invoices").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".wf-row"))
    bars = browser.find_elements(By.CSS_SELECTOR, ".wf-row")
    assert len(bars) == 3, "the transaction and its two spans"
    assert browser.find_elements(By.CSS_SELECTOR, "svg.lines polyline")
    shots(browser, "33-transaction")
