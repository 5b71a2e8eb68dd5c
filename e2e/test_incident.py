"""The seed incident, replayed: a bulk send of invoices that the mail provider throttles
(`421 4.7.0` in the imported postfix log), nginx answering 504 on the progress endpoint, and
the sending job killed mid-way (it stalls). An alert e-mail arrives at a real SMTP server
(aiosmtpd); `vigie report incident` names SMTP throttling, the gateway timeouts and the
stalled job, with their lines; the report page shows the same in Chromium."""

import datetime
import json
import socket
import tempfile
import time
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser import setup_first_admin
from harness import api, Server, vigie_binary

PARIS = ZoneInfo("Europe/Paris")


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    # The incident happened in the last minutes, in Paris time, as the files say.
    start = datetime.datetime.now(PARIS).replace(microsecond=0) - datetime.timedelta(minutes=6)
    at = lambda s: start + datetime.timedelta(seconds=s)
    files = tmp_path_factory.mktemp("logs")
    (files / "mail.log").write_text("".join(
        f"{at(s).strftime('%b %e %H:%M:%S')} mail postfix/smtp[811]: 4F2A{s}: to=<client{s}@example.fr>, "
        f"relay=smtp.example.com[192.0.2.7]:587, delay=1.2, status=deferred "
        f"(host smtp.example.com said: 421 4.7.0 Too many messages, try again later)\n"
        for s in (20, 25, 31)))
    (files / "access.log").write_text("".join(
        f'203.0.113.9 - - [{at(s).strftime("%d/%b/%Y:%H:%M:%S %z")}] "GET /invoices/progress HTTP/1.1" '
        f'504 167 "-" "Mozilla/5.0"\n' for s in (40, 70)))
    (files / "error.log").write_text(
        f"{at(41).strftime('%Y/%m/%d %H:%M:%S')} [error] 31#31: *9 upstream timed out "
        f"(110: Connection timed out) while reading response header from upstream, "
        f"request: \"GET /invoices/progress HTTP/1.1\", upstream: \"http://127.0.0.1:8000/invoices/progress\"\n")
    with tempfile.TemporaryDirectory() as data:
        env = {"VIGIE_SMTP_HOST": "127.0.0.1", "VIGIE_SMTP_PORT": str(smtp.port),
               "VIGIE_SMTP_SECURITY": "none", "VIGIE_SMTP_FROM": "Vigie <vigie@example.com>"}
        srv = Server(vigie_binary(), data, env=env)
        srv.token = srv.admin_token()
        done = srv.cli("import", "--data", data, "--tz", "Europe/Paris",
                       str(files / "mail.log"), str(files / "access.log"), str(files / "error.log"))
        assert done.returncode == 0, done.stderr
        yield srv, inbox, start
        srv.close()
    smtp.stop()


def test_the_killed_send_alerts_by_email(incident):
    srv, inbox, _ = incident
    channel = api(srv, "/api/v1/alerts/channels",
                  {"name": "ops", "target": {"kind": "email", "to": ["ops@example.com"]}})
    api(srv, "/api/v1/alerts/rules",
        {"name": "stalled sends", "rule": {"kind": "job_stalled"}, "channels": [channel["id"]]})
    # The send reports 212 of 500, then the worker is killed: no more news.
    api(srv, "/api/v1/jobs", {"id": "bulk-invoices", "name": "bulk invoices", "kind": "mail",
                              "total": 500, "stall_after": 2})
    api(srv, "/api/v1/jobs/bulk-invoices/progress", {"processed": 212, "failed": 3})
    deadline = time.time() + 30
    while time.time() < deadline and not inbox.messages:
        time.sleep(0.3)
    assert inbox.messages, "no alert e-mail"
    mail = inbox.messages[0]
    assert "Subject: [alert] Job stalled: bulk invoices" in mail
    assert "212 of 500 processed, 3 failed" in mail


def test_the_report_names_the_causes(incident):
    srv, _, start = incident
    frm = (start - datetime.timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M")
    to = (datetime.datetime.now(PARIS) + datetime.timedelta(minutes=2)).strftime("%H:%M")
    if to < frm[-5:]:  # past midnight: give the full date
        to = (datetime.datetime.now(PARIS) + datetime.timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M")
    out = srv.cli("report", "incident", "--from", frm, "--to", to, "--tz", "Europe/Paris", token=srv.token)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "* The SMTP server throttled the sending (3 entries" in text, text
    assert "421 4.7.0 Too many messages" in text
    assert "* The web server gave up on the application (502/504)" in text
    assert "* A job stopped before its end" in text
    assert "upstream timed out" in text

    md = srv.cli("report", "incident", "--from", frm, "--to", to, "--tz", "Europe/Paris",
                 "--format", "markdown", token=srv.token).stdout
    assert "## Diagnosis" in md and "- **The SMTP server throttled the sending**" in md
    report = json.loads(srv.cli("report", "incident", "--from", frm, "--to", to, "--tz",
                                "Europe/Paris", "--format", "json", token=srv.token).stdout)
    assert [h["rule"] for h in report["hints"]][:2] == ["smtp_throttling", "gateway_timeout"]
    assert report["timezone"] == "Europe/Paris"

    # One self-contained HTML file for the post-mortem, times in the asked zone.
    html = srv.cli("report", "incident", "--from", frm, "--to", to, "--tz", "Europe/Paris",
                   "--format", "html", token=srv.token).stdout
    assert html.startswith("<!doctype html>") and "<style>" in html
    assert "The SMTP server throttled the sending" in html
    assert f"{frm}:00" in html and "(Europe/Paris)" in html, html[:800]

    wrong = srv.cli("report", "incident", "--from", frm, "--to", "nonsense", token=srv.token)
    assert wrong.returncode == 1 and "is not a time such as 22:30" in wrong.stderr, wrong.stderr


def test_the_report_page(incident, browser, shots):
    srv, _, start = incident
    setup_first_admin(browser, srv)
    # The dashboard tells the day: the stalled send, the log volume.
    overview = WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "overview")).text.lower()
    assert "jobs stalled\n1" in overview, overview
    assert "log lines, last 24 hours" in overview
    shots(browser, "52-dashboard")
    browser.get(srv.url + "/alerts")
    browser.find_element(By.LINK_TEXT, "Incident report").click()
    form = WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "incident-form"))
    form.find_element(By.NAME, "from").send_keys(
        (start - datetime.timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M"))
    form.find_element(By.NAME, "to").send_keys(
        (datetime.datetime.now(PARIS) + datetime.timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M"))
    form.find_element(By.NAME, "tz").send_keys("Europe/Paris")
    form.submit()
    diagnosis = WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "diagnosis")).text
    assert "The SMTP server throttled the sending" in diagnosis
    assert "A job stopped before its end" in diagnosis
    assert "bulk invoices" in browser.find_element(By.ID, "timeline").text
    assert "Times in Europe/Paris" in browser.find_element(By.ID, "tally").text
    assert "format=html" in browser.find_element(By.ID, "export-html").get_attribute("href")
    shots(browser, "51-incident")
