"""The request pages in a real headless Chromium: the form (talents pickable only when their
consent covers the use, the failing clause shown, names rendered as text), live progress turning
into the review gallery without a reload, a reviewer approving one variant with a comment, and
downloads of published variants (one file, a zip). axe-core finds no serious or critical
violations on each page; screenshots of each step are written (see tests/plugins/browser.py)."""

from __future__ import annotations

import io
import re
import zipfile

import httpx

from tests.plugins.browser import PHONE, WINDOW, axe_violations, css, fits_width, sign_in
from tests.plugins.db import catalogue_sql

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _wait(driver, condition, timeout: float = 300, what: str = "the page"):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The pages replace parts of themselves (live checks, the gallery): look again.
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,)).until(
        condition, message=f"timed out waiting for {what}")


def _set(driver, element_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


def _no_serious_violations(driver, page: str) -> None:
    found = axe_violations(driver)
    assert found == [], f"{page}: {found}"


def _cookie_client(driver, server) -> httpx.Client:
    """An HTTP client holding the browser's session cookie (to read downloads byte for byte)."""
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    return httpx.Client(base_url=server.url, cookies=cookies, timeout=60)



def test_request_journey(browser, web_server, web_users, request_env, screenshot):
    from selenium.webdriver.common.by import By

    url = web_server.url
    talent_a = request_env.talent_ids["demo-talent-a"]

    # Requester: the form, with the use described first; talent A's consent covers it.
    sign_in(browser, url, web_users["requester"])
    browser.get(f"{url}/requests/new")
    _set(browser, "campaign", "Spring terrace")
    _set(browser, "channel", "social")
    _set(browser, "territory", "FR")
    _set(browser, "purpose", "advertising")
    box = _wait(browser, lambda d: next(
        (b for b in css(d, f"#talent-{talent_a}") if b.is_enabled()), False),
        timeout=30, what="talent A to become available")
    box.click()
    _set(browser, "key_azimuth", "45")
    _set(browser, "fill_ratio", "0.2")
    _set(browser, "variants", "2")
    assert browser.find_element(By.ID, "approval_required").is_selected()
    # The azimuth picker follows the number: 45 degrees camera-right is right of and below
    # the subject in the top view.
    dot = browser.find_element(By.ID, "azimuth-dot")
    assert float(dot.get_attribute("cx")) > 80 and float(dot.get_attribute("cy")) > 80
    _no_serious_violations(browser, "request form")
    screenshot(browser, "01-request-form")
    browser.find_element(By.CSS_SELECTOR, "#request-form button[type=submit]").click()

    _wait(browser, lambda d: re.search(rf"/requests/{UUID}$", d.current_url), timeout=60,
          what="the request page")
    rid = browser.current_url.rsplit("/", 1)[1]
    browser.execute_script("window.__samePage = true;")
    screenshot(browser, "02-request-progress")
    _wait(browser, lambda d: d.find_element(By.ID, "request").get_attribute("data-status")
          == "awaiting_approval" and len(css(d, ".variant[data-asset-id]")) == 2,
          what="the gallery of 2 variants")
    assert browser.execute_script("return window.__samePage === true;"), "the page reloaded"
    assert browser.find_element(By.ID, "progress").get_attribute("hidden") is not None

    # The gallery: the reference beside the variants, thumbnails loaded, scores in order.
    references = css(browser, "[data-role=reference] img")
    assert references, "no reference portrait"
    variants = css(browser, ".variant[data-asset-id]")
    ids = [v.get_attribute("data-asset-id") for v in variants]
    assert all(re.fullmatch(UUID, i) for i in ids)
    _wait(browser, lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('[data-role=reference] img, "
        ".variant img')).every(i => i.complete && i.naturalWidth > 0);"),
        timeout=30, what="the thumbnails to load")
    labels = [th.text for th in variants[0].find_elements(By.CSS_SELECTOR, "tbody th")]
    assert labels == ["Identity distance · Demo Talent A", "Lighting error",
                      "Quality (sharpness)"], labels
    assert variants[0].find_element(By.XPATH, ".//tr[2]/td[1]").text.endswith("°")
    assert css(browser, "[data-action]") == [], "a requester sees review controls"
    _no_serious_violations(browser, "request gallery (requester)")
    screenshot(browser, "03-gallery-requester")
    candidates = [v.get_attribute("data-asset-id") for v in variants
                  if v.get_attribute("data-status") == "candidate"]
    assert candidates, "no variant passed the checks"
    # As the API's files: a requester sees a candidate small, in full once it is published.
    assert css(browser, ".variant__open") == []
    with _cookie_client(browser, web_server) as client:
        refused = client.get(f"/requests/{rid}/images/{candidates[0]}")
        assert refused.status_code == 403 and "requesters see published" in refused.text

    # The reviewer's dashboard lists it; the gallery has the controls.
    sign_in(browser, url, web_users["reviewer"])
    row = css(browser, f"#awaiting-review a[href='/requests/{rid}']")
    assert [r.text for r in row] == ["Spring terrace"]
    screenshot(browser, "04-dashboard-reviewer")
    browser.get(f"{url}/requests/{rid}")
    chosen = candidates[0]
    opener = f".variant[data-asset-id='{chosen}'] .variant__open"
    browser.find_element(By.CSS_SELECTOR, opener).click()
    _wait(browser, lambda d: d.execute_script(
        "const b = document.getElementById('lightbox'); const i = document.getElementById("
        "'lightbox-image'); return b.open && i.complete && i.naturalWidth > 256;"),
        timeout=30, what="the full-size image")
    screenshot(browser, "05-full-size")
    browser.find_element(By.ID, "lightbox-close").click()
    _no_serious_violations(browser, "request gallery (reviewer)")
    browser.find_element(By.ID, f"select-{chosen}").click()
    browser.find_element(By.ID, "review-comment").send_keys("Best light on the terrace")
    browser.find_element(By.CSS_SELECTOR, "[data-action=approve]").click()
    _wait(browser, lambda d: d.find_element(
        By.CSS_SELECTOR, f".variant[data-asset-id='{chosen}']").get_attribute("data-status")
        == "published", timeout=120, what="the approved variant to be published")
    assert "Published 1 variant." in browser.find_element(By.ID, "action-message").text
    screenshot(browser, "06-approved")

    with httpx.Client(base_url=url, timeout=60,
                      headers={"Authorization": f"Bearer {web_users['reviewer'].token}"}) as api:
        history = api.get(f"/api/v1/assets/{chosen}").json()["history"]
        submitted = api.get(f"/api/v1/requests/{rid}").json()
    # The form submitted through the API's own path, as the signed-in requester.
    assert (submitted["submitted_by"], submitted["team"]) == ("requester", "north")
    approvals = [h for h in history if h["comment"] == "Best light on the terrace"]
    assert approvals and approvals[0]["actor"] == "reviewer"

    # The rest are rejected, with a comment (not without one); the request is then complete.
    rest = [c for c in candidates if c != chosen]
    if rest:
        for aid in rest:
            browser.find_element(By.ID, f"select-{aid}").click()
        browser.find_element(By.CSS_SELECTOR, "[data-action=reject]").click()
        assert "comment" in browser.find_element(By.ID, "action-message").text
        assert all(v.get_attribute("data-status") == "candidate"
                   for v in css(browser, ".variant") if v.get_attribute("data-asset-id") in rest)
        browser.find_element(By.ID, "review-comment").send_keys("Key light too flat")
        browser.find_element(By.CSS_SELECTOR, "[data-action=reject]").click()
    _wait(browser, lambda d: d.find_element(By.ID, "request").get_attribute("data-status")
          == "completed", timeout=120, what="the request to complete")
    assert css(browser, "[data-action]") == [], "review controls after the review ended"
    for aid in rest:
        card = browser.find_element(By.CSS_SELECTOR, f".variant[data-asset-id='{aid}']")
        assert card.get_attribute("data-status") == "rejected"
        assert "Image withheld" in card.text and card.find_elements(By.TAG_NAME, "img") == []

    # The filter shows the rejected variants only, then all again.
    browser.find_element(By.CSS_SELECTOR, "button[data-filter=rejected]").click()
    shown = [v.get_attribute("data-asset-id") for v in css(browser, ".variant")
             if v.is_displayed()]
    assert sorted(shown) == sorted(i for i in ids if i != chosen and (
        i in rest or i not in candidates))
    screenshot(browser, "06b-rejected-filter")
    browser.find_element(By.CSS_SELECTOR, "button[data-filter=all]").click()
    assert len([v for v in css(browser, ".variant") if v.is_displayed()]) == len(ids)

    # Downloads: the file under its readable name, and a zip of the selection.
    link = browser.find_element(By.CSS_SELECTOR,
                                f".variant[data-asset-id='{chosen}'] .variant__download")
    with _cookie_client(browser, web_server) as client:
        single = client.get(link.get_attribute("href"))
        assert single.status_code == 200
        assert re.fullmatch(r'attachment; filename="Spring-terrace-demo-talent-a-v\d\.jpg"',
                            single.headers["content-disposition"])
        archive = client.get(f"/requests/{rid}/download.zip", params={"asset": [chosen]})
        assert archive.status_code == 200
        assert archive.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
        assert names == [single.headers["content-disposition"].split('"')[1]]
        assert zipfile.ZipFile(io.BytesIO(archive.content)).read(names[0]) == single.content
        full = client.get(f"/requests/{rid}/images/{chosen}")
        assert full.status_code == 200 and full.content == single.content
        assert full.headers["content-disposition"].startswith("inline")
        others = [i for i in ids if i != chosen]
        refused = client.get(f"/requests/{rid}/download.zip",
                             params={"asset": [chosen, *others]})
        assert refused.status_code == 409 and "Only published" in refused.text

    # The requester's dashboard shows the request and its progress.
    sign_in(browser, url, web_users["requester"])
    row = css(browser, f"#my-requests a[href='/requests/{rid}']")
    assert [r.text for r in row] == ["Spring terrace"]
    assert "2 of 2 variants" in browser.find_element(By.ID, "my-requests").text
    with _cookie_client(browser, web_server) as client:
        assert client.get(f"/requests/{rid}/images/{chosen}").status_code == 200
    _no_serious_violations(browser, "dashboard (requester)")
    screenshot(browser, "07-dashboard-requester")

    # On a 390 px phone screen nothing needs sideways scrolling.
    browser.set_window_size(*PHONE)
    try:
        for path, name in ((f"/requests/{rid}", "10-phone-gallery"),
                           ("/requests/new", "11-phone-form"), ("/", "12-phone-dashboard")):
            browser.get(url + path)
            assert fits_width(browser), f"{path} is wider than a phone screen"
            wide = browser.execute_script(
                "return Array.from(document.querySelectorAll('.table-scroll'))"
                ".filter(t => t.scrollWidth > t.clientWidth).map(t => [t.scrollWidth, "
                "t.clientWidth, Array.from(t.querySelectorAll('tr:first-child > *'))"
                ".map(c => c.offsetWidth)]);")
            assert wide == [], f"{path}: a table scrolls sideways {wide}"
            screenshot(browser, name)
    finally:
        browser.set_window_size(*WINDOW)

    # Someone of another team sees no such request; reviewers cannot open the form.
    with httpx.Client(base_url=url, timeout=60) as other:
        other.post("/login", data={"username": "outsider", "password": _password()})
        hidden = other.get(f"/requests/{rid}")
        assert hidden.status_code == 404 and "text/html" in hidden.headers["content-type"]
        assert other.get(f"/requests/{rid}/download.zip",
                         params={"asset": [chosen]}).status_code == 404


def _password() -> str:
    from tests.plugins.web import PASSWORD

    return PASSWORD


def test_form_offers_only_consented_talents(browser, web_server, web_users, request_env,
                                            screenshot):
    from selenium.webdriver.common.by import By

    url = web_server.url
    talent_a = request_env.talent_ids["demo-talent-a"]
    talent_b = request_env.talent_ids["demo-talent-b"]
    hostile = "<script>window.__xss = 1</script><img src=x onerror=window.__xss=2>"
    catalogue_sql("UPDATE talent SET display_name = :n WHERE external_ref = 'demo-talent-a'", n=hostile)
    catalogue_sql("UPDATE consent SET scope = jsonb_set(scope::jsonb, '{channels}', '[\"print\"]') "
         "WHERE talent_id = :t", t=talent_b)
    catalogue_sql("UPDATE consent SET valid_until = now() + interval '20 days' WHERE talent_id = :t",
         t=talent_a)

    sign_in(browser, url, web_users["requester"])
    browser.get(f"{url}/requests/new?channel=social&territory=FR&purpose=advertising")
    b_box = browser.find_element(By.ID, f"talent-{talent_b}")
    assert not b_box.is_enabled()
    why = browser.find_element(By.ID, f"talent-{talent_b}-why").text
    assert why == "channel social not in the consent scope [print]"
    name = browser.find_element(By.CSS_SELECTOR, f"[data-talent-id='{talent_a}'] .talent__name")
    assert name.text == hostile
    assert browser.execute_script("return window.__xss === undefined;")
    assert css(browser, "#talent-list script, #talent-list img") == []
    _no_serious_violations(browser, "request form with an unavailable talent")
    screenshot(browser, "08-form-unavailable-talent")

    # Describing another use re-checks consent live: for print, B is available and A is not.
    _set(browser, "channel", "print")
    _wait(browser, lambda d: d.find_element(By.ID, f"talent-{talent_b}").is_enabled(),
          timeout=30, what="talent B to become available for print")
    assert not browser.find_element(By.ID, f"talent-{talent_a}").is_enabled()
    assert browser.find_element(By.CSS_SELECTOR,
                                f"[data-talent-id='{talent_a}'] .talent__name").text == hostile
    assert css(browser, "#talent-list script, #talent-list img") == []
    assert browser.execute_script("return window.__xss === undefined;")

    # Posting the unavailable talent anyway is refused with the clause; nothing is catalogued.
    with _cookie_client(browser, web_server) as client:
        page = client.get("/requests/new")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        before = client.get("/api/v1/requests").json()
        form = {"csrf_token": token, "campaign": "Sneaky", "talents": talent_b,
                "channel": "social", "territory": "FR", "purpose": "advertising",
                "publish_date": "2030-01-01", "variants": "1", "lighting": "on",
                "key_azimuth": "10", "key_elevation": "30", "fill_ratio": "0.3",
                "colour_temperature": "5600", "key_intensity": "1"}
        refused = client.post("/requests/new", data=form)
        assert refused.status_code == 422
        assert "channel social not in the consent scope [print]" in refused.text
        assert client.post("/requests/new", data={**form, "csrf_token": "forged"}
                           ).status_code == 403
        assert client.get("/api/v1/requests").json() == before

    # Compliance sees the consent ending within 30 days, by the talent's name (as text).
    sign_in(browser, url, web_users["compliance"])
    expiring = browser.find_element(By.ID, "expiring-consents")
    assert hostile in expiring.text
    assert "in 19 days" in expiring.text or "in 20 days" in expiring.text
    assert css(browser, "#expiring-consents script, #expiring-consents img") == []
    assert browser.execute_script("return window.__xss === undefined;")
    _no_serious_violations(browser, "dashboard (compliance)")
    screenshot(browser, "09-dashboard-compliance")
    # Reviewers and compliance do not get the form.
    browser.get(f"{url}/requests/new")
    assert "needs the role requester" in browser.find_element(By.TAG_NAME, "main").text
