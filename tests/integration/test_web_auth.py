"""Who may call what: every route x every role and anonymous (a route missing from ROLES fails),
bearer tokens (revoked, expired, disabled users), the browser session cookie (HttpOnly,
SameSite=Lax, Secure over TLS, CSRF on changes, expiry, a key shared by every server on the data
dir, sign-out ending the session everywhere), sign-in rate limiting, and no password, token or
session key in the logs."""

from __future__ import annotations

import logging
import os
import uuid

import pytest
import sqlalchemy as sa

from tests.plugins.request import request_doc
from tests.plugins.web import PASSWORD, completed_request

PUBLIC = "public"
ANY = frozenset({"requester", "reviewer", "compliance", "admin"})
READERS = frozenset({"requester", "reviewer", "compliance"})

# (method, path) -> the roles allowed (PUBLIC: no sign-in needed): the API's role table.
ROLES: dict[tuple[str, str], frozenset[str] | str] = {
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("POST", "/api/v1/session"): PUBLIC,
    ("GET", "/api/v1/session"): ANY,
    ("DELETE", "/api/v1/session"): ANY,
    ("GET", "/api/v1/users"): frozenset({"admin"}),
    ("POST", "/api/v1/requests"): frozenset({"requester"}),
    ("GET", "/api/v1/requests"): READERS,
    ("GET", "/api/v1/requests/{request_id}"): READERS,
    ("POST", "/api/v1/requests/{request_id}/approve"): frozenset({"reviewer"}),
    ("POST", "/api/v1/requests/{request_id}/reject"): frozenset({"reviewer"}),
    ("POST", "/api/v1/requests/{request_id}/close"): frozenset({"reviewer"}),
    ("GET", "/api/v1/assets/{asset_id}"): ANY,
    ("GET", "/api/v1/assets/{asset_id}/file"): READERS,
    ("GET", "/api/v1/assets/{asset_id}/thumbnail"): READERS,
    ("POST", "/api/v1/assets/{asset_id}/placements"): frozenset({"reviewer", "compliance"}),
    ("GET", "/api/v1/assets/{asset_id}/placements"): READERS,
    ("GET", "/api/v1/takedowns"): frozenset({"compliance"}),
    ("POST", "/api/v1/takedowns/{takedown_id}/done"): frozenset({"compliance"}),
    ("GET", "/api/v1/talents"): frozenset({"requester", "compliance"}),
    ("GET", "/api/v1/talents/{talent_id}"): frozenset({"compliance"}),
    ("POST", "/api/v1/consents/{consent_id}/revoke"): frozenset({"compliance"}),
    ("GET", "/api/v1/consents/{consent_id}/release-document"): frozenset({"compliance"}),
    ("GET", "/api/v1/audit"): frozenset({"compliance"}),
    ("POST", "/api/v1/audit"): frozenset({"compliance"}),
    # Single sign-on: browser redirects to and from the identity provider (404 when off).
    ("GET", "/sso/login"): PUBLIC,
    ("GET", "/sso/callback"): PUBLIC,
}

# What the right role gets with the bodies below on a completed request: reads and dry runs
# succeed; decisions on a request that no longer awaits approval are refused as conflicts (409,
# past authorisation); an empty request document and a javascript: placement URL are invalid
# (422); an unknown takedown is not found (404).
EXPECTED_OK = {
    ("POST", "/api/v1/assets/{asset_id}/placements"): 422,
    ("POST", "/api/v1/takedowns/{takedown_id}/done"): 404,
    ("POST", "/api/v1/requests"): 422,
    ("POST", "/api/v1/requests/{request_id}/approve"): 409,
    ("POST", "/api/v1/requests/{request_id}/reject"): 409,
    ("POST", "/api/v1/requests/{request_id}/close"): 409,
    ("POST", "/api/v1/audit"): 202,
    ("DELETE", "/api/v1/session"): 204,
}


def app_routes(app) -> set[tuple[str, str]]:
    """Every (method, path) the app answers outside the pages (their own table is in
    test_web_pages_roles.py): its OpenAPI operations and every route of every included router,
    hidden from the OpenAPI document or not."""
    from castkeep.flows.web.pages import routers

    found = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}

    def walk(routes, prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)  # an included router
            if inner is not None:
                walk(inner.routes, prefix + route.include_context.prefix)
                continue
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD" and getattr(route, "path", None):
                    found.add((method, prefix + route.path))

    walk(app.routes, "")
    pages = {(method, route.path) for router in routers() for route in router.routes
             for method in route.methods if method != "HEAD"}
    return found - pages


def test_every_route_has_a_role_entry(web_server):
    routes = app_routes(web_server.app)
    assert routes - set(ROLES) == set(), "routes without an entry in ROLES"
    assert set(ROLES) - routes == set(), "ROLES names routes the app does not have"


def test_route_role_table(web_server, web_users, request_env):
    doc = completed_request(web_server, web_users["requester"].token, request_doc(variants=1))
    ids = {"request_id": doc["id"], "asset_id": doc["assets"][0]["id"],
           "talent_id": request_env.talent_ids["demo-talent-a"],
           "consent_id": next(iter(request_env.consent_ids.values())),
           "takedown_id": str(uuid.uuid4())}
    bodies = {
        ("POST", "/api/v1/requests"): {},
        ("POST", "/api/v1/requests/{request_id}/approve"): {"assets": [ids["asset_id"]],
                                                            "comment": "ok"},
        ("POST", "/api/v1/requests/{request_id}/reject"): {"assets": [ids["asset_id"]],
                                                           "comment": "no"},
        ("POST", "/api/v1/requests/{request_id}/close"): {"comment": "done"},
        ("POST", "/api/v1/consents/{consent_id}/revoke"): {"reason": "table", "dry_run": True},
        ("POST", "/api/v1/assets/{asset_id}/placements"): {"channel": "social",
                                                          "url": "javascript:alert(1)"},
        ("POST", "/api/v1/takedowns/{takedown_id}/done"): {"note": "table"},
    }
    # An audit report exists before GET /audit is called by the right role.
    with web_server.client(web_users["compliance"].token) as client:
        assert client.post("/api/v1/audit").status_code == 202
        for future in list(web_server.app.state.castkeep.jobs.futures.values()):
            future.result(timeout=600)

    for (method, template), allowed in sorted(ROLES.items()):
        if allowed == PUBLIC:
            continue
        path = template.format(**ids)
        body = bodies.get((method, template))
        with web_server.client() as anonymous:
            answer = anonymous.request(method, path, json=body)
            assert answer.status_code == 401, (method, template, "anonymous", answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
        for role in sorted(ANY):
            with web_server.client(web_users[role].token) as client:
                answer = client.request(method, path, json=body)
            if role in allowed:
                want = EXPECTED_OK.get((method, template), 200)
                assert answer.status_code == want, (method, template, role, answer.text)
            else:
                assert answer.status_code == 403, (method, template, role, answer.text)
                assert answer.json()["status"] == 403
    # The dry runs changed nothing.
    with web_server.client(web_users["compliance"].token) as client:
        assert client.get(f"/api/v1/assets/{ids['asset_id']}").json()["status"] == "published"


def _db():
    return sa.create_engine(os.environ["CASTKEEP_DATABASE__URL"])


def test_revoked_expired_and_disabled_tokens_are_refused(web_server, web_users, request_env):
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.accounts import create_token, disable_user, revoke_token

    with open_runtime() as runtime:
        revoked = create_token(runtime, "reviewer", actor="tests")
        expiring = create_token(runtime, "reviewer", expires_days=1, actor="tests")
        with web_server.client(revoked["token"]) as c:
            assert c.get("/api/v1/session").json()["username"] == "reviewer"
        revoke_token(runtime, revoked["id"], actor="tests")
    engine = _db()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_token SET expires_at = now() - interval '1 second' "
                             "WHERE id = :id"), {"id": expiring["id"]})
    engine.dispose()
    for header in (f"Bearer {revoked['token']}", f"Bearer {expiring['token']}",
                   "Bearer ck_not-a-token", f"Basic {web_users['reviewer'].token}"):
        with web_server.client() as c:
            answer = c.get("/api/v1/session", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert answer.headers["content-type"].startswith("application/problem+json")
    with web_server.client(web_users["admin"].token) as c:
        assert c.get("/api/v1/session").status_code == 200
    with open_runtime() as runtime:
        disable_user(runtime, "admin", actor="tests")
    with web_server.client(web_users["admin"].token) as c:
        assert c.get("/api/v1/session").status_code == 401


def test_session_cookie_csrf_rate_limit_and_no_secrets_in_logs(web_server, web_users, caplog):
    caplog.set_level(logging.DEBUG)
    with web_server.client() as browser:
        signed_in = browser.post("/api/v1/session",
                                 json={"username": "reviewer", "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["roles"] == ["reviewer"]
        csrf = signed_in.json()["csrf_token"]
        cookie = signed_in.headers["set-cookie"]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "samesite", "path", "max-age"} <= attributes
        assert "samesite=lax" in cookie.lower() and "secure" not in attributes  # plain HTTP here
        assert browser.get("/api/v1/session").json()["username"] == "reviewer"
        # A change signed in by cookie needs the CSRF header.
        no_csrf = browser.delete("/api/v1/session")
        assert no_csrf.status_code == 403 and "X-CSRF-Token" in no_csrf.json()["detail"]
        wrong = browser.delete("/api/v1/session", headers={"X-CSRF-Token": csrf + "x"})
        assert wrong.status_code == 403
        out = browser.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert browser.get("/api/v1/session").status_code == 401
        # A forged cookie is no session.
        browser.cookies.set("castkeep_session", "eyJ1IjoiYWRtaW4ifQ.00", domain="127.0.0.1")
        assert browser.get("/api/v1/session").status_code == 401

    with web_server.client() as attacker:
        for _ in range(5):
            bad = attacker.post("/api/v1/session",
                                json={"username": "compliance", "password": "guess-" + PASSWORD})
            assert bad.status_code == 401
        limited = attacker.post("/api/v1/session",
                                json={"username": "compliance", "password": PASSWORD})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        # Another username from the same address is not limited.
        assert attacker.post("/api/v1/session", json={"username": "requester",
                                                      "password": PASSWORD}).status_code == 200
        # An invalid body is refused without echoing the password.
        invalid = attacker.post("/api/v1/session", json={"username": "x", "password": PASSWORD,
                                                         "extra": 1})
        assert invalid.status_code == 422 and PASSWORD not in invalid.text
    assert PASSWORD not in caplog.text
    for user in web_users.values():
        assert user.token not in caplog.text


def _sign_in(client, username: str) -> tuple[str, str]:
    """(session cookie value, csrf token) of a password sign-in."""
    answer = client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.cookies["castkeep_session"], answer.json()["csrf_token"]


def test_sessions_work_across_servers_and_sign_out_ends_them_everywhere(
        web_server, web_users, serve_app, caplog):
    from castkeep.flows.settings import get_settings
    from castkeep.flows.web import create_app
    from castkeep.flows.web.auth import SESSION_KEY_FILE, SessionCodec

    caplog.set_level(logging.DEBUG)
    settings = get_settings()
    other = serve_app(create_app(settings))  # a second server process on the same data dir
    key_file = settings.home / "keys" / SESSION_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = bytes.fromhex(key_file.read_text().strip())

    with web_server.client() as browser:
        cookie, csrf = _sign_in(browser, "reviewer")
    kept = {"castkeep_session": cookie}
    with other.client(cookies=kept) as browser:
        assert browser.get("/api/v1/session").json()["username"] == "reviewer"
    # Signed with another key: no session, whatever it claims.
    forged, _ = SessionCodec(minutes=5).issue("admin")
    with web_server.client(cookies={"castkeep_session": forged}) as browser:
        assert browser.get("/api/v1/session").status_code == 401
    # Signed with the right key but past its expiry: no session either.
    expired, _ = SessionCodec(minutes=-1, key=key).issue("reviewer")
    with web_server.client(cookies={"castkeep_session": expired}) as browser:
        answer = browser.get("/api/v1/session")
        assert answer.status_code == 401 and "sign in again" in answer.json()["detail"]
    fresh, _ = SessionCodec(minutes=5, key=key).issue("reviewer")
    with web_server.client(cookies={"castkeep_session": fresh}) as browser:
        assert browser.get("/api/v1/session").status_code == 200  # the key is the one in use

    # Signing out on one server ends the session on both, even for a client that kept the cookie.
    with other.client(cookies=kept) as browser:
        assert browser.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    for server in (web_server, other):
        with server.client(cookies=kept) as replay:
            assert replay.get("/api/v1/session").status_code == 401
    engine = _db()
    with engine.connect() as conn:
        events = conn.execute(sa.text(
            "SELECT kind, actor FROM audit_event WHERE entity_type = 'web_session' AND "
            "entity_id = :sid ORDER BY seq"),
            {"sid": SessionCodec(minutes=5, key=key).read(cookie)["s"]}).all()
    engine.dispose()
    assert [tuple(e) for e in events] == [("session.started", "reviewer"),
                                          ("session.ended", "reviewer")]
    assert key.hex() not in caplog.text


def test_session_cookie_is_secure_over_tls_and_lasts_the_configured_minutes(
        request_env, web_users, serve_app, tls_files):
    from castkeep.flows.settings import get_settings
    from castkeep.flows.web import create_app

    cert, key = tls_files
    base = get_settings()
    settings = base.model_copy(update={"web": base.web.model_copy(update={
        "tls_cert": cert, "tls_key": key, "session_minutes": 7})})
    server = serve_app(create_app(settings), ssl_certfile=str(cert), ssl_keyfile=str(key))
    assert server.url.startswith("https://")
    with server.client(verify=str(cert)) as browser:
        answer = browser.post("/api/v1/session",
                              json={"username": "compliance", "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        attributes = {part.strip().split("=")[0].lower(): part.strip()
                      for part in answer.headers["set-cookie"].split(";")}
        assert "secure" in attributes and "httponly" in attributes
        assert attributes["max-age"].lower() == "max-age=420"
        assert browser.get("/api/v1/session").json()["username"] == "compliance"


def test_session_key_comes_from_the_secret_or_one_file(tmp_path):
    from castkeep.errors import ConfigurationError
    from castkeep.flows.settings import Settings, WebSettings
    from castkeep.flows.web.auth import SESSION_KEY_FILE, session_key

    from_file = session_key(Settings(home=tmp_path))
    path = tmp_path / "keys" / SESSION_KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert session_key(Settings(home=tmp_path)) == from_file  # a restart reads the same key
    assert session_key(Settings(home=tmp_path / "other")) != from_file
    secret = "x" * 40
    configured = session_key(Settings(home=tmp_path / "s", web=WebSettings(session_secret=secret)))
    assert configured == session_key(Settings(home=tmp_path / "t",
                                              web=WebSettings(session_secret=secret)))
    assert configured != from_file and not (tmp_path / "s" / "keys").exists()
    with pytest.raises(ConfigurationError, match="at least 32"):
        session_key(Settings(home=tmp_path, web=WebSettings(session_secret="short")))
    path.write_text("not hex\n")
    with pytest.raises(ConfigurationError, match="CASTKEEP_WEB__SESSION_SECRET"):
        session_key(Settings(home=tmp_path))
