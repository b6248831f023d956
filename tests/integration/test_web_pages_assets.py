"""The asset page in a real headless Chromium: the image (thumbnail, full size on click), status,
the Content Credentials panel of the stored file, lineage by name, history with the reviewer's
comment, a download button only for what the viewer may download, names rendered as text, and
no serious or critical axe-core violations. Screenshots: asset-published, asset-candidate."""

from __future__ import annotations

import os

import httpx
import sqlalchemy as sa

from tests.plugins.browser import axe_violations, sign_in
from tests.plugins.request import request_doc

HOSTILE = "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">"


def _sql(statement: str, **params):
    engine = sa.create_engine(os.environ["CASTKEEP_DATABASE__URL"])  # the test's catalogue
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


def _wait(driver, condition, timeout: float = 30, what: str = "the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        condition, message=f"timed out waiting for {what}")


def _css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _text(driver, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector).text


def test_asset_page(browser, web_server, web_users, request_env, fulfil, screenshot):
    url = web_server.url
    summary = fulfil(request_doc(campaign="Terrace light", variants=2, approval_required=True))
    ids = [a["id"] for a in summary["assets"] if a["status"] == "candidate"]
    assert len(ids) == 2, summary["assets"]
    chosen, other = ids
    reviewer = {"Authorization": f"Bearer {web_users['reviewer'].token}"}
    with httpx.Client(base_url=url, timeout=60, headers=reviewer) as api:
        answer = api.post(f"/api/v1/requests/{summary['request_id']}/approve",
                          json={"assets": [chosen], "comment": "Warm light, approved"})
        assert answer.status_code == 200, answer.text
    # A talent's name is data from outside: it must stay text on the page.
    _sql("UPDATE talent SET display_name = :n WHERE external_ref = 'demo-talent-a'", n=HOSTILE)

    sign_in(browser, url, web_users["requester"])
    browser.get(f"{url}/assets/{chosen}")
    assert browser.find_element("id", "asset").get_attribute("data-status") == "published"
    assert _css(browser, "#asset-status [data-status=published]")
    # Content Credentials: the stored file verifies against the deployment's trust anchor.
    assert _css(browser, "#content-credentials [data-state=Trusted]")
    panel = _text(browser, "#content-credentials")
    assert "Signer\n—" not in panel and "AI source type" in panel
    assert "edited" in panel or "created" in panel, panel
    # Lineage by name (the hostile name as text, no element made from it), with the reference.
    lineage = _text(browser, "#lineage")
    assert HOSTILE in lineage
    assert browser.execute_script("return window.__xss === undefined;")
    assert not _css(browser, "img[src=x]")
    assert _css(browser, "#lineage img[src^='/references/']")
    # History: the reviewer's decision with the comment, newest first.
    rows = [r.text for r in _css(browser, "#history tbody tr")]
    assert any("reviewer" in r and "Warm light, approved" in r for r in rows), rows
    # The thumbnail loads; a click opens the full-size file.
    _wait(browser, lambda d: d.execute_script(
        "const i = document.querySelector('.asset-image__open img');"
        "return i.complete && i.naturalWidth > 0 && i.naturalWidth <= 256;"),
        what="the thumbnail")
    download = browser.find_element("id", "asset-download")
    assert download.get_attribute("href").endswith(f"/api/v1/assets/{chosen}/file")
    found = axe_violations(browser)
    assert found == [], found
    screenshot(browser, "asset-published")
    browser.find_element("css selector", ".asset-image__open").click()
    _wait(browser, lambda d: d.current_url.endswith(f"/assets/{chosen}/image")
          and d.execute_script("const i = document.images[0];"
                               "return i && i.complete && i.naturalWidth > 256;"),
          what="the full-size image")

    # A candidate: a requester may not download it, so there is no button.
    browser.get(f"{url}/assets/{other}")
    assert browser.find_element("id", "asset").get_attribute("data-status") == "candidate"
    assert not _css(browser, "#asset-download")
    assert _css(browser, "#asset-no-download")
    screenshot(browser, "asset-candidate")

    # Reviewers may download candidates (the API serves it to them): the button is there.
    sign_in(browser, url, web_users["reviewer"])
    browser.get(f"{url}/assets/{other}")
    assert _css(browser, "#asset-download")


def test_asset_page_ids_and_sign_in(web_server, web_users, request_env):
    from tests.plugins.web import PASSWORD

    with httpx.Client(base_url=web_server.url, timeout=60) as anonymous:
        answer = anonymous.get("/assets/00000000-0000-0000-0000-000000000000")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")
    with httpx.Client(base_url=web_server.url, timeout=60) as client:
        client.post("/login", data={"username": "requester", "password": PASSWORD})
        for path in ("/assets/00000000-0000-0000-0000-000000000000", "/assets/..%2Fetc",
                     "/assets/not-an-id/image"):
            answer = client.get(path)
            assert answer.status_code == 404, (path, answer.status_code)
            assert "text/html" in answer.headers["content-type"]
