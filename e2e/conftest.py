"""End-to-end fixtures: the real `vigie` binary on a temporary data directory and a free port,
driven by a real headless Chromium through chromedriver (Debian's packages).

Screenshots of every page visited land in e2e/screenshots/ (git-ignored): look at them.
"""

import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def vigie_binary() -> Path:
    """Builds (if needed) and returns the debug binary the Rust tests also use."""
    subprocess.run(["cargo", "build", "--quiet", "-p", "vigie"], cwd=ROOT, check=True)
    return ROOT / "target" / "debug" / "vigie"


class Server:
    """A running `vigie serve`, with what its start-up banner said."""

    def __init__(self, binary: Path, data: str):
        self.process = subprocess.Popen(
            [str(binary), "serve", "--data", data, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "VIGIE_LOG": "warn"},
        )
        self.banner = ""
        deadline = time.time() + 30
        while "Press Ctrl-C" not in self.banner:
            line = self.process.stdout.readline()
            if not line or time.time() > deadline:
                raise RuntimeError("vigie did not start: " + self.banner)
            self.banner += line
        self.url = re.search(r"UI:\s+(\S+)", self.banner).group(1)
        setup = re.search(r"First run:\s+open (\S+)", self.banner)
        self.setup_url = setup.group(1) if setup else None
        self.dsn = re.search(r"Sentry DSN:\s+(\S+)", self.banner).group(1)

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return response.read().decode()

    def stop(self) -> int:
        """Ctrl-C, as a person would; returns the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=15)


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data)
        yield srv
        if srv.process.poll() is None:
            srv.process.kill()


def make_browser(width=1366, height=900):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={width},{height}",
        f"--user-data-dir={tempfile.mkdtemp(prefix='vigie-chromium-')}",
    ]:
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = make_browser()
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def shots():
    SCREENSHOTS.mkdir(exist_ok=True)

    def take(driver, name):
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))

    return take
