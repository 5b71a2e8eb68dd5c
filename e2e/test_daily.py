"""The daily report by e-mail: Vigie configured with `[reports] daily` every minute and a
channel of that name sends the report to a real SMTP server (aiosmtpd) started by the test;
the e-mail is parsed and asserted. `vigie report daily` prints the same report."""

import tempfile
import time

import pytest
from aiosmtpd.controller import Controller

from harness import api, Inbox, Server, free_port, smtp_settings, vigie_binary


@pytest.fixture(scope="module")
def vigie():
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    env = {**smtp_settings(smtp.port),
           "VIGIE_REPORTS_DAILY": "* * * * *", "VIGIE_REPORTS_DAILY_CHANNEL": "ops mail"}
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, env=env)
        srv.token = srv.admin_token()
        srv.inbox = inbox
        yield srv
        srv.close()
    smtp.stop()


def test_the_daily_report_arrives_by_email(vigie):
    api(vigie, "/api/v1/alerts/channels",
        {"name": "ops mail", "target": {"kind": "email", "to": ["ops@example.com"]}})
    api(vigie, "/api/v1/jobs", {"id": "send", "name": "bulk invoices", "kind": "mail", "total": 3})
    api(vigie, "/api/v1/jobs/send/items", {"items": [
        {"key": "1", "status": "ok"},
        {"key": "2", "name": "facture_CCT_002", "status": "error", "error": "421 4.7.0 Too many messages"}]})

    out = vigie.cli("report", "daily", "--tz", "UTC", token=vigie.token)
    assert out.returncode == 0, out.stderr
    assert "- mail: 1 jobs (0 failed or stalled), 1 ok, 1 failed, success 50.0 %" in out.stdout, out.stdout
    assert "facture_CCT_002: 421 4.7.0 Too many messages" in out.stdout

    # The schedule fires at the next minute (the clock starts when Vigie does); checks run
    # every minute.
    deadline = time.time() + 150
    while time.time() < deadline and not vigie.inbox.messages:
        time.sleep(1)
    assert vigie.inbox.messages, "no daily report e-mail"
    _, mail = vigie.inbox.messages[0]
    assert mail["Subject"].startswith("[report] Daily report of default for ")
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Work by kind" in body and "Last errors" in body, body
