"""`castkeep request|approve|asset` through the real command (typer app, in process)."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from castkeep.errors import ManifestError, NotFoundError
from tests.plugins.request import request_doc, write_request

pytestmark = pytest.mark.usefixtures("prefect_harness")

LIT = {"lighting": {"azimuth": 60}}


@pytest.fixture(scope="module")
def cli():
    from castkeep.flows import cli

    cli._register()
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli.app, list(args))

    return run


def test_request_json_show_and_export(request_env, cli, tmp_path):
    path = write_request(tmp_path, request_doc(variants=1, **LIT), "req.json")
    res = cli("request", str(path), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # stdout is exactly the JSON
    assert set(out) >= {"request_id", "status", "assets", "refusals"}
    assert out["status"] == "completed" and out["refusals"] == []
    (asset,) = out["assets"]
    assert set(asset) >= {"id", "path", "passed", "scores"} and asset["passed"] is True
    talent = request_env.talent_ids["demo-talent-a"]
    assert asset["scores"]["identity"][talent]["passed"] is True

    shown = cli("request", "show", out["request_id"], "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["assets"] == out["assets"]

    target = tmp_path / "out" / "asset.jpg"
    exported = cli("asset", "export", asset["id"], "-o", str(target))
    assert exported.exit_code == 0, exported.output
    data = target.read_bytes()
    info = json.loads(cli("asset", "show", asset["id"], "--json").stdout)
    assert hashlib.sha256(data).hexdigest() == info["sha256"]
    assert info["status"] == "published" and info["talents"] == [talent]

    human = cli("request", "show", out["request_id"])
    assert f"request {out['request_id']}: completed" in human.stdout
    assert "contact sheet:" in human.stdout


def test_refused_request_exits_3_with_refusals(request_env, cli, tmp_path):
    path = write_request(tmp_path, request_doc(territory="JP"))
    res = cli("request", str(path), "--json")
    assert res.exit_code == 3
    out = json.loads(res.stdout)
    assert out["status"] == "refused" and out["assets"] == []
    assert any("territory JP not in consent" in r for r in out["refusals"])


def test_rejected_variant_exits_1(request_env, cli, tmp_path):
    path = write_request(tmp_path, request_doc(
        variants=1, engine_options={"scramble_face": True}, thresholds={"max_retries": 0}))
    res = cli("request", str(path), "--json")
    assert res.exit_code == 1
    (asset,) = json.loads(res.stdout)["assets"]
    assert asset["passed"] is False


def test_bad_request_file_names_the_field(request_env, cli, tmp_path):
    path = write_request(tmp_path, request_doc(varients=2))
    res = cli("request", str(path))
    assert isinstance(res.exception, ManifestError)
    assert "'varients'" in str(res.exception) and str(path) in str(res.exception)
    res = cli("request", "show", "not-a-uuid")
    assert isinstance(res.exception, NotFoundError)


def test_approve_command_publishes(request_env, cli, tmp_path):
    path = write_request(tmp_path, request_doc(approval_required=True, **LIT))
    out = json.loads(cli("request", str(path), "--json").stdout)
    assert out["status"] == "awaiting_approval"
    ids = [a["id"] for a in out["assets"]]
    res = cli("approve", out["request_id"], "--assets", ",".join(ids), "--reviewer", "Rev", "--json")
    assert res.exit_code == 0, res.output
    done = json.loads(res.stdout)
    assert done["status"] == "completed" and sorted(done["published"]) == sorted(ids)
    assert {a["status"] for a in done["assets"]} == {"published"}


def _forced_exports(asset_id: str) -> list:
    import sqlalchemy as sa

    from castkeep.db.schema import AuditEvent
    from castkeep.flows.runtime import open_runtime

    with open_runtime() as runtime, runtime.sessions() as session:
        return list(session.scalars(sa.select(AuditEvent).where(
            AuditEvent.kind == "asset.export_forced", AuditEvent.entity_id == asset_id)))


def test_withdrawn_asset_export_needs_force_and_is_audited(request_env, cli, tmp_path, monkeypatch):
    from castkeep.errors import WithdrawnError
    from castkeep.flows.settings import get_settings

    path = write_request(tmp_path, request_doc(
        variants=1, engine_options={"scramble_face": True}, thresholds={"max_retries": 0}))
    (asset,) = json.loads(cli("request", str(path), "--json").stdout)["assets"]
    info = json.loads(cli("asset", "show", asset["id"], "--json").stdout)
    assert info["status"] == "rejected"

    target = tmp_path / "out" / "rejected.jpg"
    refused = cli("asset", "export", asset["id"], "-o", str(target))
    assert isinstance(refused.exception, WithdrawnError) and refused.exception.exit_code == 4
    assert "rejected" in str(refused.exception) and "--force" in str(refused.exception)
    assert not target.exists() and _forced_exports(asset["id"]) == []

    monkeypatch.setenv("CASTKEEP_ACTOR", "export-officer")  # the acting user, not a typed name
    get_settings.cache_clear()
    forced = cli("asset", "export", asset["id"], "-o", str(target), "--force")
    assert forced.exit_code == 0, forced.output
    assert hashlib.sha256(target.read_bytes()).hexdigest() == info["sha256"]
    (event,) = _forced_exports(asset["id"])
    assert event.actor == "export-officer"
    assert event.payload == {"status": "rejected", "sha256": info["sha256"]}
    # The exported copy still says what the catalogue says about it.
    verified = cli("verify", str(target), "--json")
    assert verified.exit_code == 4 and json.loads(verified.stdout)["catalogue_status"] == "rejected"


def _request_rows() -> int:
    import sqlalchemy as sa

    from castkeep.db.schema import AssetRequest
    from castkeep.flows.runtime import open_runtime

    with open_runtime() as runtime, runtime.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(AssetRequest))


@pytest.mark.parametrize("change, error, words", [
    ({"engine": "nope"}, "UnknownModelError", "unknown edit engine 'nope'"),
    ({"engine_options": {"bogus": 1}}, "SpecError", "unknown classical option(s) ['bogus']"),
    ({}, "SigningError", "no signing identity"),
])
def test_bad_engine_or_signing_is_refused_before_the_request_row(
    request_env, cli, tmp_path, monkeypatch, change, error, words
):
    from castkeep.flows.settings import get_settings

    if error == "SigningError":
        for name in ("CERT_CHAIN", "PRIVATE_KEY", "TRUST_ANCHORS"):
            monkeypatch.delenv(f"CASTKEEP_SIGNING__{name}")
        get_settings.cache_clear()
    before = _request_rows()
    res = cli("request", str(write_request(tmp_path, request_doc(variants=1, **LIT, **change))))
    assert type(res.exception).__name__ == error and res.exception.exit_code == 2
    assert words in str(res.exception)
    assert _request_rows() == before  # nothing catalogued, so nothing left `failed`
