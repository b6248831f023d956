"""`castkeep request|approve|asset` through the real command: the typer app in process, and the
console script in a child process where its stderr and exit code are the point."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from castkeep.errors import ManifestError, NotFoundError
from tests.plugins.prefect_harness import run_castkeep
from tests.plugins.request import request_doc, write_request

pytestmark = pytest.mark.usefixtures("prefect_harness")

LIT = {"lighting": {"azimuth": 60}}


def test_request_json_show_and_export(request_env, cli, tmp_path):
    path = write_request(tmp_path, request_doc(variants=1, **LIT), "req.json")
    res = cli("request", str(path), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # stdout is exactly the JSON
    assert out["status"] == "completed" and out["refusals"] == []
    assert out["progress"] == {"done": 1, "total": 1}
    (asset,) = out["assets"]
    assert asset["passed"] is True and asset["reasons"] == [] and asset["variant"] == 0
    talent = request_env.talent_ids["demo-talent-a"]
    assert asset["scores"]["identity"][talent]["passed"] is True

    shown = cli("request", "show", out["id"], "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == out
    # The web API's document (GET /api/v1/requests/ID), field for field, plus local paths.
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.api_views import request_document

    with open_runtime() as rt, rt.sessions() as session:
        api = request_document(session, uuid.UUID(out["id"]))
    local_only = {"contact_sheet"}
    assert {k: v for k, v in out.items() if k not in local_only} == {
        **api, "assets": [{**a, "path": asset["path"]} for a in api["assets"]]}
    assert "path" not in api["assets"][0] and "contact_sheet" not in api
    assert Path(asset["path"]).is_file() and Path(out["contact_sheet"]).is_file()

    target = tmp_path / "out" / "asset.jpg"
    exported = cli("asset", "export", asset["id"], "-o", str(target))
    assert exported.exit_code == 0, exported.output
    data = target.read_bytes()
    info = json.loads(cli("asset", "show", asset["id"], "--json").stdout)
    assert hashlib.sha256(data).hexdigest() == info["sha256"]
    assert info["status"] == "published" and info["talents"] == [talent]

    human = cli("request", "show", out["id"])
    assert f"request {out['id']}: completed (1/1 variants done)" in human.stdout
    assert f"file: {asset['path']}" in human.stdout
    assert "contact sheet:" in human.stdout


def test_exported_asset_carries_rights_metadata_and_verifies(request_env, cli, tmp_path,
                                                            monkeypatch):
    """Every output embeds XMP/IPTC rights metadata and an sRGB profile before signing: exiftool
    reads it from the exported file, which still verifies Trusted; no name is in it; and the
    public consent assertion carries no scope terms or document hashes at the default detail."""
    from castkeep.flows.settings import get_settings
    from tests.unit.test_xmp import exiftool

    monkeypatch.setenv("CASTKEEP_SIGNING__CREATOR", "Example Studio")
    monkeypatch.setenv("CASTKEEP_SIGNING__CREDIT", "Example Studio for castkeep")
    monkeypatch.setenv("CASTKEEP_SIGNING__RIGHTS_URL", "https://rights.example.com/licence")
    get_settings.cache_clear()
    path = write_request(tmp_path, request_doc(variants=1, **LIT), "req.json")
    out = json.loads(cli("request", str(path), "--json").stdout)
    (asset,) = out["assets"]
    target = tmp_path / "asset.jpg"
    assert cli("asset", "export", asset["id"], "-o", str(target)).exit_code == 0
    data = target.read_bytes()
    tags = exiftool(data, tmp_path, "read.jpg")
    consent_id = request_env.consent_ids["demo-talent-a"]
    publish = request_doc()["publish_date"]
    assert tags["XMP-iptcExt:DigitalSourceType"].endswith("/compositeWithTrainedAlgorithmicMedia")
    assert tags["XMP-plus:ModelReleaseStatus"] == "Limited or Incomplete Model Releases"
    assert tags["XMP-plus:ModelReleaseID"] == [consent_id]
    assert tags["XMP-xmpRights:UsageTerms"].startswith(
        f"Licensed use only: channel social, territory FR, purpose advertising; publish from {publish}")
    assert tags["XMP-xmpRights:WebStatement"] == "https://rights.example.com/licence"
    assert tags["XMP-dc:Creator"] == ["Example Studio"]
    assert tags["XMP-photoshop:Credit"] == "Example Studio for castkeep"
    assert "Not for AI training" in tags["XMP-photoshop:Instructions"]
    assert tags["ICC_Profile:ProfileDescription"] == "sRGB built-in"
    assert tags["XMP-plus:LicenseEndDate"]
    assert "Demo Talent" not in json.dumps(tags) and b"Demo Talent" not in data

    verified = json.loads(cli("verify", str(target), "--json").stdout)
    assert verified["state"] == "Trusted", verified
    consent = verified["consent"]
    assert consent["detail"] == "minimal" and consent["consents"] == [consent_id]
    assert consent["validity"][0]["status"] == "active"
    assert set(consent["edits_used"]) == {"camera", "lighting"}
    assert not {"scope", "release_document_sha256"} & set(consent)

    monkeypatch.setenv("CASTKEEP_SIGNING__CONSENT_DETAIL", "full")
    get_settings.cache_clear()
    (full,) = json.loads(cli("request", str(path), "--json").stdout)["assets"]
    verified = json.loads(cli("verify", full["path"], "--json").stdout)
    assert verified["consent"]["detail"] == "full"
    assert verified["consent"]["scope"]["territories"] == ["DE", "FR", "GB", "US"]
    assert len(verified["consent"]["release_document_sha256"]) == 1


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
    assert asset["passed"] is False and asset["status"] == "rejected"
    assert len(asset["reasons"]) == 1 and "identity" in asset["reasons"][0]
    human = cli("request", "show", json.loads(res.stdout)["id"])
    assert ": REJECTED rejected" in human.stdout
    assert f"    reason: {asset['reasons'][0]}" in human.stdout

    # `asset list`: newest first, filtered by status; an unknown status is refused by name.
    (listed,) = json.loads(cli("asset", "list", "--status", "rejected", "--json").stdout)
    assert listed["id"] == asset["id"] and listed["request_id"] == json.loads(res.stdout)["id"]
    assert (listed["variant"], listed["status"]) == (0, "rejected")
    assert listed["reason"] == asset["reasons"][0] and listed["path"] == asset["path"]
    assert json.loads(cli("asset", "list", "--status", "published", "--json").stdout) == []
    assert asset["id"] in cli("asset", "list").stdout
    bad = cli("asset", "list", "--status", "gone")
    assert bad.exit_code != 0 and "candidate, approved, rejected" in str(bad.exception)


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
    res = cli("approve", out["id"], "--assets", ",".join(ids), "--reviewer", "Rev", "--json")
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


def test_user_errors_inside_flows_are_one_line_without_traceback(request_env, cli, tmp_path):
    import uuid

    path = write_request(tmp_path, request_doc(variants=1, **LIT))
    done = json.loads(cli("request", str(path), "--json").stdout)
    assert done["status"] == "completed"
    unknown = str(uuid.uuid4())

    resumed = run_castkeep("request", "resume", unknown, home=request_env.home)
    assert resumed.returncode == 2 and resumed.stdout == ""
    assert resumed.stderr.splitlines() == [
        f"error: no request {unknown}; `castkeep request list` lists request ids"]

    approved = run_castkeep("approve", done["id"], "--assets", done["assets"][0]["id"],
                         "--reviewer", "r", home=request_env.home)
    assert approved.returncode == 2 and approved.stdout == ""
    (line,) = approved.stderr.splitlines()
    assert line.startswith(f"error: request {done['id']} is completed, not awaiting")

    debug = run_castkeep("--debug", "request", "resume", unknown, home=request_env.home)
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "NotFoundError" in debug.stderr


def test_bad_engine_option_is_one_line_exit_2(request_env, tmp_path):
    path = write_request(tmp_path, request_doc(variants=1, engine_options={"bogus": 1}, **LIT))
    before = _request_rows()
    proc = run_castkeep("request", str(path), home=request_env.home)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: unknown classical option(s) ['bogus']; known: ['backdrop', 'scramble_face', "
        "'variation']"]
    assert _request_rows() == before


def test_database_lost_mid_run_is_one_line_exit_5(
    request_env, tmp_path, asset_inserts_drop_the_connection
):
    path = write_request(tmp_path, request_doc(variants=1, **LIT))
    proc = run_castkeep("request", str(path), "--json", home=request_env.home)
    assert proc.returncode == 5 and proc.stdout == ""
    (error,) = proc.stderr.splitlines()  # --json: no "submitted" note either
    assert error.startswith("error: cannot use PostgreSQL at ") and "***" in error
    assert "terminating connection" in error and "CASTKEEP_DATABASE__URL" in error


def test_export_to_an_existing_folder_names_the_file(request_env, cli, tmp_path):
    path = write_request(tmp_path, request_doc(variants=1, **LIT))
    (asset,) = json.loads(cli("request", str(path), "--json").stdout)["assets"]
    folder = tmp_path / "exports"
    folder.mkdir()
    res = cli("asset", "export", asset["id"], "-o", str(folder))
    assert res.exit_code == 0, res.output
    written = folder / f"castkeep-{asset['id']}.jpg"
    assert res.stdout.strip() == str(written)
    info = json.loads(cli("asset", "show", asset["id"], "--json").stdout)
    assert hashlib.sha256(written.read_bytes()).hexdigest() == info["sha256"]


def test_progress_is_plain_lines_off_a_terminal_and_nothing_with_json(request_env, tmp_path):
    path = write_request(tmp_path, request_doc(variants=2, **LIT))
    # The explicit form; stderr is a pipe here, so progress comes as plain lines.
    proc = run_castkeep("request", "submit", str(path), home=request_env.home)
    assert proc.returncode in (0, 1), proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("variants ")]
    assert lines[0] == "variants 0/2 (0%): passed 0, rejected 0, retries 0"
    assert lines[1].startswith("variants 1/2 (50%): passed ")
    passed, rejected = proc.stdout.count(": PASS "), proc.stdout.count(": REJECTED ")
    assert passed + rejected == 2
    assert lines[-1].startswith(f"variants 2/2 (100%): passed {passed}, rejected {rejected}, retries ")
    assert not any(line.startswith("variants ") for line in proc.stdout.splitlines())

    # The shorthand form with --json: stdout is the JSON alone, and no progress anywhere.
    quiet = run_castkeep("request", str(path), "--json", home=request_env.home)
    assert quiet.returncode in (0, 1), quiet.stderr
    assert len(json.loads(quiet.stdout)["assets"]) == 2
    assert "variants" not in quiet.stderr and "%" not in quiet.stderr
