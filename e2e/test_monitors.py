"""Monitors end to end: the real sentry-sdk's cron monitoring (`@monitor` with a
monitor_config) and ping URLs called over HTTP as a crontab line would, a heartbeat that
misses its schedule, then the Monitors pages in Chromium."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser import flash_after, setup_first_admin, sideways_overflow
from harness import wait_for

APP = Path(__file__).resolve().parent / "monitor_app.py"


def api(srv, path, body=None, method="GET"):
    req = urllib.request.Request(srv.url + path, method=method,
                                 headers={"Authorization": f"Bearer {srv.token}"})
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def ping(srv, path, body=None):
    data = body.encode() if body is not None else None
    with urllib.request.urlopen(f"{srv.url}/ping/{srv.key}/{path}", data=data, timeout=10) as r:
        return r.read().decode()


def test_the_sdk_cron_monitor_reports_runs(vigie):
    for outcome in ["ok", "fail"]:
        out = subprocess.run([sys.executable, str(APP), vigie.dsn, outcome, "nightly-invoices"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    m = wait_for(lambda: next((m for m in api(vigie, "/api/v1/monitors")
                               if m["slug"] == "nightly-invoices"
                               and len(m["recent_runs"]) == 2
                               and m["recent_runs"][0]["status"] != "in_progress"), None),
                 "two finished runs")
    assert m["schedule"] == "0 3 * * * (Europe/Paris)"
    assert m["checkin_margin_min"] == 5 and m["max_runtime_min"] == 60
    assert [r["status"] for r in m["recent_runs"]] == ["error", "ok"]
    assert m["state"] == "down"
    assert all(r["duration_ms"] is not None for r in m["recent_runs"])
    job = api(vigie, f"/api/v1/jobs/{m['recent_runs'][0]['job_id']}")
    assert job["status"] == "failed" and job["kind"] == "monitor"


def test_pings_and_a_missed_heartbeat(vigie):
    assert ping(vigie, "backup/start") == "OK\n"
    assert ping(vigie, "backup/0", "rsync: 1,204 files\nbackup done\n") == "OK\n"
    with pytest.raises(urllib.error.HTTPError) as wrong:
        ping(vigie, "backup/finish")
    assert wrong.value.code == 404
    assert "/start, /fail or an exit code" in wrong.value.read().decode()

    # A heartbeat expected every minute whose last beat is the one below: within the margin
    # (1 min) after the expected time, the periodic check (every 2 s) finds the run missed.
    api(vigie, "/api/v1/monitors/heartbeat", method="PUT",
        body={"schedule": {"type": "interval", "value": 1, "unit": "minute"}, "checkin_margin": 1})
    ping(vigie, "heartbeat")
    beat = time.time()
    m = wait_for(lambda: (lambda m: m if m["recent_runs"][0]["status"] == "missed" else None)(
        api(vigie, "/api/v1/monitors/heartbeat")), "a missed run", timeout=180)
    found_after = time.time() - beat
    assert m["state"] == "down"
    # Expected at +60 s, missed at +120 s (margin), found by a check at most 2 s later (the
    # API is polled every 0.5 s).
    assert 119 < found_after < 126, found_after


def test_monitor_pages(vigie, browser, shots):
    setup_first_admin(browser, vigie)
    browser.get(vigie.url + "/monitors")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.monitors tbody tr")
    assert len(rows) == 3
    assert browser.find_elements(By.CSS_SELECTOR, ".run-strip .run.failed")
    assert browser.find_elements(By.CSS_SELECTOR, ".run-strip .run.completed")
    shots(browser, "40-monitors")

    browser.find_element(By.LINK_TEXT, "backup").click()
    WebDriverWait(browser, 10).until(lambda b: "backup" in b.title)
    browser.find_element(By.CSS_SELECTOR, "details summary").click()
    assert "backup done" in browser.find_element(By.CSS_SELECTOR, "pre.output").text
    form = browser.find_element(By.ID, "schedule-form")
    form.find_element(By.NAME, "schedule").send_keys("0 2 * * *")
    form.find_element(By.NAME, "timezone").send_keys("Europe/Paris")
    flash = flash_after(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
    assert "Schedule saved: 0 2 * * * (Europe/Paris)" in flash
    shots(browser, "41-monitor")
    # At a laptop's 1366 px the ping URLs end in "…" inside their panel, not past the page.
    assert not sideways_overflow(browser)
