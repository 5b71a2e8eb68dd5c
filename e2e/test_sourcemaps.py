"""Readable JavaScript errors from a minified build, with the real tools a team uses: a page
built by esbuild (minified, with source maps) and Sentry's esbuild plugin, which injects debug
ids and uploads the maps to Vigie with its bundled sentry-cli; then the same build uploaded by
`sentry-cli sourcemaps inject` and `sourcemaps upload` (the newest sentry-cli) as a CI script
would. The page runs in Chromium with `@sentry/browser`; a click throws. Vigie must show the
error at its original function, file, line and source, on the issue page too.

`bash .ci/run` installs the packages (`npm ci --prefix e2e/js`)."""

import functools
import http.server
import os
import subprocess
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from browser import make_browser, phone, sideways_overflow, sign_in_admin
from harness import Server, api, vigie_binary, wait_for

JS = Path(__file__).resolve().parent / "js"
APP = JS / "sourcemap_app"
pytestmark = pytest.mark.skipif(not (JS / "node_modules" / "@sentry" / "esbuild-plugin").is_dir(),
                                reason="the JavaScript tools are not installed: npm ci --prefix e2e/js")
MESSAGE = "basket b-42 is not ready to pay"


@pytest.fixture(scope="module")
def vigie_maps():
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data)
        srv.token = srv.admin_token()
        try:
            yield srv
        finally:
            srv.close()


def sentry_env(srv):
    return {**os.environ, "SENTRY_URL": srv.url, "SENTRY_AUTH_TOKEN": srv.token,
            "SENTRY_ORG": "acme", "SENTRY_PROJECT": "default", "SENTRY_LOG_LEVEL": "info"}


def build(srv, out: Path, upload: bool):
    done = subprocess.run(["node", str(APP / "build.mjs"), str(out), *([] if upload else ["--no-upload"])],
                          cwd=JS, env=sentry_env(srv), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    (out / "index.html").write_text(
        "<!doctype html><title>Checkout</title><h1>Checkout</h1>"
        "<button id=pay>Pay</button><script src=main.js></script>")
    return done.stdout + done.stderr


def throw_in_chromium(srv, site: Path, user: str | None = None, click: bool = True) -> str:
    """Serves `site`, opens it in Chromium (signed in as `user`) and clicks Pay, which throws
    (unless `click` is false: a visit that goes well); waits until @sentry/browser sent what
    it had (the error, the session)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = make_browser()
    try:
        browser.set_script_timeout(30)
        query = urllib.parse.urlencode({"dsn": srv.dsn, **({"user": user} if user else {})})
        browser.get(f"http://127.0.0.1:{server.server_port}/?{query}")
        browser.execute_script("window.vigieErrors = []; window.addEventListener('error', e => "
                               "window.vigieErrors.push(e.message))")
        if click:
            browser.find_element(By.ID, "pay").click()
            wait_for(lambda: browser.execute_script("return window.vigieErrors.length"),
                     "the click to throw")
        return browser.execute_async_script(
            "window.vigieSent('sent').then(arguments[arguments.length - 1])")
    finally:
        browser.quit()
        server.shutdown()


def resolved_frames(srv, events_of_the_issue: int):
    """The checkout error's issue and newest event, once Vigie holds that many events of it
    (every build's error is one issue: grouping reads the resolved frames)."""
    def newest():
        issues = [i for i in api(srv, "/api/v1/issues")["issues"] if MESSAGE in i["title"]]
        assert len(issues) <= 1, issues
        if not issues or issues[0]["events"] < events_of_the_issue:
            return None
        events = api(srv, f"/api/v1/issues/{issues[0]['id']}/events")
        latest = max(events, key=lambda e: e["received"])
        return issues[0], api(srv, f"/api/v1/events/{latest['event_id']}")
    return wait_for(newest, "the checkout error in Vigie")


def check_resolved(event):
    exception = event["exception"]["values"][-1]
    frames = exception["stacktrace"]["frames"]
    thrower = frames[-1]
    assert thrower["function"] == "payNow", thrower
    assert thrower["filename"].endswith("sourcemap_app/src/checkout.js"), thrower
    assert thrower["lineno"] == 4, thrower
    assert "throw new Error(`basket ${basket.id} is not ready to pay`);" in thrower["context_line"], thrower
    assert thrower["pre_context"][-1].strip() == "if (!basket.ready) {", thrower
    assert thrower["in_app"] is True
    assert thrower["data"]["resolved_with"] == "debug-id", thrower
    # The SDK's own frames resolve into node_modules: not the app's.
    assert not any(f.get("in_app") for f in frames if "node_modules" in f.get("filename", ""))
    # What the browser sent is kept beside: the minified file and name.
    raw = exception["raw_stacktrace"]["frames"][-1]
    assert raw["filename"].endswith("/main.js") and raw["function"] != "payNow", raw


def test_the_esbuild_plugin_uploads_and_a_minified_error_reads_as_its_source(vigie_maps, shots):
    srv = vigie_maps
    with tempfile.TemporaryDirectory() as site:
        out = build(srv, Path(site), upload=True)
        assert "Successfully uploaded source maps" in out, out
        assert "error" not in out.lower(), out  # its `releases new` and `finalize` too
        bundles = api(srv, "/api/v1/sourcemaps")["bundles"]
        assert len(bundles) == 1 and bundles[0]["release"] == "shop@1.0.0", bundles
        throw_in_chromium(srv, Path(site))
    issue, event = resolved_frames(srv, 1)
    check_resolved(event)
    assert "payNow" in issue["culprit"] or "checkout" in issue["culprit"], issue

    # The issue page, as a person reads it, at desktop and phone width.
    browser = make_browser()
    try:
        sign_in_admin(browser, srv)
        browser.get(f"{srv.url}/issues/{issue['id']}")
        page = browser.find_element(By.TAG_NAME, "main").text
        assert "payNow" in page and "checkout.js" in page, page[:2000]
        assert "is not ready to pay`);" in page, page[:2000]
        shots(browser, "sourcemaps-issue")
        with phone(browser):
            browser.get(f"{srv.url}/issues/{issue['id']}")
            shots(browser, "sourcemaps-issue-phone")
            assert not sideways_overflow(browser)
        # Settings lists the upload, with its release.
        browser.get(f"{srv.url}/settings/sourcemaps")
        rows = browser.find_elements(By.CSS_SELECTOR, "#bundles tbody tr")
        assert len(rows) == 1 and "shop@1.0.0" in rows[0].text, [r.text for r in rows]
        shots(browser, "sourcemaps-settings")
    finally:
        browser.quit()


def test_sentry_cli_injects_and_uploads_as_a_ci_script_does(vigie_maps):
    srv = vigie_maps
    cli = str(JS / "node_modules" / ".bin" / "sentry-cli")
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("sentry-cli 3."), version
    with tempfile.TemporaryDirectory() as site:
        build(srv, Path(site), upload=False)
        env = sentry_env(srv)
        info = subprocess.run([cli, "info"], env=env, capture_output=True, text=True, timeout=60)
        assert info.returncode == 0, info.stdout + info.stderr
        inject = subprocess.run([cli, "sourcemaps", "inject", site], env=env,
                                capture_output=True, text=True, timeout=60)
        assert inject.returncode == 0, inject.stdout + inject.stderr
        upload = subprocess.run([cli, "sourcemaps", "upload", "--release", "shop@1.0.1", site],
                                env=env, capture_output=True, text=True, timeout=120)
        assert upload.returncode == 0, upload.stdout + upload.stderr
        again = subprocess.run([cli, "sourcemaps", "upload", "--release", "shop@1.0.1", site],
                               env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        releases = sorted(b["release"] for b in api(srv, "/api/v1/sourcemaps")["bundles"])
        assert releases.count("shop@1.0.1") == 1, releases
        # A project Vigie does not have: the CLI says so and fails.
        wrong = subprocess.run([cli, "sourcemaps", "upload", "--project", "nope", site],
                               env=env, capture_output=True, text=True, timeout=120)
        assert wrong.returncode != 0
        assert 'no project named "nope"' in wrong.stdout + wrong.stderr, wrong.stdout + wrong.stderr
        # The release around the upload, as a deploy script declares it.
        for args in (["releases", "new", "shop@1.0.1"], ["releases", "finalize", "shop@1.0.1"],
                     ["deploys", "new", "--release", "shop@1.0.1", "--env", "staging"],
                     ["releases", "list"]):
            done = subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, (args, done.stdout + done.stderr)
        assert "shop@1.0.1" in done.stdout, done.stdout
        throw_in_chromium(srv, Path(site))
    _, event = resolved_frames(srv, 2)
    check_resolved(event)
    releases = {r["version"]: r for r in api(srv, "/api/v1/releases")}
    assert releases["shop@1.0.1"]["released_at"], releases
    assert [d["environment"] for d in releases["shop@1.0.1"]["deploys"]] == ["staging"], releases
    # The page's own release (the SDK's `release`) has the two events of the checkout error.
    assert releases["shop@1.0.0"]["events"] == 2, releases


def test_browser_sessions_give_the_release_its_crash_free_rates(vigie_maps, shots):
    """Release health as @sentry/browser reports it by default: each visit is a session; one
    that an uncaught error ended is `unhandled` (since Sentry split it from `crashed`: a page
    does not crash), counted apart; a signed-in shopper is a user. The Releases page and the
    release's own page show the rates, as a person reads them, at desktop and phone width."""
    srv = vigie_maps
    before = {r["version"]: r for r in api(srv, "/api/v1/releases")}.get("shop@1.0.0", {})
    sessions, unhandled = before.get("sessions", 0), before.get("unhandled", 0)
    with tempfile.TemporaryDirectory() as site:
        build(srv, Path(site), upload=False)
        throw_in_chromium(srv, Path(site), user="ada")               # an uncaught error
        throw_in_chromium(srv, Path(site), user="bob", click=False)  # goes well
        throw_in_chromium(srv, Path(site), user="bob", click=False)
    release = wait_for(lambda: next((r for r in api(srv, "/api/v1/releases")
                                     if r["version"] == "shop@1.0.0"
                                     and r["sessions"] == sessions + 3
                                     and r["unhandled"] == unhandled + 1
                                     and r["users"] == 2), None),
                       "three more sessions of shop@1.0.0, one ended by an error, two shoppers")
    assert release["crash_free"] == 1.0 and release["crash_free_users"] == 1.0, release
    share = 100 * release["unhandled"] / release["sessions"]

    browser = make_browser()
    try:
        sign_in_admin(browser, srv)
        browser.get(f"{srv.url}/releases")
        chart = browser.find_element(By.ID, "crash-free-chart")
        assert chart.find_elements(By.CSS_SELECTOR, "polyline"), chart.get_attribute("outerHTML")
        row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#releases tbody tr")
                   if "shop@1.0.0" in r.text)
        assert "100.0 %" in row.text, row.text
        shots(browser, "releases")
        row.find_element(By.LINK_TEXT, "shop@1.0.0").click()
        assert browser.current_url.endswith("/releases/shop%401.0.0"), browser.current_url
        assert browser.find_element(By.ID, "crash-free-users").text == "100.0 %"
        assert browser.find_element(By.ID, "crash-free-sessions").text == "100.0 %"
        uncaught = browser.find_element(By.ID, "unhandled").text
        assert uncaught == f"{share:.1f} %", (uncaught, release)
        bars = browser.find_elements(By.CSS_SELECTOR, "#sessions-chart rect")
        assert len(bars) == 30, len(bars)
        assert any(f"{release['sessions']} sessions" in b.get_attribute("textContent") for b in bars)
        new = browser.find_element(By.ID, "new-issues")
        assert MESSAGE in new.text, new.text
        shots(browser, "release")
        with phone(browser):
            browser.get(f"{srv.url}/releases/shop%401.0.0")
            shots(browser, "release-phone")
            assert not sideways_overflow(browser)
            browser.get(f"{srv.url}/releases")
            assert not sideways_overflow(browser)
    finally:
        browser.quit()
