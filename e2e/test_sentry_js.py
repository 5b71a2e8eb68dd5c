"""The real, unchanged Sentry JavaScript SDKs against a real Vigie, with their defaults — which
stream spans (`span` items) instead of sending transactions: `@sentry/node` in Node and
`@sentry/browser` (bundled by esbuild) in Chromium. Their performance data must arrive as
transactions with spans, their errors and messages as issues titled as sent, and their
feedback as feedback.

`bash .ci/run` installs the packages (`npm ci --prefix e2e/js`)."""

import functools
import http.server
import json
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from selenium.webdriver.common.by import By

from browser import make_browser, setup_first_admin
from harness import wait_for

JS = Path(__file__).resolve().parent / "js"
pytestmark = pytest.mark.skipif(not (JS / "node_modules" / "@sentry").is_dir(),
                                reason="the Sentry JS SDKs are not installed: npm ci --prefix e2e/js")


def api(srv, path):
    req = urllib.request.Request(srv.url + path, headers={"Authorization": f"Bearer {srv.token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def issue_titles(srv):
    out = srv.cli("issues", "list", "--json", "-n", "100", "--status", "all", token=srv.token)
    assert out.returncode == 0, out.stderr
    return {i["title"] for i in json.loads(out.stdout)["issues"]}


def the_key_does_not_read(srv):
    """The key a JavaScript SDK puts in every page writes, never reads (item 12 of issue 17)."""
    for path in ["/api/v1/jobs", "/api/v1/items", "/api/v1/issues", "/api/v1/feedback"]:
        req = urllib.request.Request(srv.url + path, headers={"Authorization": f"Bearer {srv.key}"})
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code in (401, 403), (path, e.code)
        else:
            raise AssertionError(f"the DSN key read {path}")


def transaction(srv, name):
    found = [t for t in api(srv, "/api/v1/transactions") if t["name"] == name]
    return found[0] if found else None


def test_sentry_node_streams_spans_that_become_a_transaction(vigie, browser):
    out = subprocess.run(["node", str(JS / "node_app.mjs"), vigie.dsn],
                         capture_output=True, text=True, timeout=60, cwd=JS)
    assert out.returncode == 0, out.stderr

    # The slow request's child came 5 s before the request: it is in the sample's waterfall.
    slow = wait_for(lambda: transaction(vigie, "POST /exports"), "the slow request")
    assert slow["count"] == 1 and 6000 <= slow["p95_ms"] < 60000, slow
    setup_first_admin(browser, vigie)
    browser.get(vigie.url + "/performance/transaction?name=POST%20%2Fexports")
    waterfall = browser.find_element("css selector", "main").text
    assert "render invoice pdf" in waterfall, waterfall
    # The Performance page shows what the SDK sent: one request each, the slow one above 6 s.
    browser.get(vigie.url + "/performance")
    rows = {r.find_element(By.CSS_SELECTOR, "td").text: r.text
            for r in browser.find_elements(By.CSS_SELECTOR, "table.transactions tbody tr")}
    assert set(rows) >= {"GET /invoices/:id", "POST /exports"}, rows
    assert " 1 " in f" {rows['POST /exports']} " and "6." in rows["POST /exports"], rows

    tx = wait_for(lambda: transaction(vigie, "GET /invoices/:id"), "the Node transaction")
    assert tx["op"] == "http.server" and tx["count"] == 1, tx
    assert 40 <= tx["p95_ms"] < 5000, tx
    detail = api(vigie, "/api/v1/transactions/detail?name=GET%20%2Finvoices%2F%3Aid")
    assert [s["op"] for s in detail["spans"]] == ["db"], detail
    assert detail["spans"][0]["description"].startswith("SELECT * FROM invoice WHERE id ="), detail
    assert 25 <= detail["spans"][0]["max_ms"] < 5000, detail
    assert len(detail["samples"]) == 1

    titles = wait_for(lambda: (lambda t: t if "node hello" in t else None)(issue_titles(vigie)),
                      "the Node message")
    assert "Error: invoice 42 could not be rendered" in titles, titles
    notes = {f["message"]: f for f in api(vigie, "/api/v1/feedback")}
    assert notes["The invoice page is blank"]["name"] == "Ada", notes
    the_key_does_not_read(vigie)


def test_sentry_browser_in_chromium(vigie, tmp_path):
    subprocess.run([str(JS / "node_modules" / ".bin" / "esbuild"), str(JS / "browser_app.js"),
                    "--bundle", "--format=iife", f"--outfile={tmp_path / 'app.js'}"],
                   check=True, capture_output=True, timeout=60)
    (tmp_path / "index.html").write_text(
        "<!doctype html><title>Shop</title><h1>Checkout</h1><script src=app.js></script>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    browser = make_browser()
    try:
        browser.set_script_timeout(30)
        browser.get(f"http://127.0.0.1:{site.server_port}/?dsn={vigie.dsn}")
        assert browser.execute_async_script(
            "window.vigieDone.then(arguments[arguments.length - 1])") == "sent"

        # A person uses the SDK's feedback widget: its button, its form, its send button.
        host = wait_for(lambda: browser.find_elements(By.ID, "sentry-feedback"), "the widget")[0]
        root = host.shadow_root
        wait_for(lambda: root.find_elements(By.CSS_SELECTOR, "button"), "the widget's button")[0].click()
        message = wait_for(lambda: root.find_elements(By.CSS_SELECTOR, "[name=message]"), "its form")[0]
        root.find_element(By.CSS_SELECTOR, "[name=name]").send_keys("Lin")
        message.send_keys("The coupon field is gone")
        send = [b for b in root.find_elements(By.CSS_SELECTOR, "button") if "Send" in b.text]
        assert send, [b.text for b in root.find_elements(By.CSS_SELECTOR, "button")]
        send[0].click()
        browser.execute_async_script("window.vigieFlush().then(arguments[arguments.length - 1])")
    finally:
        browser.quit()
        site.shutdown()

    tx = wait_for(lambda: transaction(vigie, "/"), "the page-load transaction")
    assert tx["op"] == "pageload", tx
    titles = wait_for(lambda: (lambda t: t if "browser hello" in t else None)(issue_titles(vigie)),
                      "the browser message, titled as sent")
    assert "Error: checkout button broke" in titles, titles
    notes = wait_for(lambda: {f["message"]: f for f in api(vigie, "/api/v1/feedback")
                              if f["message"] == "Checkout does nothing"}, "the browser's feedback")
    assert notes["Checkout does nothing"]["name"] == "Grace", notes
    widget = wait_for(lambda: [f for f in api(vigie, "/api/v1/feedback")
                               if f["message"] == "The coupon field is gone"], "the widget's feedback")
    assert widget[0]["name"] == "Lin", widget
