"""Inspecting and controlling real Celery 5 workers through Vigie, on the real Redis and
RabbitMQ: what `celery inspect` answers, a revoke with terminate that stops a running task, a
rate limit the worker then reports, a pool that grows, a queue purged; the same through
Flower's API as a script written for Flower calls it (form bodies, HTTP Basic, no
?project=), and through `vigie celery`. A second app on another Redis database never shows."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import redis

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browser import flash_after, phone, sideways_overflow, sign_in_admin
from harness import api, Server, celery, stop, vigie_binary, wait_for

HERE = Path(__file__).resolve().parent
REDIS = os.environ.get("VIGIE_TEST_REDIS_URL")
AMQP = os.environ.get("VIGIE_TEST_AMQP_URL")
# Databases of their own: this app on 15, "another app" on 14.
BROKER = (REDIS or "").rsplit("/", 1)[0] + "/15"
OTHER_APP = (REDIS or "").rsplit("/", 1)[0] + "/14"


def send(env, code):
    """Runs Python in the app's environment (enqueues tasks as the web app would)."""
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env, check=True,
                         timeout=30, capture_output=True, text=True)
    return out.stdout.strip()


def flower(srv, path, form=None, auth=None):
    """A call as a Flower script makes it: POST with a form body (GET without), its status
    and JSON (or text) answer."""
    req = urllib.request.Request(srv.url + path, method="POST" if form is not None else "GET")
    req.add_header("Authorization", auth or f"Bearer {srv.token}")
    if form is not None:
        req.data = urllib.parse.urlencode(form).encode()
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, body


def flower_json(srv, path, body, auth):
    """A POST with a JSON body, as Flower's task endpoints take one."""
    req = urllib.request.Request(srv.url + path, method="POST", data=json.dumps(body).encode())
    req.add_header("Authorization", auth)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def stored_task(srv, uuid):
    """The task as Vigie stores it, or {} while none of its events has been stored yet (a
    404: a poll may come before the worker's first event)."""
    try:
        return api(srv, f"/api/v1/celery/tasks/{uuid}")["task"]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return {}
        raise


def control(srv, action, **body):
    return api(srv, f"/api/v1/celery/control/{action}", body=body)


@pytest.fixture(scope="module")
def redis_app():
    if not REDIS:
        pytest.skip("VIGIE_TEST_REDIS_URL is not set")
    env = {**os.environ, "CELERY_BROKER": BROKER, "PYTHONPATH": str(HERE)}
    redis.Redis.from_url(BROKER).flushdb()  # no task of an earlier run waiting
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, "--celery-broker", BROKER)
        srv.token = srv.admin_token()
        worker = celery(env, "worker", "-E", "-c", "2", "-n", "ctl@%h", "-Q", "celery,reports")
        try:
            workers = wait_for(lambda: [w["hostname"] for w in api(srv, "/api/v1/celery/workers")
                                        if w["online"]], "the worker's heartbeat")
            # Its mailbox is read a moment after its first heartbeat.
            wait_for(lambda: api(srv, "/api/v1/celery/inspect/ping")["replies"], "the worker's mailbox")
            yield srv, env, workers[0]
        finally:
            stop(worker)
            srv.close()


def test_inspect_answers_what_the_worker_holds(redis_app):
    srv, env, hostname = redis_app
    ping = api(srv, "/api/v1/celery/inspect/ping")
    assert ping["replies"] == {hostname: {"ok": "pong"}} and ping["silent"] == []
    stats = api(srv, "/api/v1/celery/inspect/stats")["replies"][hostname]
    assert stats["pool"]["max-concurrency"] == 2 and len(stats["pool"]["processes"]) == 2
    registered = api(srv, "/api/v1/celery/inspect/registered")["replies"][hostname]
    assert "celery_app.sleepy" in registered
    queues = api(srv, "/api/v1/celery/inspect/active_queues")["replies"][hostname]
    assert {q["name"] for q in queues} == {"celery", "reports"}
    conf = api(srv, "/api/v1/celery/inspect/conf")["replies"][hostname]
    assert "********" in conf["broker_url"], "Celery hides the password itself"

    # A running task shows in `active`; one with a countdown in `scheduled`.
    running = send(env, "from celery_app import sleepy; print(sleepy.delay(30).id)")
    later = send(env, "from celery_app import add; print(add.apply_async((1, 2), countdown=60).id)")
    active = wait_for(lambda: api(srv, "/api/v1/celery/inspect/active")["replies"][hostname],
                      "the task running")
    assert [t["id"] for t in active] == [running] and active[0]["name"] == "celery_app.sleepy"
    scheduled = api(srv, "/api/v1/celery/inspect/scheduled")["replies"][hostname]
    assert [s["request"]["id"] for s in scheduled] == [later]

    # Revoke with terminate stops it: REVOKED, the worker confirms, the list says who did it.
    done = control(srv, "terminate", task_id=running, signal="SIGKILL")
    assert done["ok"] and done["replies"][hostname]["ok"] == f"terminate: {running}", done
    task = wait_for(lambda: (t := stored_task(srv, running)).get("state") == "REVOKED" and t,
                    "the task revoked")
    assert task["state"] == "REVOKED"
    revoked = api(srv, "/api/v1/celery/inspect/revoked")["replies"][hostname]
    assert running in revoked
    control(srv, "revoke", task_id=later)
    audit = api(srv, f"/api/v1/celery/actions?target={running}")
    assert [(a["action"], a["actor"], a["ok"]) for a in audit] == [("terminate", "token e2e", True)]

    # A worker named that does not exist is named back as silent, quickly.
    started = time.monotonic()
    ping = api(srv, f"/api/v1/celery/inspect/ping?worker={hostname},ghost@nowhere&timeout=2")
    assert ping["silent"] == ["ghost@nowhere"] and hostname in ping["replies"]
    assert time.monotonic() - started < 5


def test_actions_change_what_the_worker_reports(redis_app):
    srv, env, hostname = redis_app
    limited = control(srv, "rate_limit", task_name="celery_app.add", rate="10/m")
    assert limited["replies"][hostname] == {"ok": "new rate limit set successfully"}
    registered = api(srv, "/api/v1/celery/inspect/registered")["replies"][hostname]
    assert "celery_app.add [rate_limit=10/m]" in registered, "the worker holds the limit"
    refused = control(srv, "rate_limit", task_name="celery_app.nope", rate="1/s")
    assert not refused["ok"] and "unknown task" in refused["outcome"]

    grown = control(srv, "pool_grow", n=1, workers=[hostname])
    assert grown["ok"], grown
    processes = lambda: len(api(srv, "/api/v1/celery/inspect/stats")["replies"][hostname]["pool"]["processes"])
    wait_for(lambda: processes() == 3, "three pool processes")
    assert control(srv, "pool_shrink", n=1, workers=[hostname])["ok"]
    wait_for(lambda: processes() == 2, "back to two")

    # A failed task sent again with its arguments: a new task, whose parent is the old one.
    failed = send(env, "from celery_app import boom; print(boom.delay('BE').id)")
    wait_for(lambda: stored_task(srv, failed).get("state") == "FAILURE", "boom failed")
    again = control(srv, "retry", task_id=failed)
    assert again["ok"] and again["task_id"] != failed, again
    retried = wait_for(lambda: (t := stored_task(srv, again['task_id'])).get("state") == "FAILURE" and t,
                       "the retry ran (and failed the same way)")
    assert (retried["name"], retried["args"], retried["parent_id"]) == ("celery_app.boom", "('BE',)", failed)
    assert retried["exception"] == "KeyError('BE')" and retried["worker"] == hostname

    # Purge: the worker stops consuming `reports`, three wait, the purge drops them.
    assert control(srv, "cancel_consumer", queue="reports")["ok"]
    send(env, "from celery_app import add\nfor _ in range(3): add.apply_async((1, 1), queue='reports')")
    cli = subprocess.run([str(srv.binary), "celery", "purge", "reports"], capture_output=True, text=True,
                         env={**os.environ, "VIGIE_URL": srv.url, "VIGIE_TOKEN": srv.token})
    assert cli.returncode == 1 and "3 message(s) wait" in cli.stderr and "--yes" in cli.stderr, cli
    cli = subprocess.run([str(srv.binary), "celery", "purge", "reports", "--yes"], capture_output=True,
                         text=True, env={**os.environ, "VIGIE_URL": srv.url, "VIGIE_TOKEN": srv.token})
    assert cli.returncode == 0 and "purged 3 message(s) from reports" in cli.stdout, cli
    assert control(srv, "add_consumer", queue="reports")["ok"]
    out = subprocess.run([str(srv.binary), "celery", "inspect", "active_queues"], capture_output=True,
                         text=True, env={**os.environ, "VIGIE_URL": srv.url, "VIGIE_TOKEN": srv.token,
                                         "NO_COLOR": "1"})
    assert f"-> {hostname}: 2 item(s)" in out.stdout and "* reports" in out.stdout, out


def test_the_pages_act_on_workers_tasks_and_queues(redis_app, browser, shots):
    """An admin does it from the pages: grows a pool, stops a running task, stops consuming a
    queue and purges it after reading how many messages it drops; each shows in the list."""
    srv, env, hostname = redis_app
    sign_in_admin(browser, srv)
    browser.get(srv.url + "/celery/workers")
    panel = browser.find_element(By.CSS_SELECTOR, f"section.worker-now[data-worker='{hostname}']")
    assert panel.find_element(By.CSS_SELECTOR, ".pool").text == "prefork"
    assert panel.find_element(By.CSS_SELECTOR, ".processes").text == "2"
    assert panel.find_element(By.CSS_SELECTOR, ".queues").text.split() == ["celery", "reports"]
    shots(browser, "64-celery-workers-now")
    said = flash_after(browser, panel.find_element(By.XPATH, ".//button[text()='+1 process']").click)
    assert "pool_grow by 1: 1 worker(s): pool will grow" in said, said

    def processes():
        browser.get(srv.url + "/celery/workers")
        return browser.find_element(
            By.CSS_SELECTOR, f"section.worker-now[data-worker='{hostname}'] .processes").text
    wait_for(lambda: processes() == "3", "the page shows three processes")
    browser.find_element(By.XPATH, "//section[contains(@class,'worker-now')]//button[text()='−1 process']").click()
    wait_for(lambda: processes() == "2", "back to two")

    running = send(env, "from celery_app import sleepy; print(sleepy.delay(30).id)")
    wait_for(lambda: api(srv, "/api/v1/celery/inspect/active")["replies"][hostname], "running")
    browser.get(srv.url + "/celery/workers")
    link = browser.find_element(By.CSS_SELECTOR, f".running a[href='/celery/tasks/{running}']")
    assert link.text == "celery_app.sleepy"
    link.click()
    buttons = browser.find_element(By.ID, "task-control")
    Select(buttons.find_element(By.NAME, "signal")).select_by_value("SIGKILL")
    terminate = buttons.find_element(By.XPATH, ".//button[text()='Terminate']")
    assert f"terminate {running} (SIGKILL)" in flash_after(browser, terminate.click)

    def revoked():
        browser.get(f"{srv.url}/celery/tasks/{running}")
        return "REVOKED" in browser.find_element(By.TAG_NAME, "h1").text
    wait_for(revoked, "the page shows the task revoked")
    buttons = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#task-control button")]
    assert buttons == ["Retry with the same arguments"], "a revoked task can only be sent again"
    rows = browser.find_elements(By.CSS_SELECTOR, "#task-actions tbody tr")
    assert len(rows) == 1 and "alice" in rows[0].text and "terminate" in rows[0].text, rows[0].text
    shots(browser, "65-celery-task-terminated")
    retry = browser.find_element(By.XPATH, "//button[text()='Retry with the same arguments']")
    assert f"retry {running}: sent again as" in flash_after(browser, retry.click)
    assert browser.current_url != f"{srv.url}/celery/tasks/{running}", "on the new task's page"
    parent = browser.find_element(By.CSS_SELECTOR, f"#task-facts a[href='/celery/tasks/{running}']")
    assert parent.text == running
    shots(browser, "65b-celery-task-retried")
    control(srv, "terminate", task_id=browser.current_url.rsplit("/", 1)[1], signal="SIGKILL")

    # A queue: stop consuming it, two messages wait, purge them after being told how many.
    browser.get(srv.url + "/celery/workers")
    browser.find_element(By.XPATH, "//button[text()='Stop reports']").click()
    send(env, "from celery_app import add\nfor _ in range(2): add.apply_async((1, 1), queue='reports')")
    browser.get(srv.url + "/celery/queues/reports/purge")
    confirm = browser.find_element(By.ID, "confirm")
    assert "Drop the 2 messages waiting in reports?" in confirm.text, confirm.text
    shots(browser, "66-celery-purge-confirm")
    purge = confirm.find_element(By.XPATH, ".//button[text()='Purge reports']")
    assert "purged 2 message(s) from reports" in flash_after(browser, purge.click)
    browser.get(srv.url + "/celery/workers")
    queue_input = browser.find_element(By.CSS_SELECTOR, f"section.worker-now[data-worker='{hostname}'] input[name=queue]")
    queue_input.send_keys("reports")
    assert "add_consumer reports" in flash_after(browser, queue_input.submit)
    browser.get(f"{srv.url}/celery/workers/{hostname}/shutdown")
    assert f"Stop the worker {hostname}?" in browser.find_element(By.ID, "confirm").text
    browser.find_element(By.LINK_TEXT, "Cancel").click()
    actions = browser.find_element(By.ID, "celery-actions").text
    for what in ["add_consumer", "purge", "cancel_consumer", "terminate", "pool_shrink", "pool_grow"]:
        assert what in actions, (what, actions)
    shots(browser, "67-celery-workers-actions")
    with phone(browser):
        browser.get(srv.url + "/celery/workers")
        shots(browser, "68-celery-workers-phone")
        assert not sideways_overflow(browser)


def test_a_flower_script_runs_unchanged(redis_app):
    """The calls of a script written against Flower's API documentation: form bodies, HTTP
    Basic credentials (Flower's --basic-auth), no ?project=."""
    srv, env, hostname = redis_app
    subprocess.run([str(srv.binary), "user", "add", "ops", "--role", "admin", "--data", srv.data,
                    "--password-stdin"], input="a long password\n", text=True, check=True,
                   capture_output=True)
    auth = "Basic " + base64.b64encode(b"ops:a long password").decode()
    status, workers = flower(srv, "/api/workers?refresh=1", auth=auth)
    assert status == 200 and workers[hostname]["stats"]["pool"]["max-concurrency"] == 2
    assert {q["name"] for q in workers[hostname]["active_queues"]} == {"celery", "reports"}
    assert any(name.startswith("celery_app.add") for name in workers[hostname]["registered"])
    assert flower(srv, "/api/workers?workername=nobody@x", auth=auth)[0] == 404
    assert flower(srv, "/api/workers?status=1", auth=auth) == (200, {hostname: True})

    task_id = send(env, "from celery_app import add; print(add.delay(20, 22).id)")
    status, result = flower(srv, f"/api/task/result/{task_id}?timeout=10", auth=auth)
    assert status == 200 and result == {"task-id": task_id, "state": "SUCCESS", "result": 42}, result

    # Tasks started through Flower's API: by a known name, by any name, and waited for.
    status, started = flower_json(srv, "/api/task/async-apply/celery_app.add", {"args": [1, 2]}, auth)
    assert status == 200 and started["state"] == "PENDING", started
    assert flower(srv, f"/api/task/result/{started['task-id']}?timeout=10", auth=auth)[1]["result"] == 3
    status, sent = flower_json(srv, "/api/task/send-task/celery_app.add", {"args": [2, 2], "queue": "celery"}, auth)
    assert status == 200 and flower(srv, f"/api/task/result/{sent['task-id']}?timeout=10", auth=auth)[1]["result"] == 4
    status, applied = flower_json(srv, "/api/task/apply/celery_app.add", {"args": [3, 4], "timeout": 10}, auth)
    assert status == 200 and (applied["state"], applied["result"]) == ("SUCCESS", 7), applied
    assert flower_json(srv, "/api/task/async-apply/celery_app.nope", {}, auth)[0] == 404

    assert flower(srv, f"/api/worker/pool/grow/{hostname}", {"n": 1}, auth) == \
        (200, {"message": f"Growing '{hostname}' worker's pool by 1"})
    assert flower(srv, f"/api/worker/pool/shrink/{hostname}", {"n": 1}, auth) == \
        (200, {"message": f"Shrinking '{hostname}' worker's pool by 1"})
    status, text = flower(srv, f"/api/worker/pool/autoscale/{hostname}", {"min": 1, "max": 3}, auth)
    assert status == 403 and "Autoscale not enabled" in json.dumps(text), (status, text)
    assert flower(srv, f"/api/worker/pool/autoscale/{hostname}", {"min": 1}, auth)[0] == 400
    assert flower(srv, f"/api/worker/queue/add-consumer/{hostname}", {"queue": "extra"}, auth) == \
        (200, {"message": "add consumer extra"})
    assert flower(srv, f"/api/worker/queue/cancel-consumer/{hostname}", {"queue": "extra"}, auth) == \
        (200, {"message": "no longer consuming from extra"})
    assert flower(srv, f"/api/worker/queue/add-consumer/{hostname}", {}, auth)[0] == 400
    assert flower(srv, "/api/task/rate-limit/celery_app.add",
                  {"workername": hostname, "ratelimit": "100/m"}, auth) == \
        (200, {"message": "new rate limit set successfully"})
    assert flower(srv, "/api/task/timeout/celery_app.add",
                  {"workername": hostname, "soft": 10, "hard": 20}, auth) == \
        (200, {"message": "time limits set successfully"})
    # An AbortableTask stops itself once marked ABORTED in the result backend.
    long = send(env, "from celery_app import abortable; print(abortable.delay(30).id)")
    wait_for(lambda: stored_task(srv, long).get("state") == "STARTED", "started")
    assert flower(srv, f"/api/task/abort/{long}", {}, auth) == (200, {"message": f"Aborted '{long}'"})
    ended = wait_for(lambda: (t := stored_task(srv, long)).get("state") == "SUCCESS"
                     and t, "the task saw it was aborted")
    assert ended["result"] == "'aborted'", ended

    running = send(env, "from celery_app import sleepy; print(sleepy.delay(30).id)")
    wait_for(lambda: api(srv, "/api/v1/celery/inspect/active")["replies"][hostname], "running")
    assert flower(srv, f"/api/task/revoke/{running}", {"terminate": "true"}, auth) == \
        (200, {"message": f"Revoked '{running}'"})
    wait_for(lambda: stored_task(srv, running).get("state") == "REVOKED",
             "terminated through Flower's API")
    actors = {a["actor"] for a in api(srv, "/api/v1/celery/actions")}
    assert "ops" in actors, actors

    # Last: shut the worker down; it goes offline.
    assert flower(srv, f"/api/worker/shutdown/{hostname}", {}, auth) == (200, {"message": "Shutting down!"})
    wait_for(lambda: not api(srv, "/api/v1/celery/inspect/ping?timeout=0.5")["replies"],
             "the worker stopped answering")


def test_another_app_on_another_database_never_shows():
    """Redis pub/sub crosses databases: a second app's result backend on database 14 of the
    same server publishes task states Vigie hears. None becomes a task here."""
    if not REDIS:
        pytest.skip("VIGIE_TEST_REDIS_URL is not set")
    env = {**os.environ, "CELERY_BROKER": OTHER_APP, "PYTHONPATH": str(HERE)}
    redis.Redis.from_url(OTHER_APP).flushdb()
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, "--celery-broker", BROKER)
        srv.token = srv.admin_token()
        worker = celery(env, "worker", "-c", "2", "-n", "other@%h")
        try:
            wait_for(lambda: [b for b in api(srv, "/api/v1/celery/brokers") if b["connected"]],
                     "Vigie reading database 15")
            ids = send(env, "from celery_app import send_invoices\n"
                            "print(' '.join(send_invoices.delay(5).id for _ in range(3)))").split()
            for task_id in ids:
                send(env, f"from celery_app import app; app.AsyncResult('{task_id}').get(timeout=20)")
            time.sleep(1)
            assert api(srv, "/api/v1/celery/tasks?limit=100") == []
            metrics = urllib.request.urlopen(srv.url + "/metrics").read().decode()
            foreign = [line for line in metrics.splitlines() if line.startswith("vigie_celery_foreign_total")]
            assert foreign and int(foreign[0].split()[-1]) >= 3, foreign
        finally:
            stop(worker)
            srv.close()


def test_a_failure_the_sdk_reported_is_one_issue():
    """sentry-sdk's Celery integration (on by default) reports a failed task itself; Vigie's
    own issue of the failure would be a second one. It waits for the SDK's event and joins it."""
    if not REDIS:
        pytest.skip("VIGIE_TEST_REDIS_URL is not set")
    redis.Redis.from_url(OTHER_APP).flushdb()
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, "--celery-broker", OTHER_APP)
        srv.token = srv.admin_token()
        env = {**os.environ, "CELERY_BROKER": OTHER_APP, "PYTHONPATH": str(HERE), "SENTRY_DSN": srv.dsn}
        worker = celery(env, "worker", "-E", "-c", "1", "-n", "sdk@%h")
        try:
            wait_for(lambda: [w for w in api(srv, "/api/v1/celery/workers") if w["online"]], "the worker")
            with_sdk = send(env, "from celery_app import boom; print(boom.delay('SDK').id)")
            wait_for(lambda: stored_task(srv, with_sdk).get("state") == "FAILURE",
                     "the task failed")
            wait_for(lambda: [i for i in api(srv, "/api/v1/issues")["issues"]
                              if i["title"] == "KeyError: 'SDK'"], "the SDK's issue")
            time.sleep(7)  # past Vigie's wait for the SDK's event
            issues = [i for i in api(srv, "/api/v1/issues")["issues"] if i["title"] == "KeyError: 'SDK'"]
            assert len(issues) == 1 and issues[0]["events"] == 1, issues
            metrics = urllib.request.urlopen(srv.url + "/metrics").read().decode()
            assert "vigie_celery_failures_left_to_sdk_total 1" in metrics
            job = api(srv, f"/api/v1/jobs/{with_sdk}")
            assert job["status"] == "failed"
        finally:
            stop(worker)
            srv.close()


@pytest.mark.skipif(not AMQP, reason="VIGIE_TEST_AMQP_URL is not set")
def test_rabbitmq_workers_are_inspected_and_controlled():
    env = {**os.environ, "CELERY_BROKER": AMQP, "CELERY_BACKEND": "rpc://", "PYTHONPATH": str(HERE)}
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, "--celery-broker", AMQP)
        srv.token = srv.admin_token()
        worker = celery(env, "worker", "-E", "-c", "1", "-n", "rmq@%h", "-Q", "celery,rmq-reports")
        try:
            hostname = wait_for(lambda: [w["hostname"] for w in api(srv, "/api/v1/celery/workers")
                                         if w["online"] and w["hostname"].startswith("rmq@")],
                                "the worker's heartbeats")[0]
            wait_for(lambda: api(srv, "/api/v1/celery/inspect/ping")["replies"], "the worker's mailbox")
            ping = api(srv, "/api/v1/celery/inspect/ping")
            assert ping["replies"] == {hostname: {"ok": "pong"}}, ping
            stats = api(srv, "/api/v1/celery/inspect/stats")["replies"][hostname]
            assert stats["broker"]["transport"] == "amqp"
            assert control(srv, "pool_grow", n=1)["ok"]
            wait_for(lambda: len(api(srv, "/api/v1/celery/inspect/stats")["replies"][hostname]
                                 ["pool"]["processes"]) == 2, "the pool grown")
            assert control(srv, "cancel_consumer", queue="rmq-reports")["ok"]
            send(env, "from celery_app import add\nfor _ in range(4): add.apply_async((1, 1), queue='rmq-reports')")
            time.sleep(0.5)
            failed = send(env, "from celery_app import boom; print(boom.delay('RMQ').id)")
            wait_for(lambda: stored_task(srv, failed).get("state") == "FAILURE",
                     "boom failed")
            again = control(srv, "retry", task_id=failed)["task_id"]
            retried = wait_for(lambda: (t := stored_task(srv, again)).get("state") == "FAILURE" and t,
                               "the retry ran on RabbitMQ")
            assert (retried["args"], retried["parent_id"]) == ("('RMQ',)", failed)
            purged = control(srv, "purge", queue="rmq-reports")
            assert purged["outcome"] == "purged 4 message(s) from rmq-reports", purged
            try:
                control(srv, "purge", queue="no-such-queue")
                raise AssertionError("a queue RabbitMQ does not have is a 404")
            except urllib.error.HTTPError as e:
                assert e.code == 404
            status, _ = flower(srv, f"/api/task/abort/{failed}", {})
            assert status == 409, "no Redis result backend to mark it ABORTED in"
        finally:
            stop(worker)
            srv.close()
