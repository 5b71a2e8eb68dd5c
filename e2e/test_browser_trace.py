"""One trace from the browser into the backend across two SDKs: `@sentry/browser` (real,
unchanged, in Chromium) starts it and sends the W3C `traceparent` with its requests; an API on
the real OpenTelemetry Node SDK (its JSON exporter over OTLP/HTTP) continues it. Vigie keeps
both sides in one tree: the API's request hangs under the browser's fetch, the exception the
API recorded is an issue of that trace, and the trace page shows both services.

`bash .ci/run` installs the packages (`npm ci --prefix e2e/js`)."""

import os
import subprocess
import tempfile
import urllib.error
import urllib.parse
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from browser import make_browser, setup_first_admin
from harness import Server, api, stop, vigie_binary, wait_for

JS = Path(__file__).resolve().parent / "js"
pytestmark = pytest.mark.skipif(not (JS / "node_modules" / "@opentelemetry" / "sdk-node").is_dir(),
                                reason="the JavaScript SDKs are not installed: npm ci --prefix e2e/js")


@pytest.fixture(scope="module")
def shop():
    with tempfile.TemporaryDirectory() as data, tempfile.TemporaryDirectory() as site:
        srv = Server(vigie_binary(), data)
        srv.token = srv.admin_token()
        subprocess.run([str(JS / "node_modules" / ".bin" / "esbuild"), str(JS / "browser_trace_app.js"),
                        "--bundle", "--format=iife", f"--outfile={Path(site) / 'app.js'}"],
                       check=True, capture_output=True, timeout=60)
        (Path(site) / "index.html").write_text(
            "<!doctype html><title>Checkout</title><h1>Checkout</h1><script src=app.js></script>")
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": srv.url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {srv.key}",
            "OTEL_SERVICE_NAME": "invoices-node",
            "OTEL_BSP_SCHEDULE_DELAY": "300",
        }
        node = subprocess.Popen(["node", str(JS / "otel_api.cjs"), site], cwd=JS, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            port = int(node.stdout.readline())
            yield srv, f"http://127.0.0.1:{port}", node
        finally:
            stop(node)
            srv.close()


def stored_trace(srv, trace_id):
    try:
        return api(srv, f"/api/v1/traces/{trace_id}?project=1")
    except urllib.error.HTTPError as e:
        if e.code == 404:  # no span of it stored yet
            return None
        raise


def test_a_trace_begun_in_the_browser_continues_into_an_opentelemetry_api(shop, shots):
    srv, site, node = shop
    browser = make_browser()
    try:
        browser.set_script_timeout(30)
        browser.get(f"{site}/?dsn={urllib.parse.quote(srv.dsn)}")
        trace_id = browser.execute_async_script(
            "window.vigieDone.then(arguments[arguments.length - 1])")
        assert len(trace_id) == 32, trace_id

        def both_sides():
            trace = stored_trace(srv, trace_id)
            if not trace or "invoices-node" not in trace["services"]:
                return None
            if not any(s["service"] != "invoices-node" for s in trace["spans"]):
                return None
            return trace

        trace = wait_for(both_sides, "the browser's and the API's spans in one trace")
        spans = {s["span_id"]: s for s in trace["spans"]}
        served = [s for s in trace["spans"] if s["service"] == "invoices-node" and s["kind"] == "server"]
        assert len(served) == 2, [(s["service"], s["name"], s["kind"]) for s in trace["spans"]]
        for request in served:
            # Each request the API served hangs under the browser's fetch that made it.
            fetch = spans.get(request["parent_span_id"])
            assert fetch is not None, (request, list(spans))
            assert fetch["service"] == "sentry:javascript", fetch
            assert fetch["kind"] == "client", fetch
            assert any("/api/invoices/" in v for _, v in fetch["attributes"]), fetch
            assert fetch["start"] <= request["start"], (fetch, request)
        loads = [s for s in trace["spans"] if s["name"] == "load invoice"]
        assert len(loads) == 2 and {s["parent_span_id"] for s in loads} == {s["span_id"] for s in served}
        checkout = [s for s in trace["spans"] if s["name"] == "checkout"]
        assert len(checkout) == 1 and checkout[0]["service"] == "sentry:javascript"
        assert trace["errors"] >= 1

        # The exception the API recorded is an issue whose event belongs to the browser's trace.
        def the_issue():
            return [i for i in api(srv, "/api/v1/issues?project=1")["issues"]
                    if i["title"] == "Error: invoice 13 is locked"]
        [issue] = wait_for(the_issue, "the API's exception as an issue")
        events = api(srv, f"/api/v1/issues/{issue['id']}/events?project=1")
        assert trace_id in {e["trace_id"] for e in events}

        # Search finds the trace by either beginning: the browser's, and the API's request.
        found = api(srv, "/api/v1/traces?project=1&q=" + urllib.parse.quote("service:invoices-node"))
        assert trace_id in {t["trace_id"] for t in found["traces"]}

        setup_first_admin(browser, srv)
        browser.get(f"{srv.url}/traces/{trace_id}")
        # Named by its root, the page load, whatever the browser measured before it began.
        assert browser.find_element(By.CSS_SELECTOR, ".page-head h1").text == "/"
        page = browser.find_element(By.TAG_NAME, "main").text
        for seen in ["invoices-node", "sentry:javascript", "checkout", "load invoice",
                     "Error: invoice 13 is locked"]:
            assert seen in page, seen
        shots(browser, "77-browser-to-node-trace")
        # Spans the SDK sent apart from their page load (web vitals, when the page was left)
        # are named by the SDK that sent them too.
        assert set(stored_trace(srv, trace_id)["services"]) == {"invoices-node", "sentry:javascript"}
    finally:
        browser.quit()
