from __future__ import annotations

import datetime as dt

import pytest

from castkeep.provenance.consent import ConsentTerms
from castkeep.tasks.sign import combined_scope, edit_description
from castkeep.models.specs import parse_camera, parse_lighting


def _terms(cid, territories, edits=("lighting", "camera"), ai=False):
    return ConsentTerms(
        id=cid, talent_id="t", valid_from=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
        valid_until=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc), channels=("social", "web"),
        territories=tuple(territories), purposes=("advertising",), edits=tuple(edits),
        synthetic_likeness=True, ai_training=ai,
    )


def test_combined_scope_is_what_every_consent_allows():
    scope = combined_scope([_terms("a", ["WORLD"], ai=True), _terms("b", ["FR", "DE"],
                                                                      edits=("lighting",))])
    assert scope.territories == ("DE", "FR")
    assert scope.edits == ("lighting",)
    assert scope.ai_training is False and scope.synthetic_likeness is True
    assert combined_scope([_terms("a", ["WORLD"])]).territories == ("WORLD",)
    assert combined_scope([_terms("a", ["FR"]), _terms("b", ["DE"])]).territories == ()


def test_edit_description_names_specs_and_licence_not_scene_text():
    text = edit_description("classical", parse_lighting("azimuth=45"), parse_camera("roll=8"),
                            True, True, "lic-1")
    assert text.startswith("classical (licence lic-1): group composite; relight (azimuth=45")
    assert "camera (yaw=0,pitch=0,roll=8" in text and text.endswith("scene changed")


def test_stored_asset_carries_the_gc_grace_stamp(fs_store, manifest_input_factory, tmp_path):
    """The object is stored before its rows commit; its stored-at stamp keeps `castkeep gc`
    from collecting it while the run is still cataloguing it."""
    import numpy as np

    from castkeep.db.catalogue import STORED_AT_META
    from castkeep.provenance.keys import init_dev_ca
    from castkeep.provenance.signing import SignerConfig, make_signer
    from castkeep.tasks.sign import sign_and_store

    paths = init_dev_ca(tmp_path / "keys")
    signer = make_signer(SignerConfig(paths.chain, paths.private_key))
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    try:
        rgb = np.full((32, 24, 3), 128, dtype=np.uint8)
        signed = sign_and_store(rgb, manifest_input_factory(), signer, fs_store)
    finally:
        signer.close()
    after = dt.datetime.now(dt.timezone.utc)
    assert signed.object_key.startswith("assets/")
    stamp = dt.datetime.fromisoformat(fs_store.stat(signed.object_key).metadata[STORED_AT_META])
    assert before <= stamp <= after


def _reference(talent_id: str, consent_id: str):
    import uuid

    from castkeep.tasks.references import Reference

    data = b"reference bytes"
    return Reference(reference_portrait_id=uuid.uuid4(), talent_id=talent_id,
                     consent_id=consent_id, sha256="0" * 64, object_key="references/x.jpg",
                     media_type="image/jpeg", data=data, rgb=None, face=None, quality={})


def _manifest(engine="classical", minor=False, rights=None):
    import dataclasses

    from castkeep.tasks.sign import RightsConfig, build_manifest

    a = dataclasses.replace(_terms("c-0001", ["FR", "DE"]), minor=minor,
                            release_doc_sha256="ab" * 32)
    return build_manifest(
        title="t.jpg", references=[_reference("t-0001", "c-0001")], consents=[a],
        engine_name=engine, engine_version="1", description="relight", scores=None,
        use={"channel": "web", "territory": "FR", "purpose": "advertising",
             "edits": ["lighting"], "publish_date": "2026-12-01"},
        rights=rights or RightsConfig(),
    )


def test_source_type_follows_the_engine():
    assert _manifest("classical").digital_source_type == "compositeWithTrainedAlgorithmicMedia"
    m = _manifest("qwen")
    assert m.digital_source_type == m.rights.digital_source_type == "trainedAlgorithmicMedia"


def test_rights_metadata_is_this_assets_use_and_restrictions():
    m = _manifest(minor=True)
    r = m.rights
    assert r.usage_terms == ("Licensed use only: channel web, territory FR, purpose advertising; "
                             "publish from 2026-12-01 until 2030-01-01. Any other use needs a new "
                             "consent check.")
    assert "social" not in r.usage_terms and "DE" not in r.usage_terms  # not the whole scope
    assert r.consent_ids == ("c-0001",) and r.minor is True
    assert r.license_end == dt.date(2030, 1, 1)
    assert r.instructions.startswith("Do not alter background, wardrobe, expression, group_composite")
    assert "minor" in r.instructions and "Not for AI training" in r.instructions
    assert r.web_statement is None and r.creator is None
    assert _manifest().rights.minor is False


def test_consent_detail_setting_shapes_the_assertion():
    from castkeep.provenance.assertions import consent_assertion
    from castkeep.tasks.sign import RightsConfig

    minimal = _manifest().consent
    assert minimal.detail == "minimal" and minimal.edits_used == ("lighting",)
    assert [(v.consent, v.status) for v in minimal.validity] == [("c-0001", "active")]
    data = consent_assertion(minimal, ())["data"]
    assert "scope" not in data and "release_document_sha256" not in data
    full = consent_assertion(_manifest(rights=RightsConfig(consent_detail="full")).consent, ())
    assert full["data"]["release_document_sha256"] == ["ab" * 32]
    assert full["data"]["scope"]["territories"] == ["DE", "FR"]


@pytest.mark.parametrize(("field", "value", "setting"), [
    ("consent_detail", "everything", "CONSENT_DETAIL"),
    ("creator", "two\nlines", "CREATOR"),
    ("rights_url", "file:///etc/passwd", "RIGHTS_URL"),
])
def test_bad_rights_settings_name_the_setting(field, value, setting):
    from castkeep.errors import ConfigurationError
    from castkeep.tasks.sign import RightsConfig

    with pytest.raises(ConfigurationError, match=f"CASTKEEP_SIGNING__{setting}"):
        RightsConfig(**{field: value})
