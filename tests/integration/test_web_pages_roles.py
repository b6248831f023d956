"""Who may open which page (flows/web/pages/common.py: signed_in, page_role, CSRF): every page
route x every role and anonymous, table-driven (a page route missing from PAGE_ROLES fails).
Anonymous visitors are sent to sign-in; a signed-in user without the role gets a 403 page; a
form POST without the session's CSRF token is refused before anything happens."""

from __future__ import annotations

import uuid

from tests.plugins.web import PASSWORD

PUBLIC = "public"
ANY = frozenset({"requester", "reviewer", "compliance", "admin"})
READERS = frozenset({"requester", "reviewer", "compliance"})
COMPLIANCE = frozenset({"compliance"})

# (method, path) -> the roles allowed (PUBLIC: no sign-in needed): the pages' role table.
PAGE_ROLES: dict[tuple[str, str], frozenset[str] | str] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/logout"): ANY,
    ("POST", "/logout"): ANY,
    ("GET", "/"): ANY,
    ("GET", "/requests/new"): frozenset({"requester"}),
    ("POST", "/requests/new"): frozenset({"requester"}),
    ("GET", "/requests/new/talents"): frozenset({"requester"}),
    ("GET", "/requests/{request_id}"): READERS,
    ("GET", "/requests/{request_id}/gallery"): READERS,
    ("GET", "/requests/{request_id}/images/{asset_id}"): READERS,
    ("GET", "/requests/{request_id}/download.zip"): READERS,
    ("GET", "/references/{reference_id}/thumbnail"): READERS,
    ("GET", "/assets/{asset_id}"): READERS,
    ("GET", "/assets/{asset_id}/image"): READERS,
    ("GET", "/talents"): COMPLIANCE,
    ("GET", "/talents/{talent_id}"): COMPLIANCE,
    ("GET", "/consents/{consent_id}/revoke"): COMPLIANCE,
    ("POST", "/consents/{consent_id}/revoke"): COMPLIANCE,
    ("GET", "/audit"): COMPLIANCE,
    ("POST", "/audit/run"): COMPLIANCE,
    ("GET", "/audit/status"): COMPLIANCE,
}


def page_routes() -> set[tuple[str, str]]:
    from castkeep.flows.web.pages import routers

    return {(method, route.path) for router in routers() for route in router.routes
            for method in route.methods if method != "HEAD"}


def test_every_page_route_has_a_role_entry(web_server):
    routes = page_routes()
    assert routes - set(PAGE_ROLES) == set(), "page routes without an entry in PAGE_ROLES"
    assert set(PAGE_ROLES) - routes == set(), "PAGE_ROLES names routes the app does not have"


def _signed_in(server, username: str):
    client = server.client(follow_redirects=False)
    answer = client.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return client


def test_page_role_table(web_server, web_users):
    # Unknown ids: an allowed role gets past the role check to a 404 page (or a 400 for an
    # empty download), a role without access never gets that far.
    ids = {name: str(uuid.uuid4()) for name in ("request_id", "asset_id", "reference_id",
                                                 "talent_id", "consent_id")}
    clients = {role: _signed_in(web_server, role) for role in sorted(ANY)}
    try:
        with web_server.client(follow_redirects=False) as anonymous:
            for (method, template), allowed in sorted(PAGE_ROLES.items()):
                if allowed == PUBLIC:
                    continue
                path = template.format(**ids)
                body = {"probe": "1"} if method == "POST" else None
                answer = anonymous.request(method, path, data=body)
                assert answer.status_code == 303, (method, template, "anonymous")
                assert answer.headers["location"].startswith("/login?next=/")
                for role, client in clients.items():
                    answer = client.request(method, path, data=body)
                    where = (method, template, role, answer.status_code)
                    assert answer.status_code < 500, where
                    if role in allowed:
                        assert "needs the role" not in answer.text, where
                        if method == "POST":  # no CSRF token sent: refused as such
                            assert answer.status_code == 403, where
                            assert "came from another site" in answer.text, where
                    else:
                        assert answer.status_code == 403, where
                        assert "needs the role" in answer.text, where
                        assert answer.headers["content-type"].startswith("text/html"), where
    finally:
        for client in clients.values():
            client.close()


def test_hostile_ids_and_paths_are_pages_not_errors(web_server, web_users):
    client = _signed_in(web_server, "reviewer")
    try:
        for path in ("/requests/not-a-uuid", "/requests/../../etc/passwd",
                     "/references/%2e%2e%2fsecret/thumbnail",
                     f"/requests/{uuid.uuid4()}/images/..%2f..%2fkeys"):
            answer = client.get(path)
            assert answer.status_code in (404, 422), (path, answer.status_code)
            assert answer.headers["content-type"].startswith("text/html"), path
        # The JSON API keeps its problem documents for the same mistakes.
        api = client.get("/api/v1/requests/not-a-uuid")
        assert api.headers["content-type"].startswith("application/problem+json")
    finally:
        client.close()
