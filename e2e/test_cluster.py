"""Two Vigie instances on one real PostgreSQL, with a real SMTP server (aiosmtpd): an e-mail
channel and a rule made through the follower; the leader killed with -9; then a job that fails
through the survivor is mailed once, and the daily report (every minute here) keeps arriving,
sent by the survivor. Skipped without VIGIE_TEST_POSTGRES_URL (CI sets it)."""

import os
import subprocess
import tempfile
import time

import pytest
from aiosmtpd.controller import Controller

from harness import Inbox, Server, api, free_port, smtp_settings, vigie_binary, wait_for

ADMIN_URL = os.environ.get("VIGIE_TEST_POSTGRES_URL")


def psql(url, sql):
    subprocess.run(["psql", url, "-qc", sql], check=True, capture_output=True)


@pytest.fixture(scope="module")
def cluster():
    if not ADMIN_URL:
        pytest.skip("set VIGIE_TEST_POSTGRES_URL to run two instances on PostgreSQL")
    name = f"vigie_e2e_cluster_{os.getpid()}"
    psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(ADMIN_URL, f"CREATE DATABASE {name}")
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    env = {**smtp_settings(smtp.port), "VIGIE_DATABASE_URL": url,
           "VIGIE_REPORTS_DAILY": "* * * * *", "VIGIE_REPORTS_DAILY_CHANNEL": "ops mail"}
    with tempfile.TemporaryDirectory() as a_data, tempfile.TemporaryDirectory() as b_data:
        binary = vigie_binary()
        a = Server(binary, a_data, env=env)
        b = Server(binary, b_data, env=env)
        token = subprocess.run(
            [str(binary), "token", "create", "--name", "e2e", "--scope", "admin", "--database", url],
            check=True, capture_output=True, text=True).stdout.strip()
        yield a, b, token, inbox
        a.close()
        b.close()
    smtp.stop()
    psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def leads(srv):
    try:
        return "vigie_instance_leader 1" in srv.get("/metrics").splitlines()
    except OSError:
        return False


def subjects(inbox):
    return [message["Subject"] for _, message in inbox.messages]


def test_mail_keeps_coming_once_after_the_leader_is_killed(cluster):
    a, b, token, inbox = cluster
    b.token = token
    assert "(leads" in a.banner and "(follows" in b.banner, (a.banner, b.banner)
    channel = api(b, "/api/v1/alerts/channels",
                  {"name": "ops mail", "target": {"kind": "email", "to": ["ops@example.com"]}})
    api(b, "/api/v1/alerts/rules",
        {"name": "failures", "rule": {"kind": "job_failed"}, "channels": [channel["id"]]})

    # The leader dies without a word; the follower leads within 10 s.
    a.process.kill()
    a.process.wait()
    wait_for(lambda: leads(b), "the follower taking the lead", timeout=10)

    api(b, "/api/v1/jobs", {"id": "send", "name": "bulk invoices", "total": 2})
    api(b, "/api/v1/jobs/send/finish", {"status": "failed", "message": "SMTP 421"})
    wait_for(lambda: any("bulk invoices" in s for s in subjects(inbox)), "the failure's e-mail")
    # The daily report (every minute here) is sent by the survivor too.
    wait_for(lambda: any(s.startswith("[report] Daily report") for s in subjects(inbox)),
             "a daily report after the failover", timeout=150)
    time.sleep(3)  # anything sent twice would have arrived by now
    failures = [s for s in subjects(inbox) if "bulk invoices" in s]
    assert len(failures) == 1, subjects(inbox)
    rcpts, mail = next((r, m) for r, m in inbox.messages if "bulk invoices" in m["Subject"])
    assert rcpts == ["ops@example.com"]
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "SMTP 421" in body, body
