from __future__ import annotations

import datetime as dt

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
