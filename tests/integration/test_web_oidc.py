"""Single sign-on (flows/web/oidc.py, flows/web/routes_sso.py) against a real OpenID Connect
provider (npm oidc-provider on 127.0.0.1, tests/plugins/oidc.py): the full sign-in with PKCE and
roles from a claim, roles refreshed at each sign-in, refusals (tampered state, provider error,
no mapped role, a disabled account, unknown users when creation is off), ID token checks
(signature, nonce, audience, expiry), safe return paths, 404 when not configured, and the
client secret never in a log."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.plugins.oidc import CLIENT_SECRET
from tests.plugins.web import PASSWORD

ACCOUNTS = {
    "casey": {"preferred_username": "casey", "castkeep_roles": ["reviewer", "requester"],
              "team": "north"},
    "robin": {"preferred_username": "robin", "castkeep_roles": "cast-compliance"},
    "intern": {"preferred_username": "intern", "castkeep_roles": ["intern", "viewer"]},
    "reviewer": {"preferred_username": "reviewer", "castkeep_roles": ["compliance"]},
}


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _problem(answer: httpx.Response, status: int, words: str) -> None:
    """A refusal: the status, the reason in the page or problem document, no traceback."""
    assert answer.status_code == status, answer.text[:500]
    assert words in answer.text, answer.text[:500]
    assert "Traceback" not in answer.text


def test_sign_in_sets_a_session_with_roles_from_the_claim(oidc_sso, caplog):
    caplog.set_level(logging.DEBUG)
    server, provider = oidc_sso(ACCOUNTS, team_claim="team")
    with server.client() as browser:
        start = browser.get("/sso/login", params={"next": "/requests/new"})
        assert start.status_code == 303
        auth = urlsplit(start.headers["location"])
        params = parse_qs(auth.query)
        assert f"{auth.scheme}://{auth.netloc}" == provider.issuer
        assert params["code_challenge_method"] == ["S256"] and params["code_challenge"]
        assert params["response_type"] == ["code"] and "openid" in params["scope"][0].split()
        assert params["state"] and params["nonce"]
        pending = start.headers["set-cookie"].lower()
        assert "castkeep_sso=" in pending and "httponly" in pending and "path=/sso" in pending

        callback = provider.authorize(browser, str(start.headers["location"]), "casey")
        done = browser.get(callback)
        assert done.status_code == 303, done.text[:500]
        assert done.headers["location"] == "/requests/new"
        me = browser.get("/api/v1/session")
        assert me.status_code == 200, me.text
        assert me.json() == {"username": "casey", "team": "north",
                             "roles": ["requester", "reviewer"]}
        # The code is single use: replaying the callback signs nobody in.
        replay = browser.get(callback)
        assert replay.status_code in (400, 401) and "castkeep_session" not in replay.cookies

    # The account exists now, with the provider's roles, and has no password to sign in with.
    with server.client() as other:
        assert other.post("/api/v1/session", json={"username": "casey", "password": ""}
                          ).status_code == 422
        assert other.post("/api/v1/session", json={"username": "casey", "password": PASSWORD}
                          ).status_code == 401
    assert provider.issuer in caplog.text  # the configuration was logged ...
    assert CLIENT_SECRET not in caplog.text  # ... without the secret
    assert "casey" in caplog.text


def test_roles_come_from_the_provider_at_each_sign_in(oidc_sso, web_users):
    # "reviewer" is a local account (role reviewer); the provider says compliance.
    server, provider = oidc_sso(ACCOUNTS)
    with server.client() as browser:
        before = browser.post("/api/v1/session", json={"username": "reviewer",
                                                       "password": PASSWORD})
        assert before.json()["roles"] == ["reviewer"]
        assert browser.get("/api/v1/talents").status_code == 403
    with server.client() as browser:
        url = browser.get("/sso/login").headers["location"]
        assert browser.get(provider.authorize(browser, url, "reviewer")).status_code == 303
        assert browser.get("/api/v1/session").json()["roles"] == ["compliance"]
        # require() sees the refreshed roles: /talents is for compliance, not reviewers.
        assert browser.get("/api/v1/talents").status_code == 200
    with server.client(web_users["reviewer"].token) as token_caller:  # the same account
        assert token_caller.get("/api/v1/talents").status_code == 200
    with server.client(web_users["admin"].token) as admin:
        users = {u["username"]: u for u in admin.get("/api/v1/users").json()}
    assert users["reviewer"]["roles"] == ["compliance"]


def test_role_map_and_unmapped_users(oidc_sso, web_users):
    server, provider = oidc_sso(ACCOUNTS, role_map={"cast-compliance": ["compliance"],
                                                    "intern": []})
    with server.client() as browser:
        url = browser.get("/sso/login").headers["location"]
        assert browser.get(provider.authorize(browser, url, "robin")).status_code == 303
        assert browser.get("/api/v1/session").json()["roles"] == ["compliance"]
    # With a map, only mapped values count: casey's role names map to nothing here.
    for login in ("intern", "casey"):
        with server.client() as browser:
            url = browser.get("/sso/login").headers["location"]
            refused = browser.get(provider.authorize(browser, url, login))
            _problem(refused, 403, "holds no castkeep role")
            assert "castkeep_session" not in refused.cookies
            assert browser.get("/api/v1/session").status_code == 401
    with server.client(web_users["admin"].token) as admin:
        names = {u["username"] for u in admin.get("/api/v1/users").json()}
    assert "robin" in names and not {"intern", "casey"} & names  # no account for the refused


def test_tampered_state_provider_error_and_missing_pending_sign_in_are_refused(oidc_sso):
    server, provider = oidc_sso(ACCOUNTS)
    with server.client() as browser:
        url = browser.get("/sso/login").headers["location"]
        callback = provider.authorize(browser, url, "casey")
        state = parse_qs(urlsplit(callback).query)["state"][0]
        _problem(browser.get(_with_query(callback, state=state[:-2] + "xx")), 400,
                 "state does not match")
        _problem(browser.get(_with_query(callback, iss="https://elsewhere.example")), 400,
                 "another identity provider")
        assert browser.get("/api/v1/session").status_code == 401
    # The same callback from a browser that did not start the sign-in (no pending cookie).
    with server.client() as stranger:
        _problem(stranger.get(callback), 400, "start it again")
        assert stranger.get("/api/v1/session").status_code == 401
    # The person cancels at the provider: it answers error=access_denied.
    with server.client() as browser:
        url = browser.get("/sso/login").headers["location"]
        cancelled = provider.authorize(browser, url, "casey", abort=True)
        assert "error=access_denied" in cancelled
        _problem(browser.get(cancelled), 401, "refused the sign-in (access_denied)")
    # A forged code with the right state: the provider refuses the exchange.
    with server.client() as browser:
        url = browser.get("/sso/login").headers["location"]
        state = parse_qs(urlsplit(url).query)["state"][0]
        forged = browser.get("/sso/callback", params={"state": state, "code": "forged-code"})
        _problem(forged, 401, "refused the code exchange")


def test_disabled_account_and_unknown_users_without_creation_are_refused(oidc_sso, web_users):
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.accounts import disable_user

    with open_runtime() as runtime:
        disable_user(runtime, "reviewer", actor="tests")
    server, provider = oidc_sso(ACCOUNTS, create_users=False)
    with server.client() as browser:
        url = browser.get("/sso/login").headers["location"]
        _problem(browser.get(provider.authorize(browser, url, "reviewer")), 403, "is disabled")
    with server.client() as browser:
        url = browser.get("/sso/login").headers["location"]
        _problem(browser.get(provider.authorize(browser, url, "casey")), 403,
                 "castkeep users add")
    with server.client(web_users["admin"].token) as admin:
        users = {u["username"]: u for u in admin.get("/api/v1/users").json()}
    assert "casey" not in users and users["reviewer"]["disabled"]
    assert users["reviewer"]["roles"] == ["reviewer"]  # not refreshed for a refused sign-in


def test_id_token_signature_nonce_audience_and_expiry_are_checked(oidc_sso):
    from castkeep.flows.settings import OidcSettings
    from castkeep.flows.web.oidc import LEEWAY_S, OidcClient, OidcConfig
    from castkeep.flows.web.problems import Problem

    _, provider = oidc_sso(ACCOUNTS)
    settings = OidcSettings(issuer=provider.issuer, client_id="castkeep-web",
                            client_secret=CLIENT_SECRET)
    client = OidcClient(OidcConfig.from_settings(settings))
    url, pending = client.authorization_url(provider.callback, "/")
    with httpx.Client(timeout=30) as browser:
        callback = provider.authorize(browser, url, "casey")
    code = parse_qs(urlsplit(callback).query)["code"][0]
    token = client.exchange(code, pending.verifier, provider.callback)
    claims = client.verify_id_token(token, pending.nonce)
    assert claims["sub"] == "casey" and claims["aud"] == "castkeep-web"

    def refused(why: str, **kwargs) -> None:
        with pytest.raises(Problem) as caught:
            kwargs.setdefault("nonce", pending.nonce)
            kwargs.setdefault("token", token)
            kwargs.pop("client", client).verify_id_token(kwargs["token"], kwargs["nonce"],
                                                         now=kwargs.get("now"))
        assert caught.value.status == 401 and why in caught.value.detail, caught.value.detail

    refused("nonce", nonce="another-nonce")
    header, payload, signature = token["id_token"].split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    refused("not valid", token={**token, "id_token": f"{header}.{payload}.{flipped}"})
    refused("exp", now=int(claims["exp"]) + LEEWAY_S + 1)
    other = OidcClient(OidcConfig.from_settings(settings.model_copy(
        update={"client_id": "another-client"})))
    refused("aud", client=other)
    # An unsigned token ("alg": "none") with the same claims is refused.
    import base64
    import json

    none_header = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=")
    refused("not valid", token={**token, "id_token": f"{none_header.decode()}.{payload}."})


def test_sso_routes_answer_404_when_not_configured(web_server):
    with web_server.client() as browser:
        for path in ("/sso/login", "/sso/callback?state=x&code=y"):
            answer = browser.get(path)
            assert answer.status_code == 404, (path, answer.text[:300])


def test_return_paths_stay_on_this_server_and_settings_are_checked():
    from castkeep.errors import ConfigurationError
    from castkeep.flows.settings import OidcSettings
    from castkeep.flows.web.oidc import OidcConfig
    from castkeep.flows.web.routes_sso import safe_next

    assert safe_next("/requests/new?x=1") == "/requests/new?x=1"
    for hostile in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x",
                    "/a\r\nSet-Cookie: x=1", "", None):
        assert safe_next(hostile) == "/", hostile
    assert OidcConfig.from_settings(OidcSettings()) is None  # off
    ok = {"issuer": "https://id.example", "client_id": "c"}
    assert OidcConfig.from_settings(OidcSettings(**ok)).issuer == "https://id.example"
    for bad, names in (({"issuer": "http://id.example", "client_id": "c"}, "ISSUER"),
                       ({"issuer": "https://id.example"}, "CLIENT_ID"),
                       ({**ok, "scopes": "profile"}, "SCOPES"),
                       ({**ok, "role_map": {"x": ["root"]}}, "ROLE_MAP")):
        with pytest.raises(ConfigurationError, match=names):
            OidcConfig.from_settings(OidcSettings(**bad))
