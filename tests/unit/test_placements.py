"""Validation of what `castkeep asset publish` is given: URL, channel, territory (no database)."""

from __future__ import annotations

import pytest

from castkeep.errors import SpecError
from castkeep.tasks.placements import validate_channel, validate_territory, validate_url


@pytest.mark.parametrize("url", [
    "https://shop.example.com/spring?utm=1#top", "http://127.0.0.1:8080/x", "HTTPS://EXAMPLE.COM",
])
def test_http_urls_are_kept_as_given(url):
    assert validate_url(f"  {url} ") == url


@pytest.mark.parametrize("url", [
    "", "javascript:alert(1)", "data:text/html,<b>x</b>", "file:///etc/passwd",
    "ftp://files.example.com/a.jpg", "https://user:secret@example.com/", "https://",
    "https://example.com/a b", "https://example.com/\r\nX-Injected: 1", "//example.com/x",
    "https://example.com:99999/", "https://[::1/", "https://example.com/" + "a" * 2000,
])
def test_other_urls_are_refused_with_a_hint(url):
    with pytest.raises(SpecError, match="--url"):
        validate_url(url)


def test_channel_and_territory_are_vocabulary():
    assert validate_channel(" Web ") == "web"
    assert validate_territory("de") == "DE" and validate_territory("WORLD") == "WORLD"
    with pytest.raises(SpecError, match="unknown channel"):
        validate_channel("billboard")
    with pytest.raises(SpecError, match="ISO 3166-1"):
        validate_territory("XX")
