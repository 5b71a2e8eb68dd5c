"""Logs from real producers into a real Vigie, each checked with `vigie search --json` as a user
would: Python's SysLogHandler over UDP and TCP (a traceback kept whole), rsyslog forwarding,
the vigie_client handler, the OpenTelemetry Python SDK's OTLP/HTTP exporter, structlog's JSON,
pino's JSON lines and pino-loki, python-logging-loki, and `vigie import` of nginx, PostgreSQL,
syslog, journald, Celery worker and uvicorn files. Then the Logs page in a real browser: a
search, and a live tail that receives lines while it is watched."""

import gzip
import io
import json
import logging
import logging.handlers
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser import setup_first_admin
from harness import Server, vigie_binary

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "python"))
from vigie_client import Job, VigieHandler  # noqa: E402



JS = Path(__file__).resolve().parent / "js"
FIXTURES = Path(__file__).resolve().parents[1] / "crates" / "vigie-protocol" / "tests" / "fixtures" / "logs"


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def logs_server():
    """Vigie with its syslog listeners on, as `logs.syslog_udp` / `logs.syslog_tcp` set them."""
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, env={
            "VIGIE_LOGS_SYSLOG_UDP": f"127.0.0.1:{udp}",
            "VIGIE_LOGS_SYSLOG_TCP": f"127.0.0.1:{tcp}",
        })
        srv.syslog_udp, srv.syslog_tcp = udp, tcp
        srv.token = srv.admin_token()
        yield srv
        srv.close()


def search(server, *query, expect=None, timeout=10.0):
    """`vigie search --json QUERY`; with `expect`, retries until that many records match
    (syslog over UDP is acknowledged by nobody)."""
    deadline = time.monotonic() + timeout
    while True:
        done = server.cli("search", "--json", *query, token=server.token)
        assert done.returncode in (0, 1), done.stderr
        records = [json.loads(line) for line in done.stdout.splitlines()]
        assert (done.returncode == 1) == (not records), "exit 1 exactly when nothing matches"
        if expect is None or len(records) >= expect or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def python_logger(name, handler, fmt=None):
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    if fmt:
        handler.setFormatter(logging.Formatter(fmt))
    return logger


def test_syslog_handler_over_udp_and_tcp(logs_server):
    for transport, kind, port in [("udp", socket.SOCK_DGRAM, logs_server.syslog_udp),
                                  ("tcp", socket.SOCK_STREAM, logs_server.syslog_tcp)]:
        handler = logging.handlers.SysLogHandler(address=("127.0.0.1", port), socktype=kind)
        logger = python_logger(f"billing.{transport}", handler, "billing: %(message)s")
        logger.error("smtp refused over %s for F-%d", transport, 1001)
        logger.info("batch done over %s", transport)
        handler.close()

        [refused] = search(logs_server, f"refused {transport}", expect=1)
        assert refused["source"] == "billing"
        assert refused["level"] == "error"
        assert refused["message"] == f"smtp refused over {transport} for F-1001"
        [done] = search(logs_server, "source:billing", "level:info", transport, expect=1)
        assert done["message"] == f"batch done over {transport}"


def test_syslog_handler_over_tcp_keeps_a_traceback_whole(logs_server):
    """The handler ends each message with NUL and sends the traceback's line breaks as they are."""
    handler = logging.handlers.SysLogHandler(address=("127.0.0.1", logs_server.syslog_tcp),
                                             socktype=socket.SOCK_STREAM)
    logger = python_logger("billing.traceback", handler, "billing: %(message)s")
    try:
        {}["vat_rate"]
    except KeyError:
        logger.exception("invoice F-4242 not rendered")
    logger.info("next invoice after the traceback")
    handler.close()

    [failed] = search(logs_server, "F-4242", expect=1)
    assert failed["level"] == "error" and failed["source"] == "billing"
    lines = failed["message"].splitlines()
    assert lines[0] == "invoice F-4242 not rendered"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'vat_rate'"
    [after] = search(logs_server, '"next invoice after the traceback"', expect=1)
    assert after["level"] == "info"


def test_rsyslog_forwarding(logs_server, tmp_path):
    """rsyslog relays an application's messages (a traceback among them) to Vigie over TCP
    (RFC 5424, its line breaks escaped as #012) and UDP (its traditional format)."""
    inbound = free_port(socket.SOCK_DGRAM)
    (tmp_path / "rsyslog.conf").write_text(f"""
global(workDirectory="{tmp_path}")
module(load="imudp")
input(type="imudp" port="{inbound}" address="127.0.0.1")
*.* action(type="omfwd" target="127.0.0.1" port="{logs_server.syslog_tcp}" protocol="tcp"
           template="RSYSLOG_SyslogProtocol23Format")
*.* action(type="omfwd" target="127.0.0.1" port="{logs_server.syslog_udp}" protocol="udp")
""")
    rsyslog = subprocess.Popen(["rsyslogd", "-n", "-f", str(tmp_path / "rsyslog.conf"),
                                "-i", str(tmp_path / "rsyslog.pid")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.0)  # rsyslog's UDP input is open
        handler = logging.handlers.SysLogHandler(address=("127.0.0.1", inbound))
        logger = python_logger("shop.relay", handler, "relayed: %(message)s")
        try:
            1 / 0
        except ZeroDivisionError:
            logger.exception("F-5150 failed through rsyslog")
        handler.close()
        records = search(logs_server, "F-5150", expect=2)
    finally:
        rsyslog.terminate()
        rsyslog.wait(10)
    assert len(records) == 2, records
    for r in records:
        assert (r["source"], r["level"]) == ("relayed", "error")
        lines = r["message"].splitlines()
        assert lines[0] == "F-5150 failed through rsyslog", "no #012, no leading space"
        assert lines[-1] == "ZeroDivisionError: division by zero"


def pino_lines(script):
    """What the real pino writes for `script` (Node, e2e/js), one JSON object a line."""
    done = subprocess.run(["node", "--input-type=module", "-e", script], cwd=JS,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_pino_json_lines_and_pino_loki(logs_server):
    """pino's numeric levels (30 info … 60 fatal) and its error objects, over `/api/v1/logs`
    and over Loki push from pino-loki (whose `level` label the line's own level agrees with)."""
    out = pino_lines("""
        import pino from "pino";
        const log = pino();
        log.info({order: 42}, "pino order F-6001 received");
        log.warn("pino smtp slow F-6001");
        log.child({module: "mailer"}).error(new Error("SMTP refused F-6001"), "pino send failed");
        log.fatal("pino out of memory F-6001");
    """)
    req = urllib.request.Request(f"{logs_server.url}/api/v1/logs?source=pino-api",
                                 data=out.encode(), method="POST",
                                 headers={"Authorization": f"Bearer {logs_server.key}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.load(resp) == {"accepted": 4, "unparsed": 0}
    records = search(logs_server, "F-6001", "source:pino-api")
    assert sorted(r["level"] for r in records) == ["critical", "error", "info", "warning"]
    [failed] = [r for r in records if r["level"] == "error"]
    assert failed["message"].splitlines()[:2] == ["pino send failed", "Error: SMTP refused F-6001"]
    assert failed["fields"]["module"] == "mailer"
    [received] = [r for r in records if r["level"] == "info"]
    assert received["fields"]["order"] == "42"

    pino_lines(f"""
        import pino from "pino";
        const transport = pino.transport({{target: "pino-loki", options: {{
            host: "{logs_server.url}", basicAuth: {{username: "vigie", password: "{logs_server.key}"}},
            labels: {{app: "pino-loki"}}, batching: false}}}});
        const log = pino({{level: "debug"}}, transport);
        log.debug("loki debug F-6002");
        log.error("loki error F-6002");
        await new Promise((done) => setTimeout(done, 1500));
    """)
    records = search(logs_server, "F-6002", expect=2)
    assert sorted((r["source"], r["level"]) for r in records) == [
        ("pino-loki", "debug"), ("pino-loki", "error")]


def test_python_logging_loki(logs_server):
    """python-logging-loki's labels: `severity` is the level, `logger` the logger, the
    `application` tag the source."""
    import logging_loki

    handler = logging_loki.LokiHandler(url=f"{logs_server.url}/loki/api/v1/push",
                                       tags={"application": "shop-loki"},
                                       auth=("vigie", logs_server.key), version="1")
    logger = python_logger("shop.invoices", handler)
    logger.warning("python-logging-loki F-6003 retried", extra={"tags": {"invoice": "F-6003"}})
    [record] = search(logs_server, "F-6003", expect=1)
    assert (record["source"], record["logger"], record["level"]) == (
        "shop-loki", "shop.invoices", "warning")
    assert record["fields"]["invoice"] == "F-6003"


def test_vigie_client_handler_with_a_job(logs_server):
    handler = VigieHandler(logs_server.dsn, source="worker")
    logger = python_logger("invoices.send", handler)
    with Job.start(logs_server.dsn, name="Send invoices") as job:
        logger.info("sending %d invoices", 3, extra={"batch": "2026-11"})
        try:
            raise ConnectionRefusedError("smtp.example.com:587")
        except ConnectionRefusedError:
            logger.exception("invoice F-1002 not sent")
    handler.close()

    records = search(logs_server, f"job:{job.id}")
    assert [r["level"] for r in records] == ["info", "error"], "oldest first, as a log reads"
    sending, failed = records
    assert failed["message"].startswith("invoice F-1002 not sent\nTraceback (most recent call last):")
    assert failed["message"].endswith("ConnectionRefusedError: smtp.example.com:587")
    assert sending["fields"]["batch"] == "2026-11"
    assert sending["logger"] == "invoices.send" and sending["source"] == "worker"


def test_opentelemetry_sdk_otlp_http_exporter(logs_server):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = LoggerProvider(resource=Resource.create({"service.name": "checkout"}))
    exporter = OTLPLogExporter(endpoint=f"{logs_server.url}/v1/logs",
                               headers={"Authorization": f"Bearer {logs_server.key}"},
                               compression=Compression.Gzip)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = python_logger("checkout.payment", LoggingHandler(logger_provider=provider))
    tracer = TracerProvider().get_tracer("e2e")
    with tracer.start_as_current_span("pay") as span:
        logger.warning("card declined for order %s", "O-77", extra={"order": "O-77"})
        trace_id = format(span.get_span_context().trace_id, "032x")
    assert provider.force_flush(10_000)
    provider.shutdown()

    [declined] = search(logs_server, "declined", "source:checkout")
    assert declined["level"] == "warning"
    assert declined["message"] == "card declined for order O-77"
    assert declined["trace_id"] == trace_id
    assert declined["fields"]["order"] == "O-77"
    assert [r["message"] for r in search(logs_server, f"trace:{trace_id}")] == [declined["message"]]


def test_structlog_json_lines(logs_server):
    import structlog

    out = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    log = structlog.get_logger("sync").bind(supplier="acme")
    log.info("feed fetched", rows=1200)
    try:
        {}["missing"]
    except KeyError:
        log.error("feed row rejected", exc_info=True)
    structlog.reset_defaults()

    req = urllib.request.Request(f"{logs_server.url}/api/v1/logs?source=sync",
                                 data=gzip.compress(out.getvalue().encode()), method="POST",
                                 headers={"Authorization": f"Bearer {logs_server.key}",
                                          "Content-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.load(resp) == {"accepted": 2, "unparsed": 0}

    records = search(logs_server, "field.supplier:acme")
    assert [(r["level"], r["message"].split("\n")[0]) for r in records] == [
        ("info", "feed fetched"), ("error", "feed row rejected")]
    assert "KeyError: 'missing'" in records[1]["message"]
    assert records[0]["fields"]["rows"] == "1200"


def test_import_of_existing_files(logs_server, tmp_path):
    local = datetime.now().astimezone()
    utc = datetime.now(timezone.utc) - timedelta(minutes=5)
    nginx = tmp_path / "access.log"
    nginx.write_text(
        f'10.0.0.7 - - [{local:%d/%b/%Y:%H:%M:%S %z}] "GET /invoices/F-1001.pdf HTTP/1.1" 404 153 "-" "Mozilla/5.0"\n'
        f'10.0.0.8 - - [{local:%d/%b/%Y:%H:%M:%S %z}] "POST /api/send HTTP/1.1" 502 157 "-" "curl/8.5"\n')
    postgres = tmp_path / "postgresql-15-main.log"
    stamp = f"{utc:%Y-%m-%d %H:%M:%S}.123 UTC"
    postgres.write_text(
        f'{stamp} [4242] ERROR:  duplicate key value violates unique constraint "invoice_number_key"\n'
        f"{stamp} [4242] DETAIL:  Key (number)=(F-1001) already exists.\n"
        f"{stamp} [4242] STATEMENT:  INSERT INTO invoice (number) VALUES ('F-1001')\n"
        f"{stamp} [4250] LOG:  checkpoint complete\n")
    syslog = tmp_path / "mail.log"
    syslog.write_text(
        f"{utc:%b %e %H:%M:%S} mail-1 postfix/smtp[991]: 4F9D21C2: to=<a@example.com>, status=deferred (host said: 421 too many messages)\n"
        "this line is no syslog at all\n")
    journal = tmp_path / "journal.json"
    journal.write_text(json.dumps({
        "__REALTIME_TIMESTAMP": str(int(utc.timestamp() * 1_000_000)), "PRIORITY": "3",
        "MESSAGE": "celery worker killed by signal 9", "SYSLOG_IDENTIFIER": "celery",
        "_HOSTNAME": "web-1"}) + "\n")

    done = logs_server.cli("import", "--data", logs_server.data, *map(str, [nginx, postgres, syslog, journal]))
    assert done.returncode == 0, done.stderr
    assert "total: 9 lines read, 7 records imported, 1 unparsed (kept raw)" in done.stdout, done.stdout

    [not_found] = search(logs_server, "source:access.log", "field.status:404")
    assert "GET /invoices/F-1001.pdf" in not_found["message"]
    [duplicate] = search(logs_server, "source:postgresql*", "level:error")
    assert duplicate["message"].splitlines()[1] == "DETAIL:  Key (number)=(F-1001) already exists."
    [deferred] = search(logs_server, '"too many messages"')
    # The file is the source, as the summary says; the program that logged is the logger.
    assert (deferred["source"], deferred["logger"]) == ("mail.log", "postfix/smtp")
    assert deferred["level"] == "warning"
    [raw] = search(logs_server, "source:mail.log", "syslog", "at", "all")
    assert raw["message"] == "this line is no syslog at all"
    [killed] = search(logs_server, "killed", "source:celery")
    assert killed["level"] == "error"


def test_import_of_celery_and_uvicorn_files(logs_server, tmp_path):
    """Files the real programs wrote (the fixtures of `tests/log_files.rs`), dated yesterday so
    retention keeps them: every line read, a task's lines under its task id."""
    yesterday = f"{datetime.now(timezone.utc) - timedelta(days=1):%Y-%m-%d}"
    for name in ["celery-worker.log", "uvicorn.log"]:
        (tmp_path / name).write_text((FIXTURES / name).read_text().replace("2026-11-25", yesterday))
    done = logs_server.cli("import", "--data", logs_server.data,
                           str(tmp_path / "celery-worker.log"), str(tmp_path / "uvicorn.log"))
    assert done.returncode == 0, done.stderr
    assert "celery-worker.log: celery" in done.stderr and "uvicorn.log: python" in done.stderr
    assert "total: 110 lines read, 31 records imported, 0 unparsed" in done.stdout, done.stdout

    task = "1f6ad9bd-276b-497b-aab9-be7f3e8a8b98"
    records = search(logs_server, f"job:{task}")
    assert [(r["level"], r["logger"]) for r in records] == [("info", "fxapp.fail")] + [
        ("error", "fxapp.fail")] * 2, "oldest first: received, its log line, raised"
    raised = records[-1]
    assert raised["message"].splitlines()[-1] == "ConnectionError: SMTP refused invoice 7"
    assert raised["source"] == "celery-worker.log", "the file is the source"
    assert raised["time"].startswith(yesterday)
    [asgi] = search(logs_server, "source:uvicorn.log", "level:error")
    assert asgi["logger"] == "uvicorn.error"
    assert asgi["message"].splitlines()[-1] == "ValueError: invoice 7 has no VAT rate"
    [boom] = search(logs_server, "source:uvicorn.log", "field.status:500")
    assert boom["fields"]["path"] == "/boom"


def test_search_and_live_tail_in_the_browser(logs_server, browser, shots):
    setup_first_admin(browser, logs_server)
    handler = VigieHandler(logs_server.dsn, source="worker", flush_interval=0.1)
    logger = python_logger("invoices.send", handler)
    for i in range(30):
        logger.log(logging.WARNING if i % 10 == 9 else logging.INFO, "invoice F-%d sent to <b>client%d</b>", 2000 + i, i)
    handler.flush()

    # A search: the matches, their level counts and the histogram.
    browser.get(logs_server.url + "/logs?q=%22sent+to%22+level%3A%3E%3Dwarning")
    rows = browser.find_elements(By.CSS_SELECTOR, "[data-log-rows] tr.log")
    assert [r.find_element(By.CSS_SELECTOR, ".badge").text for r in rows] == ["warning"] * 3
    assert "invoice F-2029 sent to <b>client29</b>" in rows[0].text, "markup in a message is shown, not run"
    assert browser.find_elements(By.CSS_SELECTOR, ".histogram rect")
    shots(browser, "20-logs-search")

    # Live: lines logged while the page is watched appear without a reload.
    browser.get(logs_server.url + "/logs?q=source%3Aworker")
    browser.execute_script("window.__sameDocument = true")
    browser.find_element(By.CSS_SELECTOR, "[data-live-toggle]").click()
    WebDriverWait(browser, 5).until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-live-toggle]").text == "Pause")
    time.sleep(0.5)  # the stream is open before the lines are logged
    for i in range(5):
        logger.error("live line %d: smtp timeout", i)
        handler.flush()
        time.sleep(0.2)
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-live-count]").text == "5")
    first = browser.find_element(By.CSS_SELECTOR, "[data-log-rows] tr")
    assert "live line 4: smtp timeout" in first.text
    assert browser.execute_script("return window.__sameDocument === true"), "updated without reload"
    shots(browser, "21-logs-live")

    # Paused, nothing more arrives.
    browser.find_element(By.CSS_SELECTOR, "[data-live-toggle]").click()
    logger.error("after pause")
    handler.close()
    time.sleep(1.0)
    assert browser.find_element(By.CSS_SELECTOR, "[data-live-count]").text == "5"

    # The Sources page lists where lines came from.
    browser.get(logs_server.url + "/logs/sources")
    assert "worker" in browser.find_element(By.TAG_NAME, "main").text
    shots(browser, "22-logs-sources")
