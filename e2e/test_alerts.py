"""Alerts end to end: a real SMTP server (aiosmtpd) started by the test receives Vigie's
e-mails — a channel's test message, then an alert when a cron monitor's run fails, then the
"resolved" message when it runs well again — parsed and asserted; then the Alerts page in
Chromium."""

import email
import email.policy
import json
import socket
import tempfile
import time
import urllib.request

import pytest
from aiosmtpd.controller import Controller
from selenium.webdriver.common.by import By

from browser import setup_first_admin
from harness import Server, vigie_binary


class Inbox:
    """Every message the SMTP server accepted, parsed."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.rcpt_tos, message))
        return "250 OK"

    def wait(self, count, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.messages) < count:
            time.sleep(0.2)
        assert len(self.messages) >= count, f"{len(self.messages)} e-mails, {count} expected"
        return self.messages


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    env = {
        "VIGIE_SMTP_HOST": "127.0.0.1",
        "VIGIE_SMTP_PORT": str(controller.port),
        "VIGIE_SMTP_SECURITY": "none",
        "VIGIE_SMTP_FROM": "Vigie <vigie@example.com>",
    }
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, env=env)
        srv.token = srv.admin_token()
        yield srv
        if srv.process.poll() is None:
            srv.process.kill()


def api(srv, path, body=None):
    req = urllib.request.Request(srv.url + path, headers={"Authorization": f"Bearer {srv.token}"})
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


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


def test_alerts_page(vigie, browser, shots):
    setup_first_admin(browser, vigie)
    browser.get(vigie.url + "/alerts")
    assert "ops mail" in browser.find_element(By.ID, "channels").text
    assert "a monitor run fails, is missed or times out" in browser.find_element(By.ID, "rules").text
    log = browser.find_element(By.ID, "deliveries").text
    assert "Monitor invoices is up again" in log
    shots(browser, "50-alerts")
