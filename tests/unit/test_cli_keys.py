"""`castkeep keys init|show` against a temporary CASTKEEP_HOME."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from castkeep.errors import SigningError


@pytest.fixture
def cli():
    from castkeep.flows.cli import _register, app

    _register()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_init_then_show_json(cli, castkeep_home):
    result = cli("keys", "init")
    assert result.exit_code == 0, result.output
    assert "created development CA (es256)" in result.output
    keys = castkeep_home / "keys"
    assert stat.S_IMODE((keys / "signer.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((keys / "root.key").stat().st_mode) == 0o600

    shown = cli("keys", "show", "--json")
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.stdout)
    assert info["root_cert"] == str(keys / "root.pem")
    assert info["chain"] == str(keys / "chain.pem")
    assert info["algorithm"] == "es256"
    assert info["source"] == "development"
    assert info["trust_anchors"] == [str(keys / "root.pem")]


def test_init_is_idempotent_and_force_replaces(cli, castkeep_home):
    assert cli("keys", "init").exit_code == 0
    key = castkeep_home / "keys" / "signer.key"
    before = key.read_bytes()
    again = cli("keys", "init")
    assert again.exit_code == 0 and "kept existing" in again.output
    assert key.read_bytes() == before
    forced = cli("keys", "init", "--force")
    assert forced.exit_code == 0 and "created" in forced.output
    assert key.read_bytes() != before


def test_algorithm_from_setting(cli, castkeep_home, monkeypatch):
    monkeypatch.setenv("CASTKEEP_SIGNING__ALGORITHM", "ed25519")
    from castkeep.flows.settings import get_settings

    get_settings.cache_clear()
    assert cli("keys", "init").exit_code == 0
    assert json.loads(cli("keys", "show", "--json").stdout)["algorithm"] == "ed25519"
    get_settings.cache_clear()


def test_show_configured_certificate(cli, castkeep_home, monkeypatch, dev_ca, tmp_path):
    monkeypatch.setenv("CASTKEEP_SIGNING__CERT_CHAIN", str(dev_ca.chain))
    monkeypatch.setenv("CASTKEEP_SIGNING__PRIVATE_KEY", str(dev_ca.private_key))
    monkeypatch.setenv("CASTKEEP_SIGNING__TRUST_ANCHORS", json.dumps([str(dev_ca.root_cert)]))
    from castkeep.flows.settings import get_settings

    get_settings.cache_clear()
    info = json.loads(cli("keys", "show", "--json").stdout)
    assert info["source"] == "configured"
    assert info["chain"] == str(dev_ca.chain)
    assert info["trust_anchors"] == [str(dev_ca.root_cert)]
    get_settings.cache_clear()


def test_show_without_keys_says_what_to_do(cli, castkeep_home):
    result = cli("keys", "show")
    assert isinstance(result.exception, SigningError)
    assert "castkeep keys init" in str(result.exception)


def test_real_command_exit_code(castkeep_home):
    env = {**os.environ, "CASTKEEP_HOME": str(castkeep_home)}
    exe = [sys.executable, "-c", "from castkeep.flows.cli import main; main()"]
    missing = subprocess.run([*exe, "keys", "show", "--json"], env=env, capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert missing.stderr.startswith("error: no signing identity")
    init = subprocess.run([*exe, "keys", "init"], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    assert (castkeep_home / "keys" / "chain.pem").is_file()
