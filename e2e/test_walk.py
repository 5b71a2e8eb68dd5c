"""A walk over every page, with data of every kind, at desktop and phone width and in dark mode,
as a user meets them: the real `sentry-sdk` (errors, a transaction), a reported job with items,
a real Celery worker on Redis (a task that succeeds, one that fails, one that retries, a bulk
send with progress), log lines, a monitor's pings, an alert rule, a service instrumented with
the OpenTelemetry SDK. On every page:

- no card or section says "Nothing received yet" where something was received;
- case-sensitive data reads exactly as sent (the text a reader sees, after CSS);
- no raw ISO timestamp is shown (times are relative, the exact one on hover);
- at 390 px the page does not scroll sideways.

A screenshot of each page at each width lands in e2e/screenshots/walk-*.png: look at them.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from browser import log_in, make_browser, setup_first_admin, sideways_overflow
from harness import Server, celery, stop, vigie_binary, wait_for

HERE = Path(__file__).resolve().parent
APP = HERE / "sentry_app.py"
REDIS = os.environ.get("VIGIE_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not REDIS, reason="VIGIE_TEST_REDIS_URL is not set: the walk "
                                "needs a Celery worker for the Celery pages")
# A database of its own, so other Celery apps on this Redis do not mix in.
BROKER = (REDIS or "").rsplit("/", 1)[0] + "/12"
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
def server():
    """This module's server watches a Celery broker with a real worker on it."""
    env = {**os.environ, "CELERY_BROKER": BROKER, "PYTHONPATH": str(HERE)}
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, "--celery-broker", BROKER)
        srv.celery_env = env
        worker = celery(env, "worker", "-E", "-c", "2", "-n", "walk@%h")
        try:
            yield srv
        finally:
            stop(worker)
            srv.close()


def celery_tasks(vigie):
    """The four tasks, each once, when all have ended."""
    wait_for(lambda: call(vigie, "/api/v1/celery/workers"), "the worker's heartbeat")
    subprocess.run([sys.executable, "-c", "from celery_app import *; add.delay(2, 3); "
                    "boom.delay('BE'); send_invoices.delay(5); flaky.delay('INV-7')"],
                   cwd=HERE, env=vigie.celery_env, check=True, timeout=30)

    def ended():
        tasks = {t["name"]: t for t in call(vigie, "/api/v1/celery/tasks?limit=100")}
        ready = all(t["state"] in ("SUCCESS", "FAILURE") for t in tasks.values())
        return tasks if len(tasks) == 4 and ready else None

    return wait_for(ended, "the four Celery tasks ended")


@pytest.fixture(scope="module")
def seeded(vigie):
    """One of everything, through the interfaces applications use."""
    # Errors and a task transaction, then a Starlette app's requests (one failing) by route.
    for scenario in ("errors", "asgi"):
        out = subprocess.run([sys.executable, str(APP), scenario, vigie.dsn, "gzip"],
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
    # The release the SDK reports, declared and deployed as a deploy script does.
    call(vigie, "/api/0/organizations/acme/releases/", {"version": "shop@1.4.2", "projects": ["default"]})
    call(vigie, "/api/0/organizations/acme/releases/shop@1.4.2/deploys/", {"environment": "production"})
    wait_for(lambda: call(vigie, "/api/v1/transactions"), "the SDK's transaction")
    wait_for(lambda: call(vigie, "/api/v1/issues")["issues"], "the SDK's issues")
    issues = call(vigie, "/api/v1/issues?limit=200")["issues"]
    issue = issues[0]["id"]
    (failed_request,) = [i["id"] for i in issues if i["title"].startswith("ValueError: invoice template missing")]
    transaction = call(vigie, "/api/v1/transactions")[0]["name"]
    tasks = celery_tasks(vigie)
    # A service instrumented with OpenTelemetry: one request that fails, over OTLP/HTTP.
    otel = subprocess.run([sys.executable, str(HERE / "otel_app.py")], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": vigie.url,
                                           "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {key}",
                                           "OTEL_SERVICE_NAME": "Invoices-API"})
    assert otel.returncode == 0, otel.stderr
    # The same service's meter: a counter, a histogram, an up-down counter and a gauge.
    meter = subprocess.run([sys.executable, str(HERE / "otel_metrics_app.py")], capture_output=True,
                           text=True, timeout=60,
                           env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": vigie.url,
                                "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {key}",
                                "OTEL_SERVICE_NAME": "Invoices-API"})
    assert meter.returncode == 0, meter.stderr
    return {"issue": issue, "transaction": transaction, "failed_request": failed_request,
            "trace": otel.stdout.strip(),
            "failed_task": tasks["celery_app.boom"]["uuid"],
            "retried_task": tasks["celery_app.flaky"]["uuid"]}


PAGES = [
    ("dashboard", "/"),
    ("jobs", "/jobs"),
    ("jobs-celery", "/jobs?origin=celery"),
    ("job", "/jobs/march-send"),
    ("logs", "/logs"),
    ("log-sources", "/logs/sources"),
    ("issues", "/issues"),
    ("issue", "/issues/{issue}"),
    ("issue-of-a-request", "/issues/{failed_request}"),
    ("performance", "/performance"),
    ("releases", "/releases"),
    ("transaction", "/performance/transaction?name={transaction_q}"),
    ("traces", "/traces"),
    ("trace", "/traces/{trace}"),
    ("metrics", "/charts"),
    ("metric-by-queue", "/charts?metric=invoices.send.duration&group_by=queue&range=1h"),
    ("monitors", "/monitors"),
    ("monitor", "/monitors/sync-Stock"),
    ("alerts", "/alerts"),
    ("feedback", "/feedback"),
    ("celery", "/celery"),
    ("celery-task-failed", "/celery/tasks/{failed_task}"),
    ("celery-task-retried", "/celery/tasks/{retried_task}"),
    ("celery-workers", "/celery/workers"),
    ("celery-job", "/jobs/{failed_task}"),
    ("system", "/system"),
    ("projects", "/settings/projects"),
    ("sourcemaps", "/settings/sourcemaps"),
]


# What a page must say of the seeded data (the text a reader sees).
EXPECTED = {
    "performance": ["GET /invoices/{id}", "GET /boom", "send_invoices"],
    "releases": ["shop@1.4.2"],
    "issue-of-a-request": ["In its trace: GET /boom"],
    "celery-task-retried": ["Retries", "task-retried"],
    "celery-job": ["its Celery task"],
    "traces": ["Invoices-API", "GET /invoices/{id}"],
    "trace": ["Errors in this trace: KeyError: 'customer_email'", "critical path", "Invoices-API"],
}
# Kept on the page but shown only once a line is opened: the OpenTelemetry SDK's description of
# the process that sent it, the same on every line (the line's own fields stay inline).
FOLDED = {
    "logs": ["resource.telemetry.sdk.name"],
}


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


# Elements painted with an opaque light background (a colour the dark theme forgot).
LIGHT_PATCHES = """
const out = [];
for (const el of document.querySelectorAll('body *')) {
  const m = getComputedStyle(el).backgroundColor.match(/\\d+(\\.\\d+)?/g);
  if (!m) continue;
  const [r, g, b, a] = m.map(Number);
  const r2 = el.getBoundingClientRect();
  if ((a === undefined || a > 0.5) && (r + g + b) / 3 > 200 && r2.width > 4 && r2.height > 4) {
    out.push(el.tagName.toLowerCase() + '.' + el.className);
  }
}
return out.slice(0, 6).join(', ');
"""


def dark(css_colour):
    """Whether an `rgb(r, g, b)` colour is dark (its mean channel under 100)."""
    channels = [int(c) for c in re.findall(r"\d+", css_colour)[:3]]
    return len(channels) == 3 and sum(channels) / 3 < 100


def visible_text(browser):
    return browser.find_element(By.TAG_NAME, "body").text


@pytest.mark.parametrize("width,height,scheme", [
    (1440, 900, "light"), (390, 844, "light"), (1440, 900, "dark")],
    ids=["desktop", "phone", "dark"])
def test_every_page_tells_the_truth_at_every_width(vigie, seeded, shots, width, height, scheme):
    browser = make_browser(width=width, height=height)
    # Headless Chromium keeps a window at least 500 px wide: a phone's width is emulated.
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500})
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": scheme}]})
    try:
        # The first walk creates the admin; the others log in as them.
        if vigie.__dict__.setdefault("walked", False):
            log_in(browser, vigie)
        else:
            setup_first_admin(browser, vigie)
            vigie.walked = True
        names = {**seeded, "transaction_q": urllib.parse.quote(seeded["transaction"])}
        problems = []
        for name, path in PAGES:
            browser.get(vigie.url + path.format(**names))
            text = visible_text(browser)
            source = browser.page_source
            shots(browser, f"walk-{name}-{width}" + ("-dark" if scheme == "dark" else ""))
            if scheme == "dark":
                background = browser.execute_script(
                    "return getComputedStyle(document.body).backgroundColor")
                if not dark(background):
                    problems.append(f"{name}: a light background {background} in dark mode")
                patches = browser.execute_script(LIGHT_PATCHES)
                if patches:
                    problems.append(f"{name}: light patches in dark mode: {patches}")
            for expected in EXPECTED.get(name, []):
                if expected not in text:
                    problems.append(f"{name}: does not say {expected!r}")
            for folded in FOLDED.get(name, []):
                if folded in text or folded not in source:
                    problems.append(f"{name}: {folded!r} is not kept folded into its opened line")
            if "Nothing received yet" in text:
                problems.append(f"{name}: says 'Nothing received yet'")
            for cased in CASED:
                if cased in source and cased not in text and cased.upper() in text.upper():
                    problems.append(f"{name}: {cased!r} does not read as sent")
            if ISO.search(text):
                problems.append(f"{name}: a raw timestamp {ISO.search(text).group(0)!r}")
            overflow = sideways_overflow(browser)
            if overflow > 1:
                widest = browser.execute_script(WIDEST)
                problems.append(f"{name}: scrolls {overflow} px sideways at {width} px ({widest})")
        assert not problems, "\n".join(problems)
    finally:
        browser.quit()
