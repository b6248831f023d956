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
