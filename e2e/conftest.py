"""End-to-end fixtures: the real `vigie` binary on a temporary data directory and a free port,
driven by a real headless Chromium through chromedriver (Debian's packages).

Screenshots of every page visited land in e2e/screenshots/ (git-ignored): look at them.
"""

import tempfile
from pathlib import Path

import pytest
from browser import make_browser
from harness import Server, vigie_binary

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data)
        yield srv
        srv.close()


@pytest.fixture(scope="module")
def vigie(server):
    """The module's server, with an admin API token as `.token` (for the API and the CLI)."""
    server.token = server.admin_token()
    return server


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
