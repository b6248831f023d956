"""Scoring on real photos with the real dlib encoder: a synthetic group photo of two people."""

from __future__ import annotations

import uuid

import pytest

from castkeep.models.request_spec import Thresholds
from castkeep.tasks.score import NOT_FOUND_DISTANCE, score_variant
from tests.plugins.faces import side_by_side

A, B = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture(scope="module")
def group(portrait_rgb):
    canvas, _, _ = side_by_side(portrait_rgb["obama"], portrait_rgb["biden"], height=400)
    return canvas


def _refs(portrait_faces, *names):
    return {tid: [portrait_faces[n][0].embedding] for tid, n in names}


def test_every_talent_found_in_a_group(dlib_encoder, portrait_faces, group):
    s = score_variant(group, encoder=dlib_encoder,
                      talent_embeddings=_refs(portrait_faces, (A, "obama2"), (B, "biden")),
                      talent_labels={A: "a", B: "b"}, lighting=None, camera=None,
                      thresholds=Thresholds(), allow_extra_faces=False)
    assert s.passed, s.reasons
    ident = {str(r.talent_id): r for r in s.records if r.kind == "identity"}
    assert set(ident) == {A, B} and all(r.passed for r in ident.values())
    assert ident[A].face_index != ident[B].face_index
    assert len(s.faces) == 2


def test_unconsented_extra_face_fails_unless_allowed(dlib_encoder, portrait_faces, group):
    refs = _refs(portrait_faces, (A, "obama2"))
    strict = score_variant(group, encoder=dlib_encoder, talent_embeddings=refs,
                           talent_labels={A: "a"}, lighting=None, camera=None,
                           thresholds=Thresholds(), allow_extra_faces=False)
    assert not strict.passed
    assert any("1 extra face(s)" in r for r in strict.reasons)
    lenient = score_variant(group, encoder=dlib_encoder, talent_embeddings=refs,
                            talent_labels={A: "a"}, lighting=None, camera=None,
                            thresholds=Thresholds(), allow_extra_faces=True)
    assert lenient.passed, lenient.reasons


def test_missing_talent_and_tight_identity_threshold(dlib_encoder, portrait_faces, portrait_rgb):
    alone = portrait_rgb["obama"]
    s = score_variant(alone, encoder=dlib_encoder,
                      talent_embeddings=_refs(portrait_faces, (A, "obama2"), (B, "biden")),
                      talent_labels={A: "a", B: "b"}, lighting=None, camera=None,
                      thresholds=Thresholds(), allow_extra_faces=False)
    assert s.reasons == ("identity: talent b not found in the output (1 face(s) detected)",)
    missing = next(r for r in s.records if r.kind == "identity" and str(r.talent_id) == B)
    assert missing.value == NOT_FOUND_DISTANCE and not missing.passed
    tight = score_variant(alone, encoder=dlib_encoder,
                          talent_embeddings=_refs(portrait_faces, (A, "obama2")),
                          talent_labels={A: "a"}, lighting=None, camera=None,
                          thresholds=Thresholds(identity_distance=0.01), allow_extra_faces=False)
    assert tight.reasons[0].startswith("identity: talent a distance ")
