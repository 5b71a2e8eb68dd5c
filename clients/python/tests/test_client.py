"""vigie_client against a real Vigie: what the job's code calls, what Vigie then shows."""

import json
import logging
import random
import socket
import threading
import time
import urllib.request

import pytest

from vigie_client import Job
from vigie_client.transport import Backoff, Retryable, Transport, parse_dsn


def read_job(vigie, job_id, path=""):
    """Reads a job as a script does, with an API token: the project key only sends."""
    if not hasattr(vigie, "_read_token"):
        vigie._read_token = vigie.admin_token()
    req = urllib.request.Request(f"{vigie.url}/api/v1/jobs/{job_id}{path}",
                                 headers={"Authorization": f"Bearer {vigie._read_token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_items_are_batched_and_counted(vigie):
    job = Job.start(vigie.dsn, name="Send invoices", total=250, kind="email",
                    application="invoices", launched_by=1)
    assert job.read_token, "created at once when Vigie answers"
    for i in range(250):
        if i % 50 == 7:
            job.item_error(name=f"INV-{i}", target=f"c{i}@example.com", error="550 mailbox unavailable")
        else:
            job.item_ok(name=f"INV-{i}", target=[f"c{i}@example.com", "copy@example.com"], duration=0.01)
    job.progress("all sent")
    job.finish()
    seen = read_job(vigie, job.id)
    assert seen["status"] == "completed"
    assert (seen["processed"], seen["failed"], seen["ok"]) == (250, 5, 245)
    assert seen["launched_by"] == "1"
    assert seen["summary"]["errors"] == 5
    assert seen["items"][0]["name"] == "INV-249"
    assert seen["items"][0]["target"] == "c249@example.com, copy@example.com"
    assert any(m["text"] == "all sent" for m in seen["messages"])


def test_an_exception_finishes_the_job_failed(vigie):
    with pytest.raises(ZeroDivisionError):
        with Job.start(vigie.url, vigie.key, name="Import") as job:
            job.item_ok(name="row 1")
            1 / 0
    seen = read_job(vigie, job.id)
    assert seen["status"] == "failed"
    assert "ZeroDivisionError" in seen["message"]
    assert seen["processed"] == 1


def test_the_heartbeat_keeps_a_quiet_job_running(vigie):
    job = Job.start(vigie.url, vigie.key, name="Slow", stall_after=2, heartbeat=0.5)
    time.sleep(8)  # past stall_after plus a sweep or two
    assert read_job(vigie, job.id)["status"] == "running"
    job.finish()


def test_a_job_whose_heartbeat_stops_turns_stalled(vigie):
    job = Job.start(vigie.url, vigie.key, name="Dies", stall_after=1, heartbeat=3600)
    job.item_ok(name="first")
    time.sleep(1.5)
    deadline = time.time() + 15
    while read_job(vigie, job.id)["status"] != "stalled":
        assert time.time() < deadline, "not stalled in time"
        time.sleep(0.5)
    job.item_ok(name="second")  # a sign of life revives it
    job.finish()
    seen = read_job(vigie, job.id)
    assert seen["status"] == "completed"
    assert seen["stalled_seconds"] > 0


def test_vigie_down_never_raises_and_buffers_a_bounded_amount(caplog):
    caplog.set_level(logging.WARNING, logger="vigie_client")
    started = time.monotonic()
    job = Job.start(f"http://127.0.0.1:{closed_port()}", "0" * 32, name="Offline",
                    max_buffer=10, finish_timeout=1.0, timeout=0.5)
    for i in range(50):
        job.item_ok(name=str(i))
    job.progress("still going")
    job.finish()
    assert time.monotonic() - started < 10
    assert job.dropped == 40
    warnings = [r for r in caplog.records if "cannot report" in r.getMessage()]
    assert len(warnings) == 1, "warns once"


def test_unknown_item_fields_are_a_programming_error(vigie):
    job = Job.start(vigie.url, vigie.key, name="Typos")
    with pytest.raises(TypeError):
        job.item_ok(nmae="x")
    job.finish()


def test_dsn_and_backoff():
    assert parse_dsn("http://abc@127.0.0.1:8610/1") == ("http://127.0.0.1:8610", "abc")
    with pytest.raises(ValueError):
        parse_dsn("http://127.0.0.1:8610/1")
    b = Backoff(first=0.5, cap=4)
    delays = [b.next_delay() for _ in range(6)]
    assert delays[0] < 0.7 and delays[-1] <= 4.8
    assert b.next_delay(retry_after=3) >= 3 * 0.8


class SlowFlakyTransport(Transport):
    """The real transport to the real Vigie, slowed (50-200 ms a request) and failing one
    request in four: half of the failures before the request leaves, half after Vigie stored
    it (the answer lost, as on a dropped connection), so the client must retry without
    doubling anything."""

    def __init__(self, server, key):
        super().__init__(server, key, 5.0)
        self.rng = random.Random(7)
        self.lock = threading.Lock()
        self.failures = 0

    def post(self, path, body):
        with self.lock:
            delay, roll = self.rng.uniform(0.05, 0.2), self.rng.random()
        time.sleep(delay)
        if roll < 0.125:
            self.failures += 1
            raise Retryable("connection reset before sending")
        answer = super().post(path, body)
        if roll < 0.25:
            self.failures += 1
            raise Retryable("connection reset after Vigie answered")
        return answer


def test_items_from_many_threads_arrive_exactly_once_over_a_slow_failing_link(vigie):
    server, key = parse_dsn(vigie.dsn)
    transport = SlowFlakyTransport(server, key)
    # Items arrive (~130/s) while a request is out (50-200 ms), so batches leave partly full
    # and more items queue behind them during the send: a client that removes "a batch" after
    # the answer rather than exactly what it sent loses those.
    job = Job(transport, {"id": "threads-flaky", "name": "Threads over a bad link", "total": 300},
              batch_size=50, flush_interval=0.02)

    def add(worker):
        for i in range(75):
            job.item_ok(name=f"w{worker}-{i}")
            time.sleep(random.uniform(0.01, 0.05))

    threads = [threading.Thread(target=add, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    job.finish()
    assert transport.failures > 0, "the link did fail"
    seen = read_job(vigie, "threads-flaky")
    assert seen["status"] == "completed"
    assert seen["processed"] == 300, seen["processed"]
    items = read_job(vigie, "threads-flaky", "/items?limit=500")
    assert items["total"] == 300
    names = sorted(i["name"] for i in items["items"])
    assert names == sorted(f"w{w}-{i}" for w in range(4) for i in range(75)), "each item once"
    assert job.dropped == 0
