"""Page helpers (flows/web/pages/common.py): where sign-in may send a user back to, the header's
links per role, the SSO switch, and that templates escape what they are given."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from castkeep.flows.web.pages.common import environment, nav_for, safe_next, sso_configured
from castkeep.tasks.accounts import Identity


@pytest.mark.parametrize("value, expected", [
    ("/requests/new", "/requests/new"),
    ("/requests/1?tab=gallery", "/requests/1?tab=gallery"),
    ("/", "/"),
    ("", "/"),
    (None, "/"),
    ("//evil.example/x", "/"),
    ("/\\evil.example", "/"),
    ("https://evil.example/", "/"),
    ("javascript:alert(1)", "/"),
    ("requests/new", "/"),
    ("/requests\r\nSet-Cookie: x=1", "/"),
    ("/a\x00b", "/"),
])
def test_safe_next_accepts_local_paths_only(value, expected):
    assert safe_next(value) == expected


def _who(*roles: str) -> Identity:
    return Identity("someone", "north", frozenset(roles))


def test_nav_per_role():
    assert nav_for(None) == []
    assert [h for h, _ in nav_for(_who("requester"))] == ["/", "/requests/new"]
    assert [h for h, _ in nav_for(_who("reviewer"))] == ["/"]
    assert [h for h, _ in nav_for(_who("compliance"))] == ["/", "/talents", "/audit"]
    assert [h for h, _ in nav_for(_who("requester", "compliance"))] == [
        "/", "/requests/new", "/talents", "/audit"]


def test_sso_shown_only_when_configured():
    assert not sso_configured(SimpleNamespace())
    assert not sso_configured(SimpleNamespace(web=SimpleNamespace()))
    assert not sso_configured(SimpleNamespace(web=SimpleNamespace(
        oidc=SimpleNamespace(issuer="", client_id="castkeep"))))
    assert sso_configured(SimpleNamespace(web=SimpleNamespace(
        oidc=SimpleNamespace(issuer="https://idp.example"))))
    assert sso_configured(SimpleNamespace(oidc=SimpleNamespace(issuer="https://idp.example")))


def test_templates_escape_values():
    html = environment().from_string("<p>{{ name }}</p><a href=\"/x?q={{ name }}\">x</a>").render(
        name='<script>alert(1)</script>"')
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in html


def test_when_and_day_filters():
    env = environment()
    assert env.filters["when"]("2026-11-30T18:04:59.123+01:00") == "2026-11-30 17:04 UTC"
    assert env.filters["day"]("2026-11-30T18:04:59+00:00") == "2026-11-30"
    assert env.filters["when"](None) == ""
