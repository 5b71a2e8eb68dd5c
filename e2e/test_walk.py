"""A walk over every page, with data of every kind, at desktop and phone width, as a user
meets them: the real `sentry-sdk` (errors, a transaction), jobs with items (one reported, one
as Celery names its tasks), log lines, a monitor's pings, an alert rule. On every page:

- no card or section says "Nothing received yet" where something was received;
- case-sensitive data reads exactly as sent (the text a reader sees, after CSS);
- no raw ISO timestamp is shown (times are relative, the exact one on hover);
- at 390 px the page does not scroll sideways.

A screenshot of each page at each width lands in e2e/screenshots/walk-*.png: look at them.
"""

import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from browser import make_browser, setup_first_admin
from harness import wait_for

APP = Path(__file__).resolve().parent / "sentry_app.py"
ISO = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
# Sent with these cases; each must read the same wherever a page shows it.
CASED = ["Send Invoices (March)", "ACME Corp", "/Reports/Export", "sync-Stock", "userName"]


def call(srv, path, body=None, token=None, method=None):
    req = urllib.request.Request(srv.url + path, headers={"Authorization": f"Bearer {token or srv.token}"})
    if body is not None:
        req.data = (body if isinstance(body, bytes) else json.dumps(body).encode())
        req.add_header("Content-Type", "application/json")
        req.method = method or "POST"
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
        return json.loads(text) if text.strip() else None


@pytest.fixture(scope="module")
def seeded(vigie):
    """One of everything, through the interfaces applications use."""
    out = subprocess.run([sys.executable, str(APP), "errors", vigie.dsn, "gzip"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    key = vigie.key
    call(vigie, "/api/v1/jobs", {"id": "march-send", "name": "Send Invoices (March)", "kind": "email",
                                 "total": 3}, token=key)
    call(vigie, "/api/v1/jobs/march-send/items", [
        {"status": "ok", "id": "INV-1", "target": "ada@example.com", "fields": {"customer": "ACME Corp"}},
        {"status": "skipped", "id": "INV-2", "comment": "no e-mail address"},
        {"status": "error", "id": "INV-3", "error": "550 mailbox full"},
    ], token=key)
    call(vigie, "/api/v1/jobs/march-send/progress", {"message": "Export to /Reports/Export"}, token=key)
    call(vigie, "/api/v1/jobs/march-send/finish", {"status": "failed"}, token=key)
    call(vigie, "/api/v1/jobs", {"id": "5f0c-task", "name": "shop.tasks.sync", "kind": "celery"}, token=key)
    lines = "".join(json.dumps(r) + "\n" for r in [
        {"message": "export written to /Reports/Export", "level": "info", "userName": "Ada", "job_id": "march-send"},
        {"message": "mailbox full for INV-3", "level": "error", "job_id": "march-send"},
    ])
    call(vigie, "/api/v1/logs?source=worker", lines.encode(), token=key)
    urllib.request.urlopen(f"{vigie.url}/ping/{key}/sync-Stock", timeout=10).read()
    channel = call(vigie, "/api/v1/alerts/channels",
                   {"name": "ops hook", "target": {"kind": "webhook", "url": "http://127.0.0.1:9/hook"}})
    call(vigie, "/api/v1/alerts/rules", {"name": "Failed sends", "rule": {"kind": "job_failed"},
                                         "channels": [channel["id"]]})
    wait_for(lambda: call(vigie, "/api/v1/transactions"), "the SDK's transaction")
    wait_for(lambda: call(vigie, "/api/v1/issues")["issues"], "the SDK's issues")
    issue = call(vigie, "/api/v1/issues")["issues"][0]["id"]
    transaction = call(vigie, "/api/v1/transactions")[0]["name"]
    return {"issue": issue, "transaction": transaction}


PAGES = [
    ("dashboard", "/"),
    ("jobs", "/jobs"),
    ("jobs-celery", "/jobs?origin=celery"),
    ("job", "/jobs/march-send"),
    ("logs", "/logs"),
    ("log-sources", "/logs/sources"),
    ("issues", "/issues"),
    ("issue", "/issues/{issue}"),
    ("performance", "/performance"),
    ("transaction", "/performance/transaction?name={transaction_q}"),
    ("monitors", "/monitors"),
    ("monitor", "/monitors/sync-Stock"),
    ("alerts", "/alerts"),
    ("feedback", "/feedback"),
    ("celery", "/celery"),
    ("system", "/system"),
    ("projects", "/settings/projects"),
]


# The innermost elements that reach past the viewport's right edge, to say what overflows.
WIDEST = """
const w = document.documentElement.clientWidth;
const out = [];
const clipped = (el) => {
  for (let p = el.parentElement; p; p = p.parentElement) {
    if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return true;
  }
  return false;
};
for (const el of document.querySelectorAll('body *')) {
  const r = el.getBoundingClientRect();
  if (r.right > w + 1 && !clipped(el) &&
      ![...el.children].some((c) => c.getBoundingClientRect().right > w + 1)) {
    out.push(el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined ? '.' + el.className : '') + ' ' + Math.round(r.right));
  }
}
return out.slice(0, 6).join(', ');
"""


def visible_text(browser):
    return browser.find_element(By.TAG_NAME, "body").text


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)], ids=["desktop", "phone"])
def test_every_page_tells_the_truth_at_every_width(vigie, seeded, shots, width, height):
    browser = make_browser(width=width, height=height)
    # Headless Chromium keeps a window at least 500 px wide: a phone's width is emulated.
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500})
    try:
        setup_first_admin(browser, vigie) if width > 400 else login(browser, vigie)
        names = {**seeded, "transaction_q": urllib.parse.quote(seeded["transaction"])}
        problems = []
        for name, path in PAGES:
            browser.get(vigie.url + path.format(**names))
            text = visible_text(browser)
            source = browser.page_source
            shots(browser, f"walk-{name}-{width}")
            if "Nothing received yet" in text:
                problems.append(f"{name}: says 'Nothing received yet'")
            for cased in CASED:
                if cased in source and cased not in text and cased.upper() in text.upper():
                    problems.append(f"{name}: {cased!r} does not read as sent")
            if ISO.search(text):
                problems.append(f"{name}: a raw timestamp {ISO.search(text).group(0)!r}")
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 1:
                widest = browser.execute_script(WIDEST)
                problems.append(f"{name}: scrolls {overflow} px sideways at {width} px ({widest})")
        assert not problems, "\n".join(problems)
    finally:
        browser.quit()


def login(browser, vigie):
    from browser import PASSWORD
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(vigie.url + "/login")
    form = browser.find_element(By.CSS_SELECTOR, "form[action='/login']")
    form.find_element(By.NAME, "username").send_keys("alice")
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.submit()
    WebDriverWait(browser, 10).until(EC.title_contains("Dashboard"))
