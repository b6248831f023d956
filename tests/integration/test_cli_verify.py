"""`castkeep verify`: exit codes, JSON shape, human output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from castkeep.provenance.keys import init_dev_ca
from castkeep.provenance.manifest import sign_image
from castkeep.provenance.signing import SignerConfig, make_signer


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


# --- catalogue -------------------------------------------------------------------------------


@pytest.fixture
def catalogued(runtime_env, manifest_input_factory, fixtures_dir, tmp_path):
    """A signed file in runtime_env's home, catalogued as an asset; yields (path, asset_id)."""
    import hashlib

    from castkeep.db import schema
    from castkeep.db.engine import make_engine, session_factory

    paths = init_dev_ca(runtime_env / "keys")
    signer = make_signer(SignerConfig(paths.chain, paths.private_key))
    data = sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg",
                      manifest_input_factory(), signer)
    path = tmp_path / "catalogued.jpg"
    path.write_bytes(data)
    engine = make_engine(os.environ["CASTKEEP_DATABASE__URL"])
    try:
        with session_factory(engine).begin() as session:
            asset = schema.Asset(sha256=hashlib.sha256(data).hexdigest(), object_key="assets/x.jpg",
                                 media_type="image/jpeg", width=1, height=1, status="approved")
            session.add(asset)
            session.flush()
            asset_id = str(asset.id)
    finally:
        engine.dispose()
    yield path, asset_id
    signer.close()


def test_catalogued_asset_matches(cli, catalogued):
    path, asset_id = catalogued
    result = cli("verify", str(path), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["catalogue"]["catalogued"] is True
    assert out["catalogue"]["asset_id"] == asset_id
    assert out["catalogue"]["sha256_matches"] is True
    assert out["catalogue"]["status"] == "approved"
    human = cli("verify", str(path))
    assert f"catalogue: asset {asset_id} (approved); file matches" in human.stdout


def test_tampered_catalogued_asset_by_id(cli, catalogued):
    path, asset_id = catalogued
    data = bytearray(path.read_bytes())
    data[-200] ^= 0x01
    path.write_bytes(bytes(data))
    by_hash = json.loads(cli("verify", str(path), "--json").stdout)
    assert by_hash["catalogue"] == {"catalogued": False}  # a new sha256 is not found
    result = cli("verify", str(path), "--json", "--asset-id", asset_id)
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert out["catalogue"]["sha256_matches"] is False
    assert "castkeep.catalogue.sha256Mismatch" in out["failures"]
    assert "assertion.dataHash.mismatch" in out["failures"]


def test_re_signed_copy_differs_from_catalogue(cli, catalogued, runtime_env, manifest_input_factory,
                                               fixtures_dir, tmp_path):
    # Validly signed but not the catalogued bytes: Trusted alone, Invalid against the catalogue.
    path, asset_id = catalogued
    paths = init_dev_ca(runtime_env / "keys")
    other = tmp_path / "other.jpg"
    other.write_bytes(sign_image((fixtures_dir / "obama2.jpg").read_bytes(), "image/jpeg",
                                 manifest_input_factory(), make_signer(SignerConfig(paths.chain, paths.private_key))))
    assert cli("verify", str(other), "--no-catalogue").exit_code == 0
    result = cli("verify", str(other), "--json", "--asset-id", asset_id)
    assert result.exit_code == 2
    assert json.loads(result.stdout)["state"] == "Invalid"


def test_unknown_asset_id(cli, catalogued):
    path, _ = catalogued
    result = cli("verify", str(path), "--asset-id", "00000000-0000-0000-0000-000000000000")
    assert result.exit_code != 0
    assert "no asset" in str(result.exception)


def test_unreachable_catalogue_still_verifies(cli, signed_file, monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CASTKEEP_DATABASE__URL", f"postgresql+psycopg://u:p@127.0.0.1:{port}/db")
    from castkeep.flows.settings import get_settings

    get_settings.cache_clear()
    result = cli("verify", str(signed_file), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["catalogue"]["catalogued"] is None and out["catalogue"]["error"]
    assert out["catalogue_status"] is None and out["withdrawn"] is False
    human = cli("verify", str(signed_file))
    assert human.exit_code == 0
    assert "catalogue: not checked, signature verified offline only" in human.stdout
    get_settings.cache_clear()


def test_asset_quarantined_after_a_real_request_exits_4(request_env, cli, tmp_path):
    from tests.plugins.request import published_export

    asset_id, target = published_export(cli, tmp_path)
    before = cli("verify", str(target), "--json")
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout)["catalogue_status"] == "published"

    revoked = cli("consent", "revoke", request_env.consent_ids["demo-talent-a"],
                  "--reason", "talent withdrew", "--json")
    assert revoked.exit_code == 0, revoked.output
    assert asset_id in json.loads(revoked.stdout)["quarantined"]

    after = cli("verify", str(target), "--json")
    assert after.exit_code == 4, after.output
    out = json.loads(after.stdout)
    assert out["state"] == "Trusted"  # the signature is still good; the catalogue withdrew it
    assert out["catalogue_status"] == "quarantined" and out["withdrawn"] is True
    assert out["catalogue"]["asset_id"] == asset_id
    human = cli("verify", str(target))
    assert human.exit_code == 4
    assert f"{target}: Trusted" in human.stdout
    assert f"WITHDRAWN: the catalogue marks asset {asset_id} quarantined" in human.stdout
