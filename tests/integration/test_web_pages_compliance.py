"""The compliance pages in a real headless Chromium: the consent register (scope, validity, a
consent ending soon highlighted, names as text), a talent's page (reference portraits, the
assets that depict it, the release document whose read is an audit event naming the reader),
revocation (a dry run that changes nothing, a wrong confirmation refused, then the real one
quarantining the asset, whose page then shows it and refuses its download), the audit page
(run now, shown running, the report when done) and other roles refused. axe-core finds no
serious or critical violations. Screenshots: register, talent, talent-phone, register-phone, revoke-preview, talent-revoked,
asset-quarantined, audit."""

from __future__ import annotations

import contextlib

import httpx

from tests.plugins.browser import HOSTILE, axe_violations, css, sign_in, wait_for
from tests.plugins.db import catalogue_sql
from tests.plugins.request import request_doc
from tests.plugins.web import PASSWORD


def _one(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def _clean(driver, page: str) -> None:
    found = axe_violations(driver)
    assert found == [], f"{page}: {found}"
    assert driver.execute_script("return window.__xss === undefined;"), f"{page}: script ran"
    assert not css(driver, "img[src=x]"), f"{page}: markup from a name"


def _status(asset_id: str) -> str:
    return catalogue_sql("SELECT status FROM asset WHERE id = :i", i=asset_id)[0][0]


def _consent_status(consent_id: str) -> str:
    return catalogue_sql("SELECT status FROM consent WHERE id = :i", i=consent_id)[0][0]


def _place(asset_id: str, url: str) -> None:
    """Record where the asset went live (as `castkeep asset publish` does)."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.placements import publish

    with open_runtime() as runtime:
        publish(runtime, asset_id=asset_id, channel="social", url=url, territory="FR",
                actor="tests")


@contextlib.contextmanager
def _signed_in(url: str, username: str):
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.post("/login", data={"username": username, "password": PASSWORD}) \
            .status_code in (200, 303)
        yield client


def test_compliance_journey(browser, web_server, web_users, request_env, fulfil, screenshot):
    url = web_server.url
    talent_a = request_env.talent_ids["demo-talent-a"]
    talent_b = request_env.talent_ids["demo-talent-b"]
    consent_a = request_env.consent_ids["demo-talent-a"]
    summary = fulfil(request_doc(campaign="Harbour light", variants=1))
    asset = summary["assets"][0]["id"]
    assert _status(asset) == "published", summary
    _place(asset, "https://social.example/harbour-light")
    # Talent B's name is hostile data; its consent ends in 10 days.
    catalogue_sql("UPDATE talent SET display_name = :n WHERE id = :t", n=HOSTILE, t=talent_b)
    catalogue_sql("UPDATE consent SET valid_until = now() + interval '10 days' WHERE talent_id = :t",
         t=talent_b)

    # The register: every talent, scope and validity; B's consent highlighted as ending soon.
    sign_in(browser, url, web_users["compliance"])
    browser.get(f"{url}/talents")
    row_a = _one(browser, f"tr[data-consent-id='{consent_a}']")
    assert row_a.find_element("css selector", "[data-consent-state]") \
        .get_attribute("data-consent-state") == "valid"
    assert "social" in row_a.text and "FR" in row_a.text and "advertising" in row_a.text
    row_b = _one(browser, f"tr[data-talent-id='{talent_b}']")
    assert "consent-row--expiring" in row_b.get_attribute("class")
    assert "Ends in 9 days" in row_b.text or "Ends in 10 days" in row_b.text, row_b.text
    assert HOSTILE in row_b.text
    _clean(browser, "register")
    screenshot(browser, "register")

    # A talent: references from the catalogue, the asset with its status, the release document.
    browser.get(f"{url}/talents/{talent_a}")
    wait_for(browser, lambda d: d.execute_script(
        "const i = Array.from(document.querySelectorAll('#references img'));"
        "return i.length > 0 && i.every(x => x.complete && x.naturalWidth > 0);"),
        what="the reference thumbnails")
    assert len(css(browser, "#references [data-role=reference]")) == 2  # obama.jpg, obama2.jpg
    assert _one(browser, f"#talent-assets tr[data-asset-id='{asset}']") \
        .get_attribute("data-status") == "published"
    link = _one(browser, f"[data-consent-id='{consent_a}'] [data-role=release-document]")
    _clean(browser, "talent")
    screenshot(browser, "talent")
    # On a phone: nothing wider than the screen (tables scroll inside their card).
    browser.set_window_size(390, 800)
    try:
        for path, name in ((f"/talents/{talent_a}", "talent-phone"), ("/talents", "register-phone")):
            browser.get(url + path)
            # The resize settles asynchronously in headless Chromium: give layout a moment.
            wait_for(browser, lambda d: d.execute_script(
                "return window.innerWidth <= 400 && "
                "document.documentElement.scrollWidth <= window.innerWidth;"),
                timeout=10, what=f"{name} to fit a 390 px screen")
            screenshot(browser, name)
    finally:
        browser.set_window_size(1280, 800)
    browser.get(f"{url}/talents/{talent_a}")
    link = _one(browser, f"[data-consent-id='{consent_a}'] [data-role=release-document]")
    reads_before = catalogue_sql("SELECT count(*) FROM audit_event WHERE kind = "
                        "'consent.release_document_read'")[0][0]
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    with httpx.Client(base_url=url, cookies=cookies, timeout=60) as client:
        document = client.get(link.get_attribute("href"))
    assert document.status_code == 200 and document.content
    assert document.headers["cache-control"] == "no-store"
    reads = catalogue_sql("SELECT actor, entity_id FROM audit_event WHERE kind = "
                 "'consent.release_document_read' ORDER BY seq")
    assert len(reads) == reads_before + 1 and tuple(reads[-1]) == ("compliance", consent_a)

    # Dry run: the preview lists the asset; nothing changes.
    _one(browser, f"#reason-{consent_a}").send_keys("Talent withdrew consent by letter")
    _one(browser, f"[data-consent-id='{consent_a}'] [data-action=preview-revoke]").click()
    wait_for(browser, lambda d: d.current_url.endswith(f"/consents/{consent_a}/revoke"),
          what="the revocation preview")
    listed = [e.get_attribute("data-asset-id") for e in css(browser, "#would-quarantine li")]
    assert listed == [asset]
    takedowns = [r.text for r in css(browser, "#would-take-down tbody tr")]
    assert len(takedowns) == 1 and "https://social.example/harbour-light" in takedowns[0]
    assert _one(browser, "#reason").get_attribute("value") == "Talent withdrew consent by letter"
    assert _status(asset) == "published" and _consent_status(consent_a) == "active"
    _clean(browser, "revoke preview")
    screenshot(browser, "revoke-preview")

    # A wrong confirmation is refused and changes nothing.
    _one(browser, "#confirm_ref").send_keys("demo-talent-b")
    _one(browser, "[data-action=revoke]").click()
    wait_for(browser, lambda d: css(d, "#revoke-error"), what="the refusal")
    assert "did not match" in _one(browser, "#revoke-error").text
    assert _status(asset) == "published" and _consent_status(consent_a) == "active"

    # The real revocation: the consent is revoked, the asset quarantined.
    _one(browser, "#confirm_ref").send_keys("demo-talent-a")
    _one(browser, "[data-action=revoke]").click()
    wait_for(browser, lambda d: css(d, "#revoked-message"), what="the talent page after revoking")
    assert _consent_status(consent_a) == "revoked" and _status(asset) == "quarantined"
    assert _one(browser, f"#talent-assets tr[data-asset-id='{asset}']") \
        .get_attribute("data-status") == "quarantined"
    revoked = catalogue_sql("SELECT actor FROM audit_event WHERE kind = 'consent.revoked' "
                   "AND entity_id = :c", c=consent_a)
    assert [tuple(r) for r in revoked] == [("compliance",)]
    ended = _one(browser, f"[data-consent-id='{consent_a}'] .consent__ended").text
    assert "by compliance: Talent withdrew consent by letter" in ended, ended
    screenshot(browser, "talent-revoked")

    browser.get(f"{url}/assets/{asset}")
    assert _one(browser, "#asset").get_attribute("data-status") == "quarantined"
    assert css(browser, "#asset-withdrawn") and not css(browser, "#asset-download")
    _clean(browser, "asset (quarantined)")
    screenshot(browser, "asset-quarantined")
    with httpx.Client(base_url=url, cookies=cookies, timeout=60) as client:
        assert client.get(f"/api/v1/assets/{asset}/file").status_code == 410
        assert client.get(f"/assets/{asset}/image").status_code == 410

    # The audit page: run now; it shows running, then the report (the hash chain and the
    # quarantined asset checked) without a manual reload.
    browser.get(f"{url}/audit")
    assert _one(browser, "#audit-report").text.endswith("Use \"Run audit now\".")
    expiring = [e.get_attribute("data-consent-id") for e in css(browser, "#expiring-consents tr[data-consent-id]")]
    assert expiring == [request_env.consent_ids["demo-talent-b"]]
    _one(browser, "#run-audit").click()
    wait_for(browser, lambda d: css(d, "#audit-report [data-result]"), timeout=180,
          what="the audit report")
    assert _one(browser, "#audit").get_attribute("data-job-state") == "done"
    assert "assets and" in _one(browser, "#audit-report").text
    completed = catalogue_sql("SELECT actor FROM audit_event WHERE kind = 'audit.completed'")
    assert [tuple(r) for r in completed] == [("compliance",)]
    _clean(browser, "audit")
    screenshot(browser, "audit")


def test_other_roles_and_forged_forms(web_server, web_users, request_env):
    url = web_server.url
    consent_a = request_env.consent_ids["demo-talent-a"]
    talent_a = request_env.talent_ids["demo-talent-a"]
    with _signed_in(url, "requester") as requester:
        for path in ("/talents", f"/talents/{talent_a}", "/audit",
                     f"/consents/{consent_a}/revoke"):
            answer = requester.get(path)
            assert answer.status_code == 403, path
            assert "text/html" in answer.headers["content-type"] and "compliance" in answer.text
        assert requester.post("/audit/run", data={}).status_code == 403
        assert requester.get(f"/api/v1/consents/{consent_a}/release-document") \
            .status_code == 403
    with _signed_in(url, "compliance") as officer:
        # A form without the session's CSRF token (as another site would post it) is refused.
        forged = officer.post(f"/consents/{consent_a}/revoke", data={
            "step": "confirm", "reason": "forged", "confirm_ref": "demo-talent-a"})
        assert forged.status_code == 403
        assert officer.post("/audit/run", data={"csrf_token": "forged"}).status_code == 403
        assert _consent_status(consent_a) == "active"
        assert getattr(web_server.app.state, "page_audit_jobs", []) == [], "an audit started"
        assert officer.get("/talents/not-an-id").status_code == 404
        assert officer.get("/consents/00000000-0000-0000-0000-000000000000/revoke") \
            .status_code == 404
