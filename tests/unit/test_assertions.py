"""castkeep's own assertions: no PII accepted, training-mining, PLUS model release, scores."""

from __future__ import annotations

import pydantic
import pytest

from castkeep.provenance.assertions import (
    PLUS_VOCAB,
    TRAINING_MINING_USES,
    AdherenceEntry,
    ConsentAssertion,
    IdentityScore,
    ScopeSummary,
    ScoresAssertion,
    alteration_constraints,
    consent_assertion,
    model_release_assertion,
    scores_assertion,
    training_mining_assertion,
)


@pytest.mark.parametrize("talent", ["Barack Obama", "barack@example.com", "", "x" * 200])
def test_talent_ids_must_be_pseudonymous(talent):
    with pytest.raises(pydantic.ValidationError):
        ConsentAssertion(talents=(talent,), consents=("con_1",))


def test_release_doc_hash_must_be_sha256():
    with pytest.raises(pydantic.ValidationError):
        ConsentAssertion(talents=("tal_1",), consents=("con_1",), release_doc_sha256s=("release.pdf",))


def test_scope_terms_are_tokens():
    with pytest.raises(pydantic.ValidationError):
        ScopeSummary(channels=("billboards near Barack's house",))


def test_consent_assertion_shape():
    consent = ConsentAssertion(
        talents=("tal_1", "tal_2"), consents=("con_1", "con_2"),
        scope=ScopeSummary(channels=("web",), edits=("lighting",)),
        valid_until="2031-06-30", release_doc_sha256s=("ab" * 32,), detail="full",
    )
    out = consent_assertion(consent, ("background",))
    assert out["label"] == "com.castkeep.consent"
    data = out["data"]
    assert data["schema"].endswith("/consent/v2") and data["detail"] == "full"
    assert data["talents"] == ["tal_1", "tal_2"]
    assert data["consents"] == ["con_1", "con_2"]
    assert data["valid_until"] == "2031-06-30"
    assert data["release_document_sha256"] == ["ab" * 32]
    assert data["scope"]["channels"] == ["web"] and data["scope"]["ai_training"] is False
    assert data["forbidden_edits"] == ["background"]


def test_minimal_consent_assertion_keeps_scope_and_document_hashes_out():
    """The default public assertion: consent ids, status at signing, validity window and the
    edits used; the scope terms and release-document hashes only at detail=full."""
    from castkeep.provenance.assertions import ConsentValidity

    consent = ConsentAssertion(
        talents=("tal_1",), consents=("con_1",),
        scope=ScopeSummary(channels=("web",), territories=("FR",), edits=("lighting",)),
        valid_until="2031-06-30", release_doc_sha256s=("ab" * 32,),
        validity=(ConsentValidity(consent="con_1", status="active", valid_from="2025-01-01",
                                  valid_until="2031-06-30"),),
        edits_used=("lighting",),
    )
    data = consent_assertion(consent, ("background",))["data"]
    assert data["detail"] == "minimal"
    assert data["validity"] == [{"consent": "con_1", "status": "active",
                                 "valid_from": "2025-01-01", "valid_until": "2031-06-30"}]
    assert data["edits_used"] == ["lighting"] and data["consents"] == ["con_1"]
    assert not {"scope", "release_document_sha256", "forbidden_edits"} & set(data)
    assert "ab" * 32 not in str(data) and "FR" not in str(data)


def test_edits_used_and_detail_are_vocabulary():
    with pytest.raises(pydantic.ValidationError, match="edit kinds"):
        ConsentAssertion(talents=("t",), consents=("c",), edits_used=("tattoos",))
    with pytest.raises(pydantic.ValidationError):
        ConsentAssertion(talents=("t",), consents=("c",), detail="everything")


@pytest.mark.parametrize(("allowed", "use"), [(False, "notAllowed"), (True, "allowed")])
def test_training_mining(allowed, use):
    out = training_mining_assertion(allowed)
    assert out["label"] == "cawg.training-mining"
    assert set(out["data"]["entries"]) == set(TRAINING_MINING_USES)
    assert len(TRAINING_MINING_USES) == 4
    assert {e["use"] for e in out["data"]["entries"].values()} == {use}


def test_model_release_uses_plus_vocabulary():
    consent = ConsentAssertion(talents=("tal_1",), consents=("con_1", "con_2"),
                               valid_until="2031-06-30")
    out = model_release_assertion(consent, ("lighting", "background"))
    assert out["label"] == "c2pa.metadata"
    data = out["data"]
    assert data["@context"]["plus"] == "http://ns.useplus.org/ldf/xmp/1.0/"
    assert data["plus:ModelReleaseStatus"] == PLUS_VOCAB + "MR-LMR"
    assert data["plus:ModelReleaseID"] == ["con_1", "con_2"]
    assert data["plus:LicenseEndDate"] == "2031-06-30"
    assert data["plus:ImageAlterationConstraints"] == [PLUS_VOCAB + "IMAL-NMER", PLUS_VOCAB + "IMAL-NRET"]


def test_no_constraints_when_nothing_forbidden():
    consent = ConsentAssertion(talents=("tal_1",), consents=("con_1",))
    data = model_release_assertion(consent, ())["data"]
    assert "plus:ImageAlterationConstraints" not in data
    assert "plus:LicenseEndDate" not in data
    assert alteration_constraints(("camera",)) == [PLUS_VOCAB + "IMAL-NRET"]


def test_unknown_release_status_refused():
    with pytest.raises(pydantic.ValidationError):
        ConsentAssertion(talents=("tal_1",), consents=("con_1",), model_release_status="yes")


def test_scores_assertion():
    scores = ScoresAssertion(
        encoder="dlib-resnet-v1@19.24",
        identity=(IdentityScore(talent_id="tal_1", distance=0.31, threshold=0.6, passed=True,
                                face_index=0),),
        lighting=AdherenceEntry(error=12.5, threshold=35.0, passed=True, unit="deg"),
    )
    out = scores_assertion(scores)
    assert out["label"] == "com.castkeep.scores"
    data = out["data"]
    assert data["encoder"] == "dlib-resnet-v1@19.24"
    assert data["identity"][0] == {"talent_id": "tal_1", "distance": 0.31, "threshold": 0.6,
                                   "passed": True, "face_index": 0}
    assert data["lighting"]["error"] == 12.5
    assert "camera" not in data
