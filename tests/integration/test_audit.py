"""The audit flow and its checks on a real catalogue (bundled PostgreSQL, filesystem store, real
C2PA signatures, real dlib faces): a clean catalogue audits clean, and each kind of tampering is
found on exactly the asset it was done to."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from tests.plugins.compliance import flip_byte

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _kinds(report) -> set[tuple[str, str | None]]:
    return {(v["kind"], v["asset_id"]) for v in report["violations"]}


def _set_consent(cat, person: str, **values) -> None:
    from castkeep.db import schema

    with cat.runtime.sessions.begin() as s:
        s.execute(sa.update(schema.Consent).where(schema.Consent.id == cat.consents[person]).values(**values))


def _tamper_audit_row(cat, seq: int) -> str:
    """Edit one audit_event row past its append-only trigger, as a superuser could."""
    from castkeep.db import schema

    with cat.runtime.engine.connect() as conn:
        with conn.begin():
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(
                sa.update(schema.AuditEvent).where(schema.AuditEvent.seq == seq).values(actor="someone-else")
            )
        return str(conn.execute(sa.select(schema.AuditEvent.id).where(schema.AuditEvent.seq == seq)).scalar_one())


def _resign_untrusted(cat, name: str, tmp_path, manifest_input_factory, portrait_rgb, image: str) -> None:
    """Replace an asset with the same picture signed by a CA the audit does not trust, and update
    the catalogue to match (so only the manifest check can notice)."""
    from castkeep.db import schema
    from castkeep.models.imaging import encode_image
    from castkeep.provenance.keys import init_dev_ca
    from castkeep.provenance.manifest import sign_image
    from castkeep.provenance.signing import SignerConfig, make_signer

    rogue = init_dev_ca(tmp_path / "rogue-keys")
    signer = make_signer(SignerConfig(chain_path=rogue.chain, key_path=rogue.private_key))
    try:
        data = sign_image(encode_image(portrait_rgb[image], "JPEG", quality=90), "image/jpeg",
                          manifest_input_factory(title="forged.jpg"), signer)
    finally:
        signer.close()
    stored = cat.runtime.store.put_bytes(data, prefix="assets", ext="jpg", media_type="image/jpeg")
    with cat.runtime.sessions.begin() as s:
        s.execute(
            sa.update(schema.Asset)
            .where(schema.Asset.id == cat.assets[name])
            .values(sha256=stored.sha256, object_key=stored.key)
        )


def test_clean_catalogue_audits_clean(compliance_catalogue):
    from castkeep.flows.audit import audit

    cat = compliance_catalogue(untracked=False)
    report = audit()
    assert report["violations"] == [] and report["clean"] is True
    assert report["checked"] == 2
    # obama2 matches obama's reference and biden matches biden's: both linked, so not violations.
    assert report["identity_matches"] == 2
    assert report["audit_events_checked"] >= 4
    assert report["expiring"] == []
    stored = json.loads(cat.runtime.store.get_bytes(report["report_keys"]["json"]))
    assert stored["checked"] == 2 and stored["violations"] == []
    assert "result: clean" in cat.runtime.store.get_bytes(report["report_keys"]["md"]).decode()
    csv_text = cat.runtime.store.get_bytes(report["report_keys"]["csv"]).decode()
    assert csv_text.splitlines() == ["kind,asset_id,talent_id,consent_id,detail"]


def test_audit_finds_each_kind_of_violation_on_the_right_asset(
    compliance_catalogue, tmp_path, manifest_input_factory, portrait_rgb
):
    from castkeep.flows.audit import audit

    cat = compliance_catalogue(untracked=True)
    a, b, u = (str(cat.assets[n]) for n in ("a_obama", "b_biden", "untracked"))
    # 1. tampered object: bytes changed under the same key
    flip_byte(cat.runtime.store, cat.keys["b_biden"])
    # 2. forged manifest: consistent catalogue row, untrusted signer
    _resign_untrusted(cat, "a_obama", tmp_path, manifest_input_factory, portrait_rgb, "obama2")
    # 3. expired consent (biden's covers b_biden and untracked)
    _set_consent(cat, "biden", valid_until=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    # 4. edited audit row
    edited_id = _tamper_audit_row(cat, seq=2)

    report = audit()
    kinds = _kinds(report)
    assert ("hash_mismatch", b) in kinds
    assert ("manifest_untrusted", a) in kinds and ("hash_mismatch", a) not in kinds
    assert ("consent_invalid", b) in kinds and ("consent_invalid", u) in kinds
    assert ("consent_invalid", a) not in kinds
    # 5. untracked face: obama's face in an asset linked only to biden
    untracked = [v for v in report["violations"] if v["kind"] == "untracked_face"]
    assert [(v["asset_id"], v["talent_id"]) for v in untracked] == [(u, str(cat.talents["obama"]))]
    chain = [v for v in report["violations"] if v["kind"] == "audit_chain_broken"]
    assert chain and chain[0]["asset_id"] is None and edited_id in chain[0]["detail"]
    expired = next(v for v in report["violations"] if v["kind"] == "consent_invalid" and v["asset_id"] == b)
    assert "expired" in expired["detail"] and expired["consent_id"] == str(cat.consents["biden"])
    assert report["clean"] is False and report["counts"]["untracked_face"] == 1
    # 6. the consent row edited in SQL (step 3) differs from what its consent.granted recorded
    tampered = [v for v in report["violations"] if v["kind"] == "consent_tampered"]
    assert [v["consent_id"] for v in tampered] == [str(cat.consents["biden"])] and "valid_until" in tampered[0]["detail"]
    csv_rows = cat.runtime.store.get_bytes(report["report_keys"]["csv"]).decode().splitlines()
    assert len(csv_rows) == 1 + len(report["violations"])


def test_missing_object_and_missing_link(compliance_catalogue):
    from castkeep.db import schema
    from castkeep.flows.audit import audit

    cat = compliance_catalogue(untracked=False)
    cat.runtime.store.delete(cat.keys["a_obama"])
    with cat.runtime.sessions.begin() as s:
        s.execute(sa.delete(schema.Lineage).where(schema.Lineage.asset_id == cat.assets["b_biden"]))
    kinds = _kinds(audit())
    a, b = str(cat.assets["a_obama"]), str(cat.assets["b_biden"])
    assert ("object_missing", a) in kinds
    assert ("no_consent_link", b) in kinds
    # biden's face in b_biden is now untracked too: the asset lost its link to him.
    assert ("untracked_face", b) in kinds


def test_expiring_consents_list_the_assets_they_cover(compliance_catalogue):
    from castkeep.flows.audit import audit

    cat = compliance_catalogue(untracked=True)
    _set_consent(cat, "obama", valid_until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=10))
    report = audit(expiring_within_days=30)
    assert [(e["consent_id"], e["asset_ids"]) for e in report["expiring"]] == [
        (str(cat.consents["obama"]), [str(cat.assets["a_obama"])])
    ]
    assert audit(expiring_within_days=5)["expiring"] == []


def test_talent_filter_and_report_files(compliance_catalogue, tmp_path):
    from castkeep.flows.audit import audit

    cat = compliance_catalogue(untracked=True)
    report = audit(talent="T-obama", out_dir=str(tmp_path / "out"))
    # Only a_obama is linked to obama; the sweep for obama still finds his face in `untracked`.
    assert report["checked"] == 1 and report["talent_id"] == str(cat.talents["obama"])
    assert _kinds(report) == {("untracked_face", str(cat.assets["untracked"]))}
    files = report["report_files"]
    assert sorted(files) == ["csv", "json", "md"]
    on_disk = json.loads(open(files["json"]).read())
    assert on_disk["violations"] == report["violations"]
    biden = audit(talent=str(cat.talents["biden"]))
    assert biden["checked"] == 2 and biden["violations"] == []


def test_audit_run_is_recorded_in_the_audit_log(compliance_catalogue):
    from castkeep.db import schema
    from castkeep.flows.audit import audit

    cat = compliance_catalogue(untracked=False)
    report = audit()
    with cat.runtime.sessions() as s:
        last = s.scalars(sa.select(schema.AuditEvent).order_by(schema.AuditEvent.seq.desc()).limit(1)).one()
    assert last.kind == "audit.completed" and last.payload["report_key"] == report["report_keys"]["json"]


def test_audit_run_anchors_the_log_and_the_next_run_sees_a_cut_tail(compliance_catalogue):
    from castkeep.db import schema
    from castkeep.db.audit_anchor import load_key, read_checkpoints
    from castkeep.flows.audit import audit
    from tests.plugins.compliance import delete_newest_audit_rows

    cat = compliance_catalogue(untracked=False)
    first = audit()
    with cat.runtime.sessions() as s:
        last = s.scalars(sa.select(schema.AuditEvent).order_by(schema.AuditEvent.seq.desc()).limit(1)).one()
    assert last.kind == "audit.completed" and first["checkpoint"]["seq"] == last.seq
    good, bad = read_checkpoints(cat.runtime.store, load_key(cat.home / "keys" / "audit-anchor.key", create=False))
    assert bad == []
    assert [(c.seq, c.hash, c.object_key) for c in good] == [(last.seq, last.hash, first["checkpoint"]["key"])]

    delete_newest_audit_rows(cat.runtime.engine, 2)  # the audit.completed event and the asset before it
    second = audit()
    assert second["clean"] is False
    assert [(v["kind"], v["asset_id"]) for v in second["violations"]] == [("audit_log_rows_missing", None)]
    assert f"rows {last.seq - 1}..{last.seq} missing" in second["violations"][0]["detail"]


def test_consent_row_edited_outside_castkeep_is_reported(compliance_catalogue):
    from castkeep.flows.audit import audit

    cat = compliance_catalogue(untracked=False)
    _set_consent(cat, "obama", scope={"channels": ["web", "tv"], "territories": ["FR", "DE"],
                                      "purposes": ["advertising"], "edits": ["lighting", "camera"]})
    report = audit()
    tampered = [v for v in report["violations"] if v["kind"] == "consent_tampered"]
    assert [(v["consent_id"], v["talent_id"], v["asset_id"]) for v in tampered] == [
        (str(cat.consents["obama"]), str(cat.talents["obama"]), None)
    ]
    assert "scope.channels" in tampered[0]["detail"] and '"tv"' in tampered[0]["detail"]
    assert report["clean"] is False and report["counts"] == {"consent_tampered": 1}
    # The talent filter keeps it to that talent's consents.
    assert audit(talent="T-biden")["violations"] == []


def test_unknown_talent_is_a_clear_error(compliance_catalogue):
    from castkeep.errors import NotFoundError
    from castkeep.flows.audit import audit

    compliance_catalogue(untracked=False)
    with pytest.raises(NotFoundError):
        audit(talent="T-nobody")


def test_catalogue_made_by_the_real_flows_audits_clean(request_env, fulfil):
    """Ingest (samples) + fulfil_request (classical engine) + audit: the flows' own lineage,
    recorded use, faces and signatures satisfy every check."""
    from castkeep.flows.audit import audit
    from tests.plugins.request import request_doc

    summary = fulfil(request_doc(lighting={"azimuth": 60}, thresholds={"lighting_azimuth_deg": 60}))
    assert [a["status"] for a in summary["assets"]] == ["published", "published"], summary
    report = audit()
    assert report["checked"] == 2
    assert report["violations"] == [], report["violations"]
    # The published faces were found by the sweep and matched to their (linked) talent.
    assert report["identity_matches"] >= 2
