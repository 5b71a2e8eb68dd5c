"""Celery end to end: a real Celery 5 worker on this machine's Redis, events on, runs tasks that
succeed, fail, retry and report progress through celery-progress's ProgressRecorder, plus a
beat schedule; Vigie (`--celery-broker`) keeps every task and worker — checked through its API,
the Jobs it shows them as, and the Flower-compatible API — and keeps them when restarted."""

import re
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browser import load_after, setup_first_admin
from harness import api, Server, celery, stop, vigie_binary, wait_for

HERE = Path(__file__).resolve().parent
REDIS = os.environ.get("VIGIE_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not REDIS, reason="VIGIE_TEST_REDIS_URL is not set")
# A database of its own, so other Celery apps on this Redis do not mix in.
BROKER = (REDIS or "").rsplit("/", 1)[0] + "/11"


@pytest.fixture(scope="module")
def celery_env():
    env = {**os.environ, "CELERY_BROKER": BROKER, "PYTHONPATH": str(HERE)}
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, "--celery-broker", BROKER)
        srv.token = srv.admin_token()
        worker = celery(env, "worker", "-E", "-c", "2", "-n", "e2e@%h")
        beat = celery(env, "beat", "-s", os.path.join(data, "beat-schedule"))
        try:
            yield srv, env
        finally:
            stop(beat)
            stop(worker)
            srv.close()


def send(env, code):
    subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env, check=True, timeout=30)


def test_tasks_workers_and_flower_api(celery_env):
    srv, env = celery_env
    wait_for(lambda: api(srv, "/api/v1/celery/workers"), "the worker's heartbeat")
    send(env, "from celery_app import *; add.delay(2, 3); boom.delay('BE'); "
              "send_invoices.delay(20); flaky.delay('INV-7')")

    def finished():
        tasks = api(srv, "/api/v1/celery/tasks?limit=100")
        named = {t["name"]: t for t in tasks if t["name"] != "celery_app.add" or t["args"] == "(2, 3)"}
        done = {"celery_app.add", "celery_app.boom", "celery_app.send_invoices", "celery_app.flaky"}
        ready = {n for n, t in named.items() if t["state"] in ("SUCCESS", "FAILURE")}
        return named if done <= ready else None

    tasks = wait_for(finished, "the four tasks finished")
    assert tasks["celery_app.add"]["result"] == "5"
    assert tasks["celery_app.add"]["worker"].startswith("e2e@")
    assert tasks["celery_app.boom"]["state"] == "FAILURE"
    assert tasks["celery_app.boom"]["exception"] == "KeyError('BE')"
    assert "raise KeyError(code)" in tasks["celery_app.boom"]["traceback"]
    flaky = tasks["celery_app.flaky"]
    assert (flaky["state"], flaky["result"], flaky["retries"]) == ("SUCCESS", "'INV-7 sent'", 1)
    timeline = api(srv, f"/api/v1/celery/tasks/{flaky['uuid']}")["events"]
    assert "task-retried" in [e["kind"] for e in timeline]
    assert tasks["celery_app.send_invoices"]["progress"] == [20, 20]
    # celery-progress's description, as the task last set it.
    assert tasks["celery_app.send_invoices"]["progress_description"] == "invoice 20"

    # Each task is a Job: the bulk send with its progress, the failure with its exception.
    jobs = {j["name"]: j for j in api(srv, "/api/v1/jobs?kind=celery&limit=200")["jobs"]}
    send_job = jobs["celery_app.send_invoices"]
    assert (send_job["status"], send_job["processed"], send_job["total"]) == ("completed", 20, 20)
    assert jobs["celery_app.boom"]["status"] == "failed"
    # From its start to its failure: a failed task has a runtime too.
    assert re.fullmatch(r"FAILURE in [0-9.]+ s: KeyError\('BE'\)", jobs["celery_app.boom"]["message"])

    # The beat schedule's runs are tasks too, and are seen as a periodic task every 2 s.
    periodic = wait_for(lambda: api(srv, "/api/v1/celery/periodic"),
                        "beat's task seen as periodic")
    (report,) = periodic
    assert report["name"] == "celery_app.nightly_report" and not report["late"]
    assert 1.5 <= report["interval_s"] <= 2.5, report

    # The failure counts into an issue, grouped like errors, with the task's own frame.
    issues = wait_for(lambda: api(srv, "/api/v1/issues")["issues"], "the failure's issue")
    boom_issue = [i for i in issues if i["title"] == "KeyError: 'BE'"]
    assert boom_issue and "boom" in boom_issue[0]["culprit"], issues

    # The Flower-compatible API, as scripts written for Flower call it.
    flower = api(srv, "/api/tasks?taskname=celery_app.boom&state=FAILURE")
    (task,) = flower.values()
    assert task["exception"] == "KeyError('BE')" and task["failed"] > 1.7e9
    assert api(srv, f"/api/task/info/{task['uuid']}")["name"] == "celery_app.boom"
    assert "celery_app.send_invoices" in api(srv, "/api/task/types")["task-types"]
    workers = api(srv, "/api/workers")
    (hostname,) = [h for h in workers if h.startswith("e2e@")]
    assert workers[hostname]["status"] is True
    assert workers[hostname]["sw_ident"] == "py-celery"
    queues = api(srv, "/api/queues/length")["active_queues"]
    assert [q["name"] for q in queues] == ["celery"] and isinstance(queues[0]["messages"], int)


def test_the_celery_pages(celery_env, browser, shots):
    srv, _ = celery_env
    setup_first_admin(browser, srv)
    browser.get(srv.url + "/celery")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.celery-tasks tbody tr")
    assert len(rows) >= 4
    assert "Workers: 1 online of 1" in browser.find_element(By.CSS_SELECTOR, ".page-head").text
    shots(browser, "60-celery-tasks")

    form = browser.find_element(By.ID, "task-filters")
    Select(form.find_element(By.NAME, "state")).select_by_value("FAILURE")
    load_after(browser, form.submit)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.celery-tasks tbody tr")
    assert len(rows) == 1 and "celery_app.boom" in rows[0].text
    rows[0].find_element(By.TAG_NAME, "a").click()
    traceback = browser.find_element(By.ID, "traceback").text
    assert "raise KeyError(code)" in traceback
    events = browser.find_element(By.ID, "task-events").text
    assert "task-received" in events and "task-failed" in events
    shots(browser, "61-celery-task")

    browser.get(srv.url + "/celery/workers")
    table = browser.find_element(By.CSS_SELECTOR, "table.celery-workers").text.lower()
    assert "online" in table and "py-celery" in table
    assert browser.find_elements(By.CSS_SELECTOR, "svg.timeline-bar rect.on"), "the online history"
    shots(browser, "62-celery-workers")

    browser.get(srv.url + "/celery")
    browser.find_element(By.LINK_TEXT, "Task types").click()
    rows = {r.find_element(By.TAG_NAME, "a").text: r.text
            for r in browser.find_elements(By.CSS_SELECTOR, "table.celery-types tbody tr")}
    assert "celery_app.boom" in rows and " 100.0 %" in rows["celery_app.boom"], rows
    flaky = api(srv, "/api/v1/celery/types")["types"]
    assert next(t for t in flaky if t["name"] == "celery_app.flaky")["retries"] == 1
    assert browser.find_elements(By.CSS_SELECTOR, "#throughput rect.done"), "the throughput chart"
    shots(browser, "62b-celery-task-types")

    browser.get(srv.url + "/celery")
    browser.find_element(By.LINK_TEXT, "Periodic tasks").click()
    table = browser.find_element(By.CSS_SELECTOR, "table.celery-periodic").text
    assert "celery_app.nightly_report" in table and "on time" in table
    shots(browser, "63-celery-periodic")

    # Sorting by runtime, slowest first, from the column header.
    browser.get(srv.url + "/celery")
    browser.find_element(By.CSS_SELECTOR, "table.celery-tasks thead a[href*='sort=-runtime']").click()
    assert "runtime ↓" in browser.find_element(By.CSS_SELECTOR, "table.celery-tasks thead").text.lower()
    first = browser.find_elements(By.CSS_SELECTOR, "table.celery-tasks tbody tr")[0]
    assert "celery_app.send_invoices" in first.text, "20 × 50 ms: the slowest"


def test_history_survives_a_restart(celery_env):
    srv, env = celery_env
    before = api(srv, "/api/v1/celery/tasks?limit=1000")
    assert before
    assert srv.stop() == 0
    again = Server(srv.binary, srv.data, "--celery-broker", BROKER)
    again.token = srv.token
    try:
        after = api(again, "/api/v1/celery/tasks?limit=1000")
        assert {t["uuid"] for t in before} <= {t["uuid"] for t in after}
        send(env, "from celery_app import add; add.delay(20, 22)")
        wait_for(lambda: any(t["args"] == "(20, 22)" and t["state"] == "SUCCESS"
                             for t in api(again, "/api/v1/celery/tasks?limit=1000")),
                 "a task after the restart")
    finally:
        again.stop()


AMQP = os.environ.get("VIGIE_TEST_AMQP_URL")


@pytest.mark.skipif(not AMQP, reason="VIGIE_TEST_AMQP_URL is not set")
def test_rabbitmq_worker_turned_on_by_enable_events():
    """A worker on RabbitMQ started without -E: Vigie's enable_events broadcast turns its events
    on, and its tasks arrive through the celeryev exchange."""
    env = {**os.environ, "CELERY_BROKER": AMQP, "CELERY_BACKEND": "rpc://", "CELERY_EVENTS": "0",
           "PYTHONPATH": str(HERE)}
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, "--celery-broker", AMQP,
                     env={"VIGIE_CELERY_ENABLE_EVENTS": "true"})
        srv.token = srv.admin_token()
        worker = celery(env, "worker", "-c", "1", "-n", "rabbit@%h")
        try:
            brokers = wait_for(lambda: [b for b in api(srv, "/api/v1/celery/brokers") if b["connected"]],
                               "the RabbitMQ consumer connected")
            assert brokers[0]["url"].startswith("amqp://guest@127.0.0.1:5672")
            workers = wait_for(lambda: [w for w in api(srv, "/api/v1/celery/workers")
                                        if w["hostname"].startswith("rabbit@")],
                               "the worker's heartbeats")
            assert workers[0]["sw_ident"] == "py-celery"

            # Task events stay off until Vigie's broadcast (every 10 s) reaches the worker.
            def a_task_seen():
                send(env, "from celery_app import add; add.delay(20, 22)")
                time.sleep(2)
                return [t for t in api(srv, "/api/v1/celery/tasks?name=celery_app.add")
                        if t["state"] == "SUCCESS"]

            task = wait_for(a_task_seen, "task events, turned on by enable_events", timeout=60, poll=0)[0]
            assert task["result"] == "42" and task["worker"].startswith("rabbit@")
            job = api(srv, f"/api/v1/jobs/{task['uuid']}")
            assert (job["kind"], job["status"]) == ("celery", "completed")
        finally:
            stop(worker)
            srv.close()
