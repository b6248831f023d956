"""The asset page in a real headless Chromium: the image (thumbnail, full size on click), status,
the Content Credentials panel of the stored file, lineage by name, history with the reviewer's
comment, a download button only for what the viewer may download, names rendered as text, and
no serious or critical axe-core violations. Screenshots: asset-published, asset-candidate."""

from __future__ import annotations

import httpx

from tests.plugins.browser import HOSTILE, axe_violations, css, sign_in, wait_for
from tests.plugins.db import catalogue_sql
from tests.plugins.request import request_doc


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
    catalogue_sql("UPDATE talent SET display_name = :n WHERE external_ref = 'demo-talent-a'", n=HOSTILE)

    sign_in(browser, url, web_users["requester"])
    browser.get(f"{url}/assets/{chosen}")
    assert browser.find_element("id", "asset").get_attribute("data-status") == "published"
    assert css(browser, "#asset-status [data-status=published]")
    # Content Credentials: the stored file verifies against the deployment's trust anchor.
    assert css(browser, "#content-credentials [data-state=Trusted]")
    panel = _text(browser, "#content-credentials")
    assert "Signer\n—" not in panel and "AI source type" in panel
    assert "edited" in panel or "created" in panel, panel
    # Lineage by name (the hostile name as text, no element made from it), with the reference.
    lineage = _text(browser, "#lineage")
    assert HOSTILE in lineage
    assert browser.execute_script("return window.__xss === undefined;")
    assert not css(browser, "img[src=x]")
    assert css(browser, "#lineage img[src^='/references/']")
    # History: the reviewer's decision with the comment, newest first.
    rows = [r.text for r in css(browser, "#history tbody tr")]
    assert any("reviewer" in r and "Warm light, approved" in r for r in rows), rows
    # The thumbnail loads; a click opens the full-size file.
    wait_for(browser, lambda d: d.execute_script(
        "const i = document.querySelector('.asset-image__open img');"
        "return i.complete && i.naturalWidth > 0 && i.naturalWidth <= 256;"),
        what="the thumbnail")
    download = browser.find_element("id", "asset-download")
    assert download.get_attribute("href").endswith(f"/api/v1/assets/{chosen}/file")
    found = axe_violations(browser)
    assert found == [], found
    screenshot(browser, "asset-published")
    browser.find_element("css selector", ".asset-image__open").click()
    wait_for(browser, lambda d: d.current_url.endswith(f"/assets/{chosen}/image")
          and d.execute_script("const i = document.images[0];"
                               "return i && i.complete && i.naturalWidth > 256;"),
          what="the full-size image")

    # A candidate: a requester may not download it, so there is no button.
    browser.get(f"{url}/assets/{other}")
    assert browser.find_element("id", "asset").get_attribute("data-status") == "candidate"
    assert not css(browser, "#asset-download")
    assert css(browser, "#asset-no-download")
    screenshot(browser, "asset-candidate")

    # Reviewers may download candidates (the API serves it to them): the button is there.
    sign_in(browser, url, web_users["reviewer"])
    browser.get(f"{url}/assets/{other}")
    assert css(browser, "#asset-download")


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
