"""Vigie follows the log files an application already writes (`[[logs.follow]]`), as a team
would use it: Python's RotatingFileHandler rotating many times while it writes, and a real
Celery worker's `--logfile` on the real Redis — each line stored once, tracebacks whole, a
task's lines under its task id. Checked with the API and `vigie search`, as a user would."""

import json
import logging
import logging.handlers
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from browser import phone, sideways_overflow, sign_in_admin
from harness import Server, stop, vigie_binary, wait_for

HERE = Path(__file__).resolve().parent
REDIS = os.environ.get("VIGIE_TEST_REDIS_URL")
# A database of its own, so other Celery apps on this Redis do not mix in.
BROKER = (REDIS or "").rsplit("/", 1)[0] + "/10"


@pytest.fixture(scope="module")
def following():
    with tempfile.TemporaryDirectory() as root:
        logs = Path(root) / "logs"
        logs.mkdir()
        config = Path(root) / "vigie.toml"
        config.write_text(f'[[logs.follow]]\npath = "{logs}/*.log"\n')
        data = str(Path(root) / "data")
        srv = Server(vigie_binary(), data, env={"VIGIE_CONFIG": str(config)})
        srv.token = srv.admin_token()
        srv.logs = logs
        try:
            yield srv
        finally:
            srv.close()


def download(srv, query):
    """Every record matching `query`, oldest first, through the JSON-lines download."""
    url = f"{srv.url}/api/v1/logs/download?format=jsonl&q={urllib.parse.quote(query)}"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {srv.token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return [json.loads(line) for line in r.read().decode().splitlines()]


def test_a_rotating_file_handler_is_followed_through_its_rotations(following):
    logger = logging.getLogger("shop.mailer")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.handlers.RotatingFileHandler(
        following.logs / "mailer.log", maxBytes=40_000, backupCount=5)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.handlers[:] = [handler]
    lines = 3_000
    for n in range(lines):
        if n % 250 == 0:
            try:
                raise ConnectionError(f"421 too many messages, seq {n}")
            except ConnectionError:
                logger.exception("seq %d failed", n)
        else:
            logger.info("seq %d sent", n)
        if n % 20 == 0:
            time.sleep(0.01)
    handler.close()
    rotated = sorted(p.name for p in following.logs.iterdir())
    assert "mailer.log.1" in rotated, f"the handler rotated: {rotated}"

    records = wait_for(
        lambda: (r := download(following, "source:mailer.log")) and len(r) >= lines and r,
        "every line stored", timeout=60)
    seqs = [int(r["message"].split()[1]) for r in records]
    assert sorted(seqs) == list(range(lines)), "each line once, none lost"
    failed = [r for r in records if r["level"] == "error"]
    assert len(failed) == lines // 250
    for r in failed:
        assert r["logger"] == "shop.mailer"
        assert r["message"].splitlines()[1] == "Traceback (most recent call last):"
        assert r["message"].splitlines()[-1].startswith("ConnectionError: 421 too many messages")


@pytest.mark.skipif(not REDIS, reason="VIGIE_TEST_REDIS_URL is not set")
def test_a_celery_worker_logfile_is_followed_with_its_tasks(following):
    env = {**os.environ, "CELERY_BROKER": BROKER, "PYTHONPATH": str(HERE)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-c", "1", "-n", "follow@%h",
         "--logfile", str(following.logs / "worker.log"), "--loglevel=INFO"],
        cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sent = subprocess.run(
            [sys.executable, "-c",
             "from celery_app import add, boom\n"
             "a = add.delay(2, 3); print(a.id); print(a.get(timeout=30))\n"
             "b = boom.delay('vat'); print(b.id)\n"
             "try:\n    b.get(timeout=30)\nexcept KeyError:\n    pass\n"],
            cwd=HERE, env=env, check=True, capture_output=True, text=True, timeout=60)
        add_id, result, boom_id = sent.stdout.split()
        assert result == "5"
        failed = wait_for(lambda: following.cli("search", "--json", f"job:{boom_id}", "level:error",
                                                token=following.token).stdout.strip(),
                          "the task's failure, from the worker's log file")
        record = json.loads(failed.splitlines()[-1])
        assert record["source"] == "worker.log"
        assert record["logger"] == "celery_app.boom"
        assert record["message"].splitlines()[-1] == "KeyError: 'vat'"
        succeeded = wait_for(lambda: following.cli("search", "--json", f"job:{add_id}",
                                                   token=following.token).stdout.strip(),
                             "the task's success line")
        assert "succeeded" in succeeded
        ready = following.cli("search", "--json", "source:worker.log", "ready", token=following.token)
        assert "follow@" in ready.stdout, "the worker's own lines, under the celery logger"
    finally:
        stop(worker)


def test_the_system_page_shows_how_far_each_file_was_stored(following, browser, shots):
    """After the tests above: every followed file, stored up to its end, in a real browser at
    desktop and phone width."""
    sign_in_admin(browser, following)
    browser.set_window_size(1280, 900)
    browser.get(following.url + "/system#followed")
    panel = browser.find_element(By.ID, "followed")
    rows = panel.find_elements(By.CSS_SELECTOR, "tbody tr")
    paths = [r.find_element(By.CSS_SELECTOR, "td.mono").text for r in rows]
    assert str(following.logs / "mailer.log") in paths, paths
    mailer = rows[paths.index(str(following.logs / "mailer.log"))]
    assert "up to date" in mailer.text, mailer.text
    browser.execute_script("arguments[0].scrollIntoView()", panel)
    shots(browser, "77-system-followed-files")
    with phone(browser):
        browser.get(following.url + "/system#followed")
        assert not sideways_overflow(browser)
        shots(browser, "77-system-followed-files-phone")
