"""Alerts end to end: a real SMTP server (aiosmtpd) started by the test receives Vigie's
e-mails — a channel's test message, then an alert when a cron monitor's run fails, then the
"resolved" message when it runs well again; a log-query threshold tripped by an application's
Python logging (through vigie_client's handler), with its evidence lines, then resolved when
the window empties — parsed and asserted; then the Alerts page in Chromium, where a threshold
rule is added through the form."""

import logging
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from browser import flash_after, setup_first_admin
from harness import api, Inbox, Server, free_port, smtp_settings, vigie_binary

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "python"))
from vigie_client import VigieHandler  # noqa: E402


@pytest.fixture(scope="module")
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture(scope="module")
def vigie(smtp):
    controller, _ = smtp
    env = smtp_settings(controller.port)
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, env=env)
        srv.token = srv.admin_token()
        yield srv
        srv.close()


def ping(srv, path, body=b""):
    with urllib.request.urlopen(f"{srv.url}/ping/{srv.key}/{path}", data=body, timeout=10) as r:
        return r.read()


def text_of(message):
    return message.get_body(preferencelist=("plain",)).get_content()


def test_email_alerts_arrive(vigie, smtp):
    _, inbox = smtp
    channel = api(vigie, "/api/v1/alerts/channels",
                  {"name": "ops mail", "target": {"kind": "email", "to": ["ops@example.com"]}})
    test = api(vigie, f"/api/v1/alerts/channels/{channel['id']}/test", {})
    assert test == {"sent": True, "error": None}
    rcpts, message = inbox.wait(1)[0]
    assert rcpts == ["ops@example.com"]
    assert message["From"] == "Vigie <vigie@example.com>"
    assert 'channel "ops mail" works' in message["Subject"]

    api(vigie, "/api/v1/alerts/rules",
        {"name": "cron", "rule": {"kind": "monitor_down"}, "channels": [channel["id"]],
         "cooldown_s": 0})
    ping(vigie, "invoices/fail", b"smtplib.SMTPDataError: (421, b'4.7.0 Too many messages')\n")
    _, alert = inbox.wait(2)[1]
    assert alert["Subject"] == "[alert] Monitor invoices: run failed"
    body = text_of(alert)
    assert "4.7.0 Too many messages" in body, body
    assert f"Open in Vigie: {vigie.url}/monitors/invoices" in body, body

    ping(vigie, "invoices")
    _, resolved = inbox.wait(3)[2]
    assert resolved["Subject"] == "[resolved] Monitor invoices is up again"
    log = api(vigie, "/api/v1/alerts/deliveries")
    assert [d["status"] for d in log] == ["sent", "sent", "sent"]


def test_log_threshold_alerts_then_resolves(vigie, smtp):
    _, inbox = smtp
    before = len(inbox.messages)
    channel = next(c for c in api(vigie, "/api/v1/alerts/channels") if c["name"] == "ops mail")
    api(vigie, "/api/v1/alerts/rules",
        {"name": "invoice errors",
         "rule": {"kind": "log_matches", "query": "level:>=error logger:invoices*",
                  "above": 3, "window_s": 20},
         "channels": [channel["id"]], "cooldown_s": 0})
    time.sleep(1.5)  # a new rule counts from when the engine loads it (at most a second)

    # The application logs as it always has; the handler ships the records to Vigie.
    handler = VigieHandler(vigie.url, vigie.key, source="billing", flush_interval=0.2)
    app_log = logging.getLogger("invoices.send")
    app_log.addHandler(handler)
    app_log.setLevel(logging.INFO)
    other = logging.getLogger("payments")
    other.addHandler(handler)
    try:
        other.error("card declined")           # another logger: not counted
        app_log.warning("retrying batch 7")    # not an error: not counted
        for i in range(4):
            app_log.error("invoice F-%d: SMTP 421 4.7.0 Too many messages", 1000 + i)
        handler.flush()
        start = time.time()
        _, alert = inbox.wait(before + 1)[before]
        latency = time.time() - start
    finally:
        app_log.removeHandler(handler)
        other.removeHandler(handler)
        handler.close()
    assert latency < 5, f"alert {latency:.1f} s after the lines were sent"
    assert alert["Subject"] == (
        "[alert] 4 log lines match level:>=error logger:invoices* in 20 s (over 3)")
    body = text_of(alert)
    assert "invoice F-1003: SMTP 421 4.7.0 Too many messages" in body, body
    assert "card declined" not in body
    assert f"Open in Vigie: {vigie.url}/logs?q=" in body, body

    # Once the lines leave the 20 s window, the condition clears.
    _, resolved = inbox.wait(before + 2, timeout=40)[before + 1]
    assert resolved["Subject"].startswith("[resolved] Resolved: more than 3 log lines match")


def test_alerts_page(vigie, browser, shots):
    setup_first_admin(browser, vigie)
    browser.get(vigie.url + "/alerts")
    assert "ops mail" in browser.find_element(By.ID, "channels").text
    assert "a monitor run fails, is missed or times out" in browser.find_element(By.ID, "rules").text
    log = browser.find_element(By.ID, "deliveries").text
    assert "Monitor invoices is up again" in log
    assert "invoice errors" in log

    # A threshold rule through the form: slow invoice pages, reminded every hour.
    form = browser.find_element(By.ID, "add-rule")
    form.find_element(By.NAME, "name").send_keys("slow invoices")
    Select(form.find_element(By.NAME, "kind")).select_by_value("slow_transactions")
    form.find_element(By.NAME, "filter").send_keys("GET /invoices*")
    form.find_element(By.NAME, "threshold").send_keys("800")
    form.find_element(By.NAME, "window_min").send_keys("10")
    form.find_element(By.NAME, "renotify_min").send_keys("60")
    form.find_element(By.CSS_SELECTOR, "input[name=channel]").click()
    flash = flash_after(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]").submit)
    assert "when the p95 of GET /invoices* is above 800 ms over 10 min" in flash, flash
    rules = browser.find_element(By.ID, "rules").text
    assert "slow invoices" in rules
    shots(browser, "50-alerts")
