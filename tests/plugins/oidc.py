"""Single sign-on fixtures: a real OpenID Connect provider (npm `oidc-provider`, started by
tests/oidc/provider.mjs under node on a free 127.0.0.1 port) and the web app configured for it.

- `oidc_sso` (function): `oidc_sso(accounts, **oidc_settings)` -> (WebServer, OidcProvider):
  a provider whose dev-interaction logins are the keys of `accounts` (their claims the values)
  and the app under uvicorn with `web.oidc` pointing at it (the overrides on top). Both stop at
  the end of the test.
- `OidcProvider.authorize(client, start_url, login)`: drives the provider's login and consent
  forms with an httpx client from the app's /sso/login URL and returns the callback URL the
  provider redirects to (not yet followed, so a test can tamper with it or read its code).

node missing or `npm ci --prefix tests/oidc` not run fails the test (it never skips).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
CLIENT_ID = "castkeep-web"
# Sent only to the provider; the tests assert it never reaches a log.
CLIENT_SECRET = "oidc-client-secret-7f3a9c1e5b"


class _Forms(HTMLParser):
    """The forms of a page: [(action, {name: value})], and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}))
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1][1][a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])


@dataclass
class OidcProvider:
    issuer: str
    callback: str
    process: subprocess.Popen = field(repr=False)

    def authorize(self, client, start_url: str, login: str, *, abort: bool = False) -> str:
        """The callback URL after signing in as `login` (or cancelling, with `abort`)."""
        url = start_url
        answer = client.get(url)
        for _ in range(20):
            if answer.is_redirect:
                url = urljoin(url, answer.headers["location"])
                if url.startswith(self.callback):
                    return url
                answer = client.get(url)
                continue
            assert answer.status_code == 200, (url, answer.status_code, answer.text[:500])
            page = _Forms()
            page.feed(answer.text)
            if abort:
                cancel = [h for h in page.links if "/abort" in h]
                assert cancel, answer.text[:500]
                url = urljoin(url, cancel[0])
                answer = client.get(url)
                continue
            assert page.forms, answer.text[:500]
            action, fields = page.forms[0]
            if fields.get("prompt") == "login":
                fields.update(login=login, password="any-password")
            url = urljoin(url, action)
            answer = client.post(url, data=fields)
        raise AssertionError(f"the provider did not redirect back to {self.callback}")


def _start(port: int, config: dict[str, Any]) -> subprocess.Popen:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install nodejs and npm (apt-get install nodejs npm; .ci/run "
                    "does it)", pytrace=False)
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("oidc-provider is not installed: run `npm ci --prefix tests/oidc` "
                    "(.ci/run does it)", pytrace=False)
    env = {**os.environ, "OIDC_TEST_CONFIG": json.dumps(config)}
    errors = tempfile.TemporaryFile("w+")  # a file, not a pipe: its warnings never block it
    process = subprocess.Popen([node, str(OIDC_DIR / "provider.mjs"), str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=errors, text=True)
    line = process.stdout.readline()  # "listening <issuer>" once it serves
    if not line.startswith("listening "):
        process.kill()
        errors.seek(0)
        pytest.fail(f"the OIDC provider did not start: {line}{errors.read()[-2000:]}",
                    pytrace=False)
    return process


@pytest.fixture
def oidc_sso(serve_app):
    from castkeep.flows.settings import OidcSettings, get_settings
    from castkeep.flows.web import create_app
    from castkeep.net import free_port

    started: list[subprocess.Popen] = []

    def start(accounts: dict[str, dict[str, Any]], **overrides: Any):
        port = free_port()
        issuer = f"http://127.0.0.1:{port}"
        base = get_settings()
        oidc = OidcSettings(issuer=issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            **overrides)
        settings = base.model_copy(update={"web": base.web.model_copy(update={"oidc": oidc})})
        server = serve_app(create_app(settings))
        callback = f"{server.url}/sso/callback"
        process = _start(port, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                "redirect_uri": callback, "accounts": accounts})
        started.append(process)
        return server, OidcProvider(issuer=issuer, callback=callback, process=process)

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
