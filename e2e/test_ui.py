"""A new user's first session, in a real browser: setup, dashboard, settings, logout, login."""

import re
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from browser import (PASSWORD, accept_confirm, flash_after, flash_text, log_in, make_browser,
                     phone, sideways_overflow)



def wait(driver, timeout=10):
    return WebDriverWait(driver, timeout)


def fill(driver, form, **fields):
    for name, value in fields.items():
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)


def clipboard(driver):
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, e => done('ERROR ' + e));"
    )


def test_first_session(server, browser, shots):
    assert server.setup_url, "a fresh data directory prints a setup address"
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": server.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )

    # 1. The setup address creates the first admin and lands on the dashboard.
    browser.get(server.setup_url)
    assert "Welcome to Vigie" in browser.page_source
    shots(browser, "01-setup")
    form = browser.find_element(By.CSS_SELECTOR, "form[action='/setup']")
    fill(browser, form, username="alice", password=PASSWORD, confirm=PASSWORD)
    form.submit()
    wait(browser).until(EC.title_contains("Dashboard"))
    assert "Welcome, alice" in flash_text(browser)
    assert browser.find_element(By.ID, "dsn").text == server.dsn
    assert f'dsn="{server.dsn}"' in browser.find_element(By.ID, "snippet").text

    # The live indicator connects over SSE; the admin counters are on System, not here.
    indicator = browser.find_element(By.CSS_SELECTOR, "[data-live-indicator]")
    wait(browser).until(lambda d: indicator.text == "Live")
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-bind=users]")
    shots(browser, "02-dashboard")

    # The same page in the dark theme the system may ask for.
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    shots(browser, "02-dashboard-dark")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

    # 2. Copy the DSN: the button confirms and the clipboard holds it.
    button = browser.find_element(By.ID, "copy-dsn")
    button.click()
    wait(browser).until(lambda d: button.text == "Copied")
    assert clipboard(browser) == server.dsn

    # 3. Settings: create a project; it appears with its own DSN.
    browser.find_element(By.LINK_TEXT, "Settings").click()
    wait(browser).until(EC.title_contains("Projects"))
    form = browser.find_element(By.ID, "create-project")
    fill(browser, form, name="billing-worker")
    assert 'Project "billing-worker" created' in flash_after(browser, form.submit)
    row = browser.find_element(By.XPATH, "//tr[td/strong[text()='billing-worker']]")
    project_dsn = row.find_element(By.CSS_SELECTOR, "code").text
    assert re.fullmatch(r"http://[0-9a-f]{32}@127\.0\.0\.1:\d+/\d+", project_dsn), project_dsn
    billing_id = project_dsn.rsplit("/", 1)[1]  # after "default" and Vigie's own "vigie"
    shots(browser, "03-projects")

    # Rename it, then rotate its key: the DSN changes.
    rename = row.find_element(By.CSS_SELECTOR, "form[action$='/rename']")
    fill(browser, rename, name="billing")
    assert 'renamed to "billing"' in flash_after(browser, rename.submit)
    row = browser.find_element(By.XPATH, "//tr[td/strong[text()='billing']]")
    rotate = row.find_element(By.XPATH, ".//button[text()='Rotate key']")
    assert "New key" in flash_after(browser, lambda: accept_confirm(browser, rotate))
    row = browser.find_element(By.XPATH, "//tr[td/strong[text()='billing']]")
    assert row.find_element(By.CSS_SELECTOR, "code").text != project_dsn

    # Its error settings: a stricter Apdex threshold, a quota, an extra scrubbed key word.
    errors = browser.find_element(By.CSS_SELECTOR, f"#error-settings tr[data-project='{billing_id}']")
    fill(browser, errors, apdex_ms="120", events_per_minute="600", scrub_keys="siret")
    save = errors.find_element(By.XPATH, ".//button[text()='Save']")
    assert "Apdex T 120 ms, at most 600 events/min" in flash_after(browser, save.click)
    errors = browser.find_element(By.CSS_SELECTOR, f"#error-settings tr[data-project='{billing_id}']")
    assert errors.find_element(By.NAME, "scrub_keys").get_attribute("value") == "siret"
    browser.execute_script("document.getElementById('error-settings').scrollIntoView()")
    shots(browser, "03b-error-settings")

    # The switcher picks the project the dashboard shows.
    Select(browser.find_element(By.ID, "project-switcher")).select_by_visible_text("billing")
    wait(browser).until(
        lambda d: Select(d.find_element(By.ID, "project-switcher")).first_selected_option.text
        == "billing"
    )
    assert "/settings/projects" in browser.current_url, "the switcher comes back to the page"
    browser.find_element(By.LINK_TEXT, "Dashboard").click()
    wait(browser).until(lambda d: "billing" in d.find_element(By.CSS_SELECTOR, ".page-head").text)
    assert browser.find_element(By.ID, "dsn").text.endswith(f"/{billing_id}")

    # 4. Users: add a viewer.
    browser.get(server.url + "/settings/users")
    form = browser.find_element(By.ID, "add-user")
    fill(browser, form, username="bob", password="bobs password")
    Select(form.find_element(By.NAME, "role")).select_by_value("viewer")
    assert 'User "bob" added as viewer' in flash_after(browser, form.submit)
    shots(browser, "04-users")

    # 5. Tokens: created, shown once, usable against the API, then revoked.
    browser.get(server.url + "/settings/tokens")
    shots(browser, "05-tokens-empty")
    form = browser.find_element(By.ID, "create-token")
    fill(browser, form, name="ci")
    Select(form.find_element(By.NAME, "scope")).select_by_value("admin")
    form.submit()
    secret = wait(browser).until(EC.presence_of_element_located((By.ID, "token-secret"))).text
    assert secret.startswith("vigie_")
    shots(browser, "06-token-created")
    browser.get(server.url + "/settings/tokens")
    assert secret not in browser.page_source, "a token is shown only once"
    revoke = browser.find_element(By.XPATH, "//button[text()='Revoke']")
    assert "Token revoked" in flash_after(browser, lambda: accept_confirm(browser, revoke))

    # 6. Empty pages say what to do next: Jobs shows the snippet to paste, with this project's
    # key; Logs shows how to send lines; Issues the Sentry snippet with the DSN; a section still
    # to come says what it will show.
    browser.find_element(By.LINK_TEXT, "Jobs").click()
    wait(browser).until(EC.title_contains("Jobs"))
    assert "No job has reported yet" in browser.page_source
    snippet = browser.find_element(By.ID, "job-snippet").text
    assert "from vigie_client import Job" in snippet and "Job.start(" in snippet
    shots(browser, "07-jobs-empty")
    browser.find_element(By.LINK_TEXT, "Logs").click()
    wait(browser).until(EC.title_contains("Logs"))
    assert "No log has arrived yet" in browser.page_source
    assert "/api/v1/logs?source=web" in browser.page_source
    shots(browser, "07-logs-empty")
    browser.find_element(By.LINK_TEXT, "Issues").click()
    wait(browser).until(EC.title_contains("Issues"))
    assert "No error has been reported yet" in browser.page_source
    snippet = browser.find_element(By.ID, "sentry-snippet").text
    assert "sentry_sdk.init(" in snippet and 'dsn="http://' in snippet, snippet
    shots(browser, "07-issues-empty")
    browser.find_element(By.LINK_TEXT, "Monitors").click()
    wait(browser).until(EC.title_contains("Monitors"))
    assert "No monitor yet" in browser.page_source
    assert "/ping/" in browser.find_element(By.ID, "ping-snippet").text
    shots(browser, "07-monitors-empty")
    # On a phone, what a new project shows fits the screen: a DSN in a sentence wraps.
    for path in ["/jobs", "/logs", "/issues", "/monitors"]:
        browser.get(server.url + path)
        with phone(browser):
            assert not sideways_overflow(browser), f"{path} scrolls sideways on a phone"
    browser.find_element(By.LINK_TEXT, "Alerts").click()
    wait(browser).until(EC.title_contains("Alerts"))
    assert "No channel yet" in browser.page_source
    browser.get(server.url + "/system?live=poll")
    indicator = browser.find_element(By.CSS_SELECTOR, "[data-live-indicator]")
    wait(browser).until(lambda d: indicator.text == "Polling")
    assert browser.find_element(By.CSS_SELECTOR, "[data-bind=users]").text == "2", "alice and bob"
    tasks = browser.find_element(By.ID, "tasks").text
    for task in ["stall sweep", "monitor check", "log upkeep", "event retention", "expired sessions"]:
        assert task in tasks, tasks
    assert "jobs stalled: 0" in tasks, "the sweep has run and said what it did"
    shots(browser, "08-system")

    # 7. Log out, fail a login, then log in.
    browser.find_element(By.ID, "logout").click()
    wait(browser).until(EC.title_contains("Log in"))
    assert "You are logged out." in browser.page_source
    shots(browser, "09-logged-out")
    form = browser.find_element(By.CSS_SELECTOR, "form[action='/login']")
    fill(browser, form, username="alice", password="wrong password")
    form.submit()
    error = wait(browser).until(EC.presence_of_element_located((By.ID, "login-error")))
    assert "Wrong username or password" in error.text
    shots(browser, "10-failed-login")
    time.sleep(1.2)  # the slowed retry
    form = browser.find_element(By.CSS_SELECTOR, "form[action='/login']")
    fill(browser, form, username="alice", password=PASSWORD)
    form.submit()
    wait(browser).until(EC.title_contains("Dashboard"))


def test_viewer_and_phone(server, shots):
    """A viewer on a phone-sized screen: the drawer menu, and settings without forms."""
    phone = make_browser(width=390, height=844)
    try:
        log_in(phone, server, "bob", "bobs password")
        shots(phone, "11-phone-dashboard")
        phone.find_element(By.CSS_SELECTOR, ".menu-toggle").click()
        wait(phone).until(lambda d: "open" in d.find_element(By.ID, "sidebar").get_attribute("class"))
        shots(phone, "12-phone-menu")
        phone.get(server.url + "/settings/projects")
        assert "You are a viewer" in phone.page_source
        assert not phone.find_elements(By.ID, "create-project")
    finally:
        phone.quit()


def test_ctrl_c_exits_cleanly_with_a_live_page_open(server):
    """Ctrl-C ends live streams and exits 0, even with a browser holding an SSE stream open."""
    browser = make_browser()
    try:
        log_in(browser, server)
        indicator = browser.find_element(By.CSS_SELECTOR, "[data-live-indicator]")
        wait(browser).until(lambda d: indicator.text == "Live")
        started = time.time()
        assert server.stop() == 0
        assert time.time() - started < 10
    finally:
        browser.quit()
