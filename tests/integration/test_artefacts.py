"""The seam/halo check: the classical 1.0 engine's extreme-spec output (kept as a fixture) fails
it; the reference itself and today's output for an ordinary spec pass."""

from __future__ import annotations

import uuid

from castkeep.models.engines.base import EditInput, get_engine
from castkeep.models.imaging import load_image
from castkeep.models.request_spec import Thresholds
from castkeep.models.scoring.artefacts import METHOD, seam_ratio
from castkeep.models.scoring.variant import score_variant
from castkeep.models.specs import parse_lighting

T = str(uuid.UUID(int=9))
EXTREME = "azimuth=-90,fill=0,hardness=hard"


def _quality(encoder, image, rgb, face, light):
    s = score_variant(
        image, encoder=encoder, talent_embeddings={T: [face.embedding]}, talent_labels={T: "a"},
        reference_faces={T: face}, reference_images={T: rgb}, lighting=parse_lighting(light),
        camera=None, thresholds=Thresholds(), allow_extra_faces=False, preserves_geometry=True)
    return s, next(r for r in s.records if r.kind == "quality")


def test_the_old_extreme_spec_seam_fails(dlib_encoder, fixtures_dir, portrait_rgb, portrait_faces):
    seam = load_image(fixtures_dir / "extreme_spec_classical_v1.jpg").rgb
    s, q = _quality(dlib_encoder, seam, portrait_rgb["obama"], portrait_faces["obama"][0], EXTREME)
    assert not q.passed and not s.passed
    assert q.detail["seam_ratio"] > Thresholds().max_seam_ratio
    assert METHOD in q.detail["method"]
    assert any("seam or halo" in r for r in s.reasons)


def test_reference_and_an_ordinary_relight_have_no_seam(dlib_encoder, portrait_rgb,
                                                        portrait_faces):
    rgb, face = portrait_rgb["obama"], portrait_faces["obama"][0]
    assert seam_ratio(rgb, face, rgb, face)["seam_ratio"] == 0.0
    light = "azimuth=60,elevation=30,fill=0.2,temp=4500"
    out = get_engine("classical").predict(
        EditInput([rgb], [face], lighting=parse_lighting(light), seed=1)).image
    s, q = _quality(dlib_encoder, out, rgb, face, light)
    assert q.passed and s.passed, s.reasons
    assert q.detail["seam_ratio"] < Thresholds().max_seam_ratio


def test_todays_engine_renders_the_extreme_spec_without_a_seam(dlib_encoder, portrait_rgb,
                                                              portrait_faces):
    rgb, face = portrait_rgb["biden"], portrait_faces["biden"][0]
    out = get_engine("classical").predict(
        EditInput([rgb], [face], lighting=parse_lighting(EXTREME), seed=0)).image
    _, q = _quality(dlib_encoder, out, rgb, face, EXTREME)
    assert q.passed, q.detail
    assert q.detail["seam_ratio"] < 0.5 * Thresholds().max_seam_ratio
