"""A real bulk send, watched in a real browser: 500 invoice e-mails through a real SMTP server
(aiosmtpd) that refuses some recipients and throttles for a while with `421 4.7.0`; the sender
reports through vigie_client. Then a second send is killed with SIGKILL halfway and must turn
stalled in time."""

import functools
import http.server
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from browser import setup_first_admin
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

HERE = Path(__file__).resolve().parent


class Mailbox:
    """An SMTP server's handler: refuses bounce addresses, throttles messages 200–260 with 421
    (each once), counts what it accepted."""

    def __init__(self):
        self.accepted = 0
        self.refused = 0
        self.throttled = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            with self.lock:
                self.refused += 1
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            seen = self.accepted + self.throttled
            if 200 <= seen < 260 and seen % 2 == 0:
                self.throttled += 1
                return "421 4.7.0 too many messages"
            self.accepted += 1
        return "250 Message accepted for delivery"


@pytest.fixture(scope="module")
def smtp():
    mailbox = Mailbox()
    with socket.socket() as probe:  # aiosmtpd checks readiness on its port: pick a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, mailbox
    controller.stop()


def api(server, path):
    """Reads the API as a script does: with an API token (the project key only sends)."""
    if not hasattr(server, "_read_token"):
        server._read_token = server.admin_token()
    req = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {server._read_token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


def sender(server, port, job_id, count, *extra):
    return subprocess.Popen(
        [sys.executable, str(HERE / "bulk_send.py"), server.dsn, str(port), job_id, str(count), *extra],
        stdout=subprocess.PIPE, text=True,
    )


def number(browser, key):
    text = browser.find_element(By.CSS_SELECTOR, f"[data-job-page] .stat [data-bind={key}]").text
    return int(text.replace(",", ""))


def test_bulk_send_live_then_a_killed_send_stalls(server, browser, shots, smtp):
    port, mailbox = smtp
    setup_first_admin(browser, server)

    send = sender(server, port, "invoices-2026-11", 500, "--delay", "0.012")
    assert send.stdout.readline().strip() == "invoices-2026-11"

    # The jobs list shows it running, live.
    browser.get(server.url + "/jobs")
    WebDriverWait(browser, 10).until(
        lambda d: "Send invoices" in d.find_element(By.CSS_SELECTOR, "[data-jobs-rows]").text)
    shots(browser, "10-jobs-list-running")

    # The job page, mid-run: numbers move without a reload.
    browser.get(server.url + "/jobs/invoices-2026-11")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-live-indicator]").text == "Live")
    first = number(browser, "processed")
    WebDriverWait(browser, 20).until(lambda d: number(d, "processed") > first + 50)
    browser.execute_script("window.__sameDocument = true")
    shots(browser, "11-job-mid-run")
    assert browser.find_element(By.CSS_SELECTOR, "[data-job-status]").text.strip() == "running"

    assert send.wait(timeout=120) == 0
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-job-status]").text.strip() == "completed")
    WebDriverWait(browser, 10).until(lambda d: number(d, "processed") == 500)
    assert browser.execute_script("return window.__sameDocument === true"), "updated without reload"
    shots(browser, "12-job-finished")

    # The page agrees with the SMTP server.
    assert mailbox.throttled > 0, "the 421 period happened"
    assert number(browser, "ok") == mailbox.accepted == 490
    assert number(browser, "failed") == mailbox.refused == 10
    summary = browser.find_element(By.CSS_SELECTOR, "[data-summary-line]").text
    assert summary.startswith("490 ok (98.0 %), 10 errors (2.0 %) of 500"), summary
    errors_only = api(server, "/api/v1/jobs/invoices-2026-11/items?errors=true&limit=50")
    assert errors_only["total"] == 10
    assert errors_only["items"][0]["error"].startswith("550 5.1.1")

    # A reload after the end shows the same numbers.
    browser.refresh()
    assert number(browser, "processed") == 500

    # The error filter of the items table shows only the refused ones, highlighted.
    browser.get(server.url + "/jobs/invoices-2026-11?status=error")
    rows = browser.find_elements(By.CSS_SELECTOR, "[data-items] tr")
    assert len(rows) == 10 and all("row-error" in r.get_attribute("class") for r in rows)
    shots(browser, "13-job-errors")

    # A second send, killed halfway: stalled within stall_after + 15 s.
    stall_after = 3
    send = sender(server, port, "invoices-killed", 500, "--delay", "0.02", "--stall-after", str(stall_after))
    assert send.stdout.readline().strip() == "invoices-killed"
    deadline = time.time() + 60
    while api(server, "/api/v1/jobs/invoices-killed")["processed"] < 150:
        assert time.time() < deadline
        time.sleep(0.2)
    send.kill()
    send.wait()
    killed_at = time.time()
    browser.get(server.url + "/jobs/invoices-killed")
    WebDriverWait(browser, stall_after + 15 + 5).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-job-status]").text.strip() == "stalled")
    assert time.time() - killed_at <= stall_after + 15
    job = api(server, "/api/v1/jobs/invoices-killed")
    assert job["status"] == "stalled" and job["stalled_since"]
    assert not browser.find_element(By.CSS_SELECTOR, "[data-stalled]").get_attribute("hidden")
    shots(browser, "14-job-stalled")


EMBED_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop back office</title></head>
<body>
<h1>Sending invoices…</h1>
<div id="live"></div>
<div id="polled"></div>
<p id="done"></p>
<p id="error"></p>
<script src="%(server)s/static/progress.js"></script>
<script>
  const opts = {server: "%(server)s", job: "%(job)s", token: "%(token)s"};
  VigieProgress.mount(document.getElementById("live"), Object.assign({}, opts, {
    onComplete: (job) => { document.getElementById("done").textContent = job.summary.line; },
  }));
  VigieProgress.mount(document.getElementById("polled"), Object.assign({poll: true, pollMs: 300}, opts, {
    onError: (e) => { document.getElementById("error").textContent = e.code + " " + e.status; },
  }));
</script>
</body></html>
"""


def test_the_progress_bar_embeds_in_another_site(server, browser, shots):
    """A team's own page on another origin shows the live bar with only the job's read token."""
    # The job, created by the worker with the project key.
    def post(path, body, token=server.key, method="POST"):
        req = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)

    job = post("/api/v1/jobs", {"name": "Embedded send", "total": 40, "id": "embedded"})
    token = job["read_token"]

    with tempfile.TemporaryDirectory() as site:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=site)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        origin = f"http://127.0.0.1:{httpd.server_address[1]}"
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        Path(site, "index.html").write_text(EMBED_PAGE % {"server": server.url, "job": "embedded", "token": token})
        try:
            # Before its origin is allowed, the page is told why it cannot read the job.
            browser.get(origin + "/index.html")
            WebDriverWait(browser, 10).until(
                lambda d: d.find_element(By.ID, "error").text == "origin_not_allowed 403")
            polled = browser.find_element(By.ID, "polled").text
            assert f"origin {origin} is not allowed" in polled, polled
            shots(browser, "15-embedded-origin-refused")
            post("/api/v1/projects/1", {"allowed_origins": [origin]}, token=server.admin_token(), method="PATCH")
            browser.get(origin + "/index.html")
            for i in range(40):
                status = "error" if i % 10 == 3 else "ok"
                post("/api/v1/jobs/embedded/items", {"status": status, "id": str(i), "error": "550" if status == "error" else None})
                if i == 20:
                    WebDriverWait(browser, 10).until(
                        lambda d: "processed" in d.find_element(By.ID, "live").text)
                    shots(browser, "15-embedded-progress-mid-run")
            post("/api/v1/jobs/embedded/finish", {})
            WebDriverWait(browser, 15).until(
                lambda d: d.find_element(By.ID, "done").text.startswith("36 ok"))
            WebDriverWait(browser, 15).until(
                lambda d: "100.0 %" in d.find_element(By.ID, "polled").text)
            live = browser.find_element(By.ID, "live").text
            assert "40 / 40 processed · 4 errors" in live, live
            shots(browser, "16-embedded-progress-done")
        finally:
            httpd.shutdown()

