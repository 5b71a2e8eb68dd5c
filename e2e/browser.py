"""A real headless Chromium through chromedriver (Debian's packages), for the UI tests."""

import contextlib
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

PASSWORD = "correct horse battery"


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


@contextlib.contextmanager
def phone(browser, width=390, height=844):
    """Shows pages at a phone's size while in the block: headless Chromium keeps its window at
    least 500 px wide, so the phone's screen is emulated, then the window's size restored."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    try:
        browser.refresh()
        yield browser
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def sideways_overflow(browser):
    """How many pixels the page scrolls sideways (0 when it fits its width)."""
    return browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")


def flash_text(driver):
    """The flash message the current page shows (waits for it)."""
    return WebDriverWait(driver, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".flash"))).text


def load_after(driver, act):
    """Does `act` (a form sent, a button clicked) and waits until the page it loads replaced
    this one: a lookup made at once could still find, and then lose, the old page's elements."""
    page = driver.find_element(By.TAG_NAME, "html")
    act()
    WebDriverWait(driver, 10).until(EC.staleness_of(page))


def flash_after(driver, act):
    """Does `act`, waits for the page it loads, and returns that page's flash message (the
    page a form sits on often shows the previous action's flash)."""
    load_after(driver, act)
    return flash_text(driver)


def accept_confirm(driver, button):
    """Clicks a button that asks "are you sure?" and says yes."""
    button.click()
    driver.switch_to.alert.accept()


def setup_first_admin(browser, server, username="alice"):
    """Opens the setup address a fresh server printed and creates the first admin, logged in."""
    browser.get(server.setup_url)
    form = browser.find_element(By.CSS_SELECTOR, "form[action='/setup']")
    for name, value in [("username", username), ("password", PASSWORD), ("confirm", PASSWORD)]:
        form.find_element(By.NAME, name).send_keys(value)
    form.submit()
    WebDriverWait(browser, 10).until(EC.title_contains("Dashboard"))


def sign_in_admin(browser, server, username="alice"):
    """Creates the first admin when the server has none yet, else logs in as that admin: for
    tests that share one server and may run alone or after one another."""
    browser.get(server.setup_url)
    if browser.find_elements(By.CSS_SELECTOR, "form[action='/setup']"):
        setup_first_admin(browser, server, username)
    else:
        log_in(browser, server, username)


def log_in(browser, server, username="alice", password=PASSWORD):
    """Logs in through the login form; returns on the dashboard."""
    browser.get(server.url + "/login")
    form = browser.find_element(By.CSS_SELECTOR, "form[action='/login']")
    form.find_element(By.NAME, "username").send_keys(username)
    form.find_element(By.NAME, "password").send_keys(password)
    form.submit()
    WebDriverWait(browser, 10).until(EC.title_contains("Dashboard"))
