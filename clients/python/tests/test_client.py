"""vigie_client against a real Vigie: what the job's code calls, what Vigie then shows."""

import json
import logging
import socket
import time
import urllib.request

import pytest

from vigie_client import Job
from vigie_client.transport import Backoff, parse_dsn


def read_job(vigie, job_id):
    req = urllib.request.Request(f"{vigie.url}/api/v1/jobs/{job_id}",
                                 headers={"Authorization": f"Bearer {vigie.key}"})
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
