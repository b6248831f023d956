"""`castkeep web` binds to loopback unless TLS or a proxy is in front; the session codec and the
sign-in limiter of the web app."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from castkeep.errors import ConfigurationError
from castkeep.flows.cli.web import check_bind, is_loopback


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("::1", True),
                                           ("localhost", True), ("0.0.0.0", False),
                                           ("192.168.1.4", False), ("example.org", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_check_bind():
    check_bind("127.0.0.1", tls=False, behind_proxy=False)
    check_bind("0.0.0.0", tls=True, behind_proxy=False)
    check_bind("0.0.0.0", tls=False, behind_proxy=True)
    with pytest.raises(ConfigurationError, match="--behind-proxy"):
        check_bind("0.0.0.0", tls=False, behind_proxy=False)


def test_web_refuses_a_public_interface_before_starting(tmp_path, monkeypatch):
    from castkeep.flows import cli

    from castkeep.flows.settings import get_settings

    monkeypatch.setenv("CASTKEEP_HOME", str(tmp_path))
    get_settings.cache_clear()
    cli._register()
    try:
        result = CliRunner().invoke(cli.app, ["web", "--host", "0.0.0.0"])
    finally:
        get_settings.cache_clear()
    assert isinstance(result.exception, ConfigurationError)
    assert "CASTKEEP_WEB__TLS_CERT" in str(result.exception)
    assert not (tmp_path / "prefect").exists() and not (tmp_path / "pg").exists()


def test_session_codec_signs_and_expires():
    from castkeep.flows.web.auth import SessionCodec

    codec = SessionCodec(minutes=5)
    cookie, csrf = codec.issue("rita")
    data = codec.read(cookie)
    assert data == {"u": "rita", "s": data["s"], "c": csrf, "exp": data["exp"]}
    assert codec.read(codec.issue("rita")[0])["s"] != data["s"]  # a new session id each time
    body, _, mac = cookie.partition(".")
    assert codec.read(body + "." + "0" * len(mac)) is None
    assert SessionCodec(minutes=5).read(cookie) is None  # another server's key
    assert SessionCodec(minutes=-1, key=codec.key).read(SessionCodec(minutes=-1, key=codec.key)
                                                         .issue("rita")[0]) is None


def test_login_limiter_counts_per_username_and_address():
    from castkeep.flows.web.auth import LoginLimiter

    limiter = LoginLimiter(attempts=2)
    key = ("rita", "10.0.0.1")
    for _ in range(2):
        assert limiter.retry_after(key) == 0
        limiter.failed(key)
    assert limiter.retry_after(key) > 0
    assert limiter.retry_after(("rita", "10.0.0.2")) == 0
    limiter.succeeded(key)
    assert limiter.retry_after(key) == 0
