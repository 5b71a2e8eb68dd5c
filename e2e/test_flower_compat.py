"""One script written against Flower's API documentation, run unchanged against the real
Flower (pip) and against Vigie on the same broker and workers: the same calls answer the same
statuses and shapes. What a Flower-scripting team runs before moving over."""

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import redis

from harness import api, Server, celery, stop, vigie_binary, wait_for

HERE = Path(__file__).resolve().parent
REDIS = os.environ.get("VIGIE_TEST_REDIS_URL")
BROKER = (REDIS or "").rsplit("/", 1)[0] + "/14"
USER, PASSWORD = "ops", "a long password"
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def call(base, method, path, form=None, body=None):
    """A call as a script makes it: HTTP Basic, a form or JSON body; (status, answer)."""
    req = urllib.request.Request(base + path, method=method)
    req.add_header("Authorization", AUTH)
    if form is not None:
        req.data = urllib.parse.urlencode(form).encode()
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def script(base, worker):
    """The script: each call, what it answered, reduced to what a script relies on."""
    seen = {}
    status, workers = call(base, "GET", "/api/workers?refresh=1")
    seen["workers"] = (status, worker in workers,
                       sorted(k for k in ("stats", "registered", "active_queues", "conf")
                              if k in workers.get(worker, {})))
    seen["workers unknown"] = call(base, "GET", "/api/workers?workername=nobody@nowhere")[0]
    status, started = call(base, "POST", "/api/task/async-apply/celery_app.add", body={"args": [20, 22]})
    task_id = started["task-id"]
    seen["async-apply"] = (status, sorted(started))
    status, result = call(base, "GET", f"/api/task/result/{task_id}?timeout=10")
    # Flower reads the state before it waits, so it may say PENDING beside the result; Vigie
    # says SUCCESS. A script reads the result.
    seen["result"] = (status, result["result"])

    def finished():
        status, info = call(base, "GET", f"/api/task/info/{task_id}")
        return (status, info) if info and info.get("state") in ("SUCCESS", "FAILURE") else None

    # Flower takes the task's events in turn: just after the result it may still say STARTED
    # (it did once in CI). A script that waits for the task's end reads the same on both.
    status, info = wait_for(finished, "the task's end in its info", timeout=20)
    seen["info"] = (status, info["name"], info["state"], info["args"])
    status, tasks = call(base, "GET", "/api/tasks?taskname=celery_app.add&limit=10")
    seen["tasks"] = (status, task_id in tasks)
    status, found = call(base, "GET", "/api/tasks?search=" + urllib.parse.quote('args:"20, 22"'))
    seen["search"] = (status, task_id in (found or {}))
    status, types = call(base, "GET", "/api/task/types")
    seen["types"] = (status, "celery_app.add" in types["task-types"])
    status, queues = call(base, "GET", "/api/queues/length")
    seen["queues"] = (status, "active_queues" in queues)
    seen["unknown task"] = call(base, "POST", "/api/task/async-apply/celery_app.nope", body={})[0]
    seen["grow"] = call(base, "POST", f"/api/worker/pool/grow/{worker}", form={"n": 1})
    seen["shrink"] = call(base, "POST", f"/api/worker/pool/shrink/{worker}", form={"n": 1})
    seen["grow unknown worker"] = call(base, "POST", "/api/worker/pool/grow/nobody@nowhere", form={"n": 1})[0]
    seen["rate limit"] = call(base, "POST", "/api/task/rate-limit/celery_app.add",
                              form={"workername": worker, "ratelimit": "100/m"})
    status, revoked = call(base, "POST", f"/api/task/revoke/{task_id}", form={"terminate": "false"})
    seen["revoke"] = (status, revoked["message"].replace(task_id, "<id>"))
    seen["wrong password"] = _wrong_password(base)
    return seen


def _wrong_password(base):
    req = urllib.request.Request(base + "/api/workers")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"ops:guess").decode())
    try:
        urllib.request.urlopen(req, timeout=10)
        return 200
    except urllib.error.HTTPError as e:
        return e.code


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not REDIS, reason="VIGIE_TEST_REDIS_URL is not set")
def test_a_flower_script_answers_the_same_on_flower_and_on_vigie():
    pytest.importorskip("flower")
    redis.Redis.from_url(BROKER).flushdb()
    env = {**os.environ, "CELERY_BROKER": BROKER, "PYTHONPATH": str(HERE)}
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data, "--celery-broker", BROKER)
        srv.token = srv.admin_token()
        subprocess.run([str(srv.binary), "user", "add", USER, "--role", "admin", "--data", srv.data,
                        "--password-stdin"], input=PASSWORD + "\n", text=True, check=True,
                       capture_output=True)
        worker = celery(env, "worker", "-E", "-c", "2", "-n", "compat@%h")
        flower = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "celery_app", "flower", "--address=127.0.0.1",
             f"--port={port}", f"--basic-auth={USER}:{PASSWORD}"],
            cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        flower_url = f"http://127.0.0.1:{port}"
        try:
            hostname = wait_for(lambda: [w["hostname"] for w in api(srv, "/api/v1/celery/workers")
                                         if w["online"]], "the worker")[0]
            wait_for(lambda: api(srv, "/api/v1/celery/inspect/ping")["replies"], "its mailbox")
            wait_for(lambda: hostname in (call(flower_url, "GET", "/api/workers?refresh=1")[1] or {}),
                     "Flower seeing the worker", timeout=30)
            on_flower = script(flower_url, hostname)
            on_vigie = script(srv.url, hostname)
            assert on_vigie == on_flower, json.dumps({"flower": on_flower, "vigie": on_vigie}, indent=1)
            # And what the script relies on is what it should be, not only the same.
            assert on_vigie["result"] == (200, 42)
            assert on_vigie["search"] == (200, True)
            assert on_vigie["workers"] == (200, True, ["active_queues", "conf", "registered", "stats"])
            assert on_vigie["grow"] == (200, {"message": f"Growing '{hostname}' worker's pool by 1"})
            assert (on_vigie["unknown task"], on_vigie["grow unknown worker"]) == (404, 404)
            assert on_vigie["wrong password"] == 401
        finally:
            stop(flower)
            stop(worker)
            srv.close()
