"""Verification: Trusted round trips, tampering, unknown roots, missing manifests."""

from __future__ import annotations

import pytest

from castkeep.errors import VerificationError
from castkeep.provenance.keys import init_dev_ca
from castkeep.provenance.manifest import AdherenceEntry, IdentityScore, ScoresAssertion, sign_image
from castkeep.provenance.verify import (
    DATA_HASH_MISMATCH,
    NO_MANIFEST,
    UNTRUSTED,
    sniff_media_type,
    verify_bytes,
    verify_file,
)


@pytest.fixture
def image(fixtures_dir) -> bytes:
    return (fixtures_dir / "obama3.jpg").read_bytes()


def _scores(talents):
    return ScoresAssertion(
        encoder="dlib-resnet-v1",
        identity=tuple(IdentityScore(talent_id=t, distance=0.25 + i / 10, threshold=0.6, passed=True)
                       for i, t in enumerate(talents)),
        camera=AdherenceEntry(error=2.0, threshold=5.0, passed=True, unit="deg"),
    )


def test_single_edit_round_trip_trusted(image, manifest_input_factory, dev_signer, dev_ca):
    m = manifest_input_factory(scores=_scores(["tal_0000"]))
    report = verify_bytes(sign_image(image, "image/jpeg", m, dev_signer), "image/jpeg",
                          trust_anchors=[dev_ca.root_cert])
    assert report.state == "Trusted"
    assert report.failures == []
    assert report.has_manifest and report.trusted
    assert report.signer["common_name"] == "castkeep development signer"
    assert [a["action"] for a in report.actions] == ["c2pa.opened", "c2pa.edited"]
    assert report.actions[1]["softwareAgent"]["name"] == "classical"
    assert report.ingredients == [{"title": "reference-0", "format": "image/jpeg",
                                   "relationship": "parentOf", "label": "c2pa.ingredient.v3",
                                   "instance_id": report.ingredients[0]["instance_id"]}]
    assert report.consent["talents"] == ["tal_0000"]
    assert report.consent["consents"] == ["con_0000"]
    assert report.consent["valid_until"] == "2030-12-31"
    assert report.scores["identity"][0]["distance"] == 0.25
    assert report.scores["camera"]["threshold"] == 5.0
    assert report.training_mining["cawg.ai_training"] == "notAllowed"
    assert report.model_release["plus:ModelReleaseID"] == ["con_0000"]
    assert report.signed_at is None  # no timestamp authority configured
    assert report.claimed_at is not None
    assert report.manifest_label.startswith("urn:c2pa:")


def test_group_round_trip_trusted(image, manifest_input_factory, dev_signer, dev_ca):
    refs = ("obama.jpg", "biden.jpg", "obama2.jpg")
    m = manifest_input_factory("composite", refs, scores=_scores(["tal_0000", "tal_0001", "tal_0002"]))
    report = verify_bytes(sign_image(image, "image/jpeg", m, dev_signer), "image/jpeg",
                          trust_anchors=[dev_ca.root_cert])
    assert report.state == "Trusted", report.failures
    assert [a["action"] for a in report.actions] == ["c2pa.created"] + ["c2pa.placed"] * 3
    assert [i["title"] for i in report.ingredients] == ["reference-0", "reference-1", "reference-2"]
    assert {i["relationship"] for i in report.ingredients} == {"componentOf"}
    assert report.consent["talents"] == ["tal_0000", "tal_0001", "tal_0002"]
    assert len(report.scores["identity"]) == 3


def test_flipped_image_byte_is_invalid(image, manifest_input_factory, dev_signer, dev_ca):
    signed = bytearray(sign_image(image, "image/jpeg", manifest_input_factory(), dev_signer))
    # The manifest sits in APP11 segments near the start; the tail is entropy-coded image data.
    signed[-200] ^= 0x01
    report = verify_bytes(bytes(signed), "image/jpeg", trust_anchors=[dev_ca.root_cert])
    assert report.state == "Invalid"
    assert DATA_HASH_MISMATCH in report.failures
    assert report.consent is not None  # what the manifest claims is still reported


def test_unknown_root_is_valid_untrusted(image, manifest_input_factory, dev_signer, tmp_path):
    other_root = init_dev_ca(tmp_path / "other").root_cert
    signed = sign_image(image, "image/jpeg", manifest_input_factory(), dev_signer)
    report = verify_bytes(signed, "image/jpeg", trust_anchors=[other_root])
    assert report.state == "Valid"
    assert report.failures == [UNTRUSTED]
    no_anchors = verify_bytes(signed, "image/jpeg", trust_anchors=[])
    assert no_anchors.state == "Valid" and UNTRUSTED in no_anchors.failures


def test_several_anchors(image, manifest_input_factory, dev_signer, dev_ca, tmp_path):
    other_root = init_dev_ca(tmp_path / "other").root_cert
    signed = sign_image(image, "image/jpeg", manifest_input_factory(), dev_signer)
    report = verify_bytes(signed, None, trust_anchors=[other_root, dev_ca.root_cert])
    assert report.state == "Trusted"
    assert report.media_type == "image/jpeg"


def test_ai_training_consent_flips_entries(image, manifest_input_factory, dev_signer, dev_ca):
    signed = sign_image(image, "image/jpeg", manifest_input_factory(ai_training_allowed=True), dev_signer)
    report = verify_bytes(signed, "image/jpeg", trust_anchors=[dev_ca.root_cert])
    assert report.state == "Trusted"
    assert set(report.training_mining.values()) == {"allowed"}
    assert len(report.training_mining) == 4


def test_no_manifest(image, dev_ca):
    report = verify_bytes(image, "image/jpeg", trust_anchors=[dev_ca.root_cert])
    assert report.state == "Invalid"
    assert report.failures == [NO_MANIFEST]
    assert not report.has_manifest and report.consent is None


def test_garbage_is_invalid(dev_ca):
    report = verify_bytes(b"definitely not an image", None, trust_anchors=[dev_ca.root_cert])
    assert report.state == "Invalid" and not report.has_manifest


def test_bad_trust_anchor(image, tmp_path):
    bad = tmp_path / "root.pem"
    bad.write_text("hello")
    with pytest.raises(VerificationError, match="CASTKEEP_SIGNING__TRUST_ANCHORS"):
        verify_bytes(image, "image/jpeg", trust_anchors=[bad])
    with pytest.raises(VerificationError, match="cannot read trust anchor"):
        verify_bytes(image, "image/jpeg", trust_anchors=[tmp_path / "missing.pem"])


def test_verify_file(image, manifest_input_factory, dev_signer, dev_ca, tmp_path):
    path = tmp_path / "signed.jpg"
    path.write_bytes(sign_image(image, "image/jpeg", manifest_input_factory(), dev_signer))
    report = verify_file(path, trust_anchors=[dev_ca.root_cert])
    assert report.state == "Trusted"
    as_dict = report.to_dict()
    assert as_dict["state"] == "Trusted" and as_dict["consent"]["talents"] == ["tal_0000"]
    with pytest.raises(VerificationError, match="cannot read"):
        verify_file(tmp_path / "missing.jpg", trust_anchors=[])


def test_sniff_media_type(image):
    assert sniff_media_type(image) == "image/jpeg"
    assert sniff_media_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_media_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_media_type(b"GIF89a") is None
