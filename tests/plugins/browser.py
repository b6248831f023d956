"""Browser fixtures: Debian's headless Chromium driven by selenium through chromium-driver
(/usr/bin/chromedriver, named explicitly so selenium-manager never downloads a driver).

- `browser` (module): one headless Chromium per test module, 1280x800; cookies are cleared
  before each test that asks for it.
- `sign_in(driver, base_url, user)`: signs in through the /login form as `user` (a WebUser or a
  username; password PASSWORD) and waits for the dashboard.
- `screenshot` (function): `screenshot(driver, name)` writes `<name>.png` under the test's tmp
  dir (folder `screenshots`) and returns its path; with CASTKEEP_SCREENSHOTS set, a copy goes
  there too (a test-output folder to look at).
- `axe_violations(driver)`: injects axe-core (npm, tests/browser/node_modules; `npm ci --prefix
  tests/browser` installs it) and returns the serious and critical violations of the page.
- `wait_for(driver, condition, what=...)`, `css(driver, selector)`: a WebDriverWait with a clear
  timeout message, and the elements a CSS selector finds.
- `HOSTILE`: a name that runs script if a page renders it as HTML (pages must show it as text).

A missing browser, driver or axe-core fails the test (it never skips): pages are tested in a
real browser or not at all.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("CASTKEEP_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CASTKEEP_CHROMEDRIVER", "/usr/bin/chromedriver"))
AXE_JS = (Path(__file__).resolve().parents[1] / "browser" / "node_modules" / "axe-core"
          / "axe.min.js")
WINDOW = (1280, 800)
PHONE = (390, 844)
SERIOUS = ("serious", "critical")
HOSTILE = "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">"


def _chrome(width: int = WINDOW[0], height: int = WINDOW[1]):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            pytest.fail(f"{path} is missing: install the Debian package {package} "
                        f"(apt-get install {package}; .ci/run does it)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", "--password-store=basic",
                f"--window-size={width},{height}", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


@pytest.fixture(scope="module")
def browser():
    driver = _chrome()
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(tmp_path: Path):
    folder = tmp_path / "screenshots"
    extra = os.environ.get("CASTKEEP_SCREENSHOTS")

    def take(driver, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        # The whole page, not only the window (Chromium's DevTools capture beyond the viewport),
        # from the top (sticky parts are drawn where the scroll position puts them).
        driver.execute_script("window.scrollTo(0, 0);")
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"],
                     "height": min(size["height"], 6000), "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))
        assert path.stat().st_size > 1000, f"an empty screenshot at {path}"
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(extra) / path.name)
        return path

    return take


def fits_width(driver) -> bool:
    """Whether the page needs no sideways scrolling (nothing wider than the window)."""
    return driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth;")


def sign_in(driver, base_url: str, user: Any, *, password: str | None = None) -> None:
    """Sign in through the form (password: the test users' PASSWORD); afterwards the dashboard
    is shown."""
    from tests.plugins.web import PASSWORD

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    username = getattr(user, "username", user)
    driver.delete_all_cookies()
    driver.get(f"{base_url}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password or PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button[type=submit]").click()
    WebDriverWait(driver, 30).until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, ".site-user__name")))
    shown = driver.find_element(By.CSS_SELECTOR, ".site-user__name").text
    assert shown == username, f"signed in as {shown!r}, wanted {username!r}"


def axe_violations(driver, impacts: tuple[str, ...] = SERIOUS) -> list[dict[str, Any]]:
    """The page's axe-core violations of the given impacts: [{"id", "impact", "help", "nodes"}]."""
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `npm ci --prefix tests/browser` (.ci/run does it)",
                    pytrace=False)
    driver.execute_script(AXE_JS.read_text(encoding="utf-8"))
    driver.set_script_timeout(60)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done({error: String(e)}));")
    if isinstance(result, dict) and "error" in result:
        raise AssertionError(f"axe-core failed: {result['error']}")
    return [{"id": v["id"], "impact": v.get("impact"), "help": v.get("help"),
             "nodes": [n.get("target") for n in v.get("nodes", [])][:5]}
            for v in result if v.get("impact") in impacts]


def wait_for(driver, condition, timeout: float = 30, what: str = "the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        condition, message=f"timed out waiting for {what}")


def css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)
