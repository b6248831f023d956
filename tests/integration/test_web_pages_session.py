"""The page foundation (flows/web/pages/session.py and common.py) over real HTTP: anonymous
visitors are sent to sign-in with a local `next` only, the sign-in form sets the API's session
cookie (same limiter), sign-out needs the CSRF token, and errors are pages off the API but
problem documents under it. Then the same in the real browser: sign-in page, dashboard, axe."""

from __future__ import annotations

import re

import pytest

from tests.plugins.browser import axe_violations, sign_in
from tests.plugins.web import PASSWORD


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "no csrf-token meta on the page"
    return found.group(1)


def _login(client, username: str, password: str = PASSWORD, next_path: str = "/"):
    return client.post("/login", data={"username": username, "password": password,
                                       "next": next_path})


def test_sign_in_sign_out_and_error_pages(web_server, web_users):
    with web_server.client(follow_redirects=False) as client:
        # Anonymous: pages redirect to sign-in with the path; the API still answers 401 JSON.
        answer = client.get("/logout?x=1")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=/logout%3Fx%3D1"
        api = client.get("/api/v1/session")
        assert api.status_code == 401
        assert api.headers["content-type"].startswith("application/problem+json")

        login = client.get("/login?next=/logout")
        assert login.status_code == 200 and 'name="username"' in login.text
        assert 'name="password"' in login.text and 'value="/logout"' in login.text
        assert "/sso/login" not in login.text  # no OIDC configured in tests

        # Only local paths are returned to after sign-in.
        for hostile in ("//evil.example/x", "https://evil.example/", "/\\evil.example",
                        "javascript:alert(1)"):
            answer = _login(client, "requester", next_path=hostile)
            assert answer.status_code == 303, hostile
            assert answer.headers["location"] == "/", hostile
            client.cookies.clear()

        # Pages carry a strict content security policy and are not framed.
        policy = login.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert login.headers["x-frame-options"] == "DENY"
        # A sign-in posted from another site is refused (login CSRF); this site's is accepted.
        forged = client.post("/login", data={"username": "requester", "password": PASSWORD},
                             headers={"Origin": "https://evil.example"})
        assert forged.status_code == 403 and "castkeep_session" not in forged.headers.get(
            "set-cookie", "")
        own = client.post("/login", data={"username": "requester", "password": PASSWORD},
                          headers={"Origin": web_server.url})
        assert own.status_code == 303
        client.cookies.clear()

        wrong = _login(client, "requester", password="not-the-password")
        assert wrong.status_code == 401
        assert "Wrong username or password" in wrong.text
        assert "castkeep_session" not in wrong.headers.get("set-cookie", "")

        answer = _login(client, "requester", next_path="/logout")
        assert answer.status_code == 303 and answer.headers["location"] == "/logout"
        cookie = answer.headers["set-cookie"]
        assert "castkeep_session=" in cookie and "HttpOnly" in cookie
        assert "samesite=lax" in cookie.lower()

        # The same cookie signs in the JSON API, and the page's CSRF token works there too.
        assert client.get("/api/v1/session").json()["username"] == "requester"
        home = client.get("/")
        assert home.status_code == 200 and ">requester<" in home.text
        token = _csrf(home.text)
        assert f'name="csrf_token" value="{token}"' in home.text

        # Error pages off the API, problem documents under it.
        missing = client.get("/no/such/page")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert "There is no page at this address." in missing.text
        api_missing = client.get("/api/v1/no/such/thing")
        assert api_missing.status_code == 404
        assert api_missing.headers["content-type"].startswith("application/problem+json")

        # Sign-out: a GET only asks; a POST without the token is refused; with it, signed out.
        confirm = client.get("/logout")
        assert confirm.status_code == 200 and 'action="/logout"' in confirm.text
        assert client.get("/api/v1/session").status_code == 200
        refused = client.post("/logout", data={"csrf_token": "forged"})
        assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
        assert client.get("/api/v1/session").status_code == 200
        kept = client.cookies.get("castkeep_session")
        done = client.post("/logout", data={"csrf_token": token})
        assert done.status_code == 303 and done.headers["location"] == "/login"
        # The session ended server side: a copy of the cookie kept from before is refused too.
        with web_server.client(follow_redirects=False) as replay:
            replay.cookies.set("castkeep_session", kept)
            assert replay.get("/api/v1/session").status_code == 401
            assert replay.get("/").status_code == 303
        client.cookies.clear()
        client.cookies.update({k: v for k, v in done.cookies.items()})
        assert client.get("/", follow_redirects=False).status_code == 303


def test_sso_button_only_when_configured(web_server):
    state = web_server.app.state.castkeep
    original = state.settings
    with web_server.client(follow_redirects=False) as client:
        assert "Sign in with SSO" not in client.get("/login").text
        oidc = original.web.oidc.model_copy(update={"issuer": "https://idp.example"})
        state.settings = original.model_copy(
            update={"web": original.web.model_copy(update={"oidc": oidc})})
        try:
            page = client.get("/login?next=/requests/new")
        finally:
            state.settings = original
    assert 'href="/sso/login?next=/requests/new"' in page.text
    assert "Sign in with SSO" in page.text


def test_sign_in_form_is_rate_limited(web_server, web_users):
    limiter = web_server.app.state.castkeep.limiter
    with web_server.client(follow_redirects=False) as client:
        for _ in range(limiter.attempts):
            assert _login(client, "reviewer", password="wrong").status_code == 401
        # Even the right password waits now: the limiter is the API's, per name and address.
        blocked = _login(client, "reviewer")
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in blocked.text
        assert client.post("/api/v1/session", json={"username": "reviewer",
                                                    "password": PASSWORD}).status_code == 429


@pytest.mark.parametrize("role", ["requester", "reviewer", "compliance"])
def test_nav_per_role(web_server, web_users, role):
    with web_server.client(follow_redirects=False) as client:
        assert _login(client, role).status_code == 303
        html = client.get("/").text
    nav = html.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]
    assert ('href="/requests/new"' in nav) == (role == "requester")
    assert ('href="/talents"' in nav) == (role == "compliance")
    assert ('href="/audit"' in nav) == (role == "compliance")
    assert 'href="/"' in nav


def test_sign_in_in_the_browser(browser, web_server, web_users, screenshot):
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{web_server.url}/logout")
    assert "/login?next=/logout" in browser.current_url
    assert browser.find_element(By.CSS_SELECTOR, "label[for=username]").text == "Username"
    assert axe_violations(browser) == []
    screenshot(browser, "login")

    sign_in(browser, web_server.url, web_users["requester"])
    assert browser.find_element(By.CSS_SELECTOR, "main h1").text == "Dashboard"
    skip = browser.find_element(By.CSS_SELECTOR, "a.skip-link")
    assert skip.get_attribute("href").endswith("#main")
    assert axe_violations(browser) == []
    screenshot(browser, "dashboard-requester")
