"""`castkeep verify`: exit codes, JSON shape, human output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from castkeep.provenance.keys import init_dev_ca
from castkeep.provenance.manifest import sign_image
from castkeep.provenance.signing import SignerConfig, make_signer


@pytest.fixture
def cli():
    from castkeep.flows.cli import _register, app

    _register()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


@pytest.fixture
def home_signer(castkeep_home):
    paths = init_dev_ca(castkeep_home / "keys")
    signer = make_signer(SignerConfig(paths.chain, paths.private_key))
    yield signer
    signer.close()


@pytest.fixture
def signed_file(home_signer, manifest_input_factory, fixtures_dir, tmp_path):
    path = tmp_path / "asset.jpg"
    path.write_bytes(sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg",
                                manifest_input_factory(), home_signer))
    return path


def test_trusted_exit_0_json(cli, signed_file):
    result = cli("verify", str(signed_file), "--json", "--no-catalogue")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["state"] == "Trusted"
    assert out["failures"] == []
    assert out["consent"]["talents"] == ["tal_0000"]
    assert out["scores"] is None
    assert out["catalogue"] is None


def test_trusted_human_output(cli, signed_file):
    result = cli("verify", str(signed_file), "--no-catalogue")
    assert result.exit_code == 0
    assert f"{signed_file}: Trusted" in result.stdout
    assert "action: c2pa.edited by classical 0.1.0" in result.stdout
    assert "consent: talents tal_0000" in result.stdout


def test_untrusted_exit_1(cli, signed_file, castkeep_home, tmp_path):
    # A different dev CA in CASTKEEP_HOME: the file's signer no longer chains to an anchor.
    init_dev_ca(castkeep_home / "keys", force=True)
    result = cli("verify", str(signed_file), "--json", "--no-catalogue")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["state"] == "Valid"
    assert "signingCredential.untrusted" in out["failures"]


def test_tampered_exit_2(cli, signed_file):
    data = bytearray(signed_file.read_bytes())
    data[-200] ^= 0x01
    signed_file.write_bytes(bytes(data))
    result = cli("verify", str(signed_file), "--json", "--no-catalogue")
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert out["state"] == "Invalid"
    assert "assertion.dataHash.mismatch" in out["failures"]


def test_no_manifest_exit_2(cli, castkeep_home, fixtures_dir):
    result = cli("verify", str(fixtures_dir / "obama.jpg"), "--json", "--no-catalogue")
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert out["state"] == "Invalid"
    assert out["failures"] == ["manifest.missing"]
    assert out["consent"] is None and out["scores"] is None


def test_real_command(signed_file, castkeep_home):
    env = {**os.environ, "CASTKEEP_HOME": str(castkeep_home)}
    exe = [sys.executable, "-c", "from castkeep.flows.cli import main; main()"]
    done = subprocess.run([*exe, "verify", str(signed_file), "--json", "--no-catalogue"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "Trusted"
