"""VigieHandler against a real Vigie: what the application logs, what Vigie's search then finds."""

import json
import logging
import socket
import time
import urllib.parse
import urllib.request

import pytest

from vigie_client import Job, VigieHandler


@pytest.fixture(scope="module")
def admin(vigie):
    return vigie.admin_token()


def search(vigie, admin, query):
    url = f"{vigie.url}/api/v1/logs/search?" + urllib.parse.urlencode({"q": query, "project": "default"})
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)["hits"]


def fresh_logger(name, handler):
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_records_arrive_with_level_logger_fields_and_traceback(vigie, admin):
    handler = VigieHandler(vigie.dsn, source="invoices")
    logger = fresh_logger("invoices.send", handler)
    logger.info("sent invoice %s to %s", "F-1001", "a@example.com", extra={"invoice": "F-1001", "attempt": 2})
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("could not render invoice F-1002")
    handler.flush()
    assert handler.sent == 2 and handler.dropped == 0

    [sent] = search(vigie, admin, '"sent invoice F-1001"')
    assert sent["level"] == "info"
    assert sent["logger"] == "invoices.send"
    assert sent["source"] == "invoices"
    assert dict(sent["fields"])["invoice"] == "F-1001"
    assert dict(sent["fields"])["attempt"] == "2"

    [failed] = search(vigie, admin, "level:error render")
    assert failed["message"].startswith("could not render invoice F-1002\nTraceback")
    assert "ZeroDivisionError: division by zero" in failed["message"], "the traceback is one record"
    handler.close()


def test_records_inside_a_job_carry_its_id(vigie, admin):
    handler = VigieHandler(vigie.url, vigie.key)
    logger = fresh_logger("nightly", handler)
    with Job.start(vigie.dsn, name="Nightly sync") as job:
        logger.warning("supplier feed is late")
    logger.warning("after the job")
    handler.close()

    [inside] = search(vigie, admin, f"job:{job.id}")
    assert inside["message"] == "supplier feed is late"
    [outside] = search(vigie, admin, '"after the job"')
    assert not outside.get("job_id")


def test_many_records_are_batched(vigie, admin):
    handler = VigieHandler(vigie.dsn, source="bulk", batch_size=200, flush_interval=0.2)
    logger = fresh_logger("bulk", handler)
    for i in range(1000):
        logger.info("row %d imported", i)
    handler.close()
    assert handler.sent == 1000
    assert len(search(vigie, admin, "source:bulk imported")) == 100  # one page of results
    assert search(vigie, admin, "source:bulk row 999")[0]["message"] == "row 999 imported"


def test_vigie_down_never_blocks_or_raises_and_keeps_the_newest(caplog):
    caplog.set_level(logging.WARNING, logger="vigie_client")
    handler = VigieHandler(f"http://127.0.0.1:{closed_port()}", "0" * 32, max_buffer=50,
                           flush_interval=0.05, timeout=0.5, close_timeout=1.0)
    logger = fresh_logger("offline", handler)
    started = time.monotonic()
    for i in range(500):
        logger.error("line %d", i)
    assert time.monotonic() - started < 1.0, "emit never waits on the network"
    time.sleep(0.3)
    handler.flush()  # returns at once: Vigie is unreachable
    assert time.monotonic() - started < 3.0
    assert handler.dropped == 450
    assert handler._buffer[-1]["message"] == "line 499", "the newest records are kept"
    handler.close()
    warnings = [r for r in caplog.records if "cannot send logs" in r.getMessage()]
    assert len(warnings) == 1, "warns once"


def test_a_refused_batch_is_dropped_and_logging_goes_on(vigie, caplog):
    caplog.set_level(logging.WARNING, logger="vigie_client")
    handler = VigieHandler(vigie.url, "f" * 32, flush_interval=0.05)  # a key Vigie does not know
    logger = fresh_logger("wrongkey", handler)
    for i in range(3):
        logger.info("nobody will read this")
        handler.flush()
        deadline = time.monotonic() + 5
        while handler.dropped == i and time.monotonic() < deadline:
            time.sleep(0.05)
    assert handler.dropped == 3 and handler.sent == 0
    refusals = [r for r in caplog.records if "unknown project key" in r.getMessage()]
    assert len(refusals) == 1, "one warning per reason, not per batch"
    handler.close()
