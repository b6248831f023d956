"""The independent lighting estimator on pictures the engine did not make (the fixture photos
and their mirror images: a mirror flips the key side) and on engine outputs, through the
variant scorer: wrong side fails, right side passes, the ratio method never scores alone."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from castkeep.models.engines.base import EditInput, get_engine
from castkeep.models.request_spec import Thresholds
from castkeep.models.scoring.light_sh import METHOD, estimate_light_sh
from castkeep.models.scoring.variant import score_variant
from castkeep.models.specs import LightingSpec

T = str(uuid.UUID(int=7))


@pytest.mark.parametrize("name", ["obama3", "biden"])
def test_a_mirror_flips_the_estimated_key_side(dlib_encoder, portrait_rgb, portrait_faces, name):
    rgb = portrait_rgb[name]
    est = estimate_light_sh(rgb, portrait_faces[name][0])["azimuth"]
    mirror = np.ascontiguousarray(rgb[:, ::-1])
    est_m = estimate_light_sh(mirror, dlib_encoder.detect(mirror, embed=False)[0])["azimuth"]
    assert abs(est) > 10.0 and est * est_m < 0, (est, est_m)


@pytest.fixture(scope="module")
def lit_from_right(portrait_rgb, portrait_faces):
    spec = LightingSpec(key_azimuth=60, key_elevation=20, fill_ratio=0.2)
    out = get_engine("classical").predict(EditInput(
        [portrait_rgb["obama"]], [portrait_faces["obama"][0]], lighting=spec,
        options={"variation": 0}))
    return out


def _lighting(encoder, portrait_rgb, portrait_faces, image, azimuth, geometry):
    face = portrait_faces["obama"][0]
    s = score_variant(
        image, encoder=encoder, talent_embeddings={T: [face.embedding]}, talent_labels={T: "a"},
        reference_faces={T: face}, reference_images={T: portrait_rgb["obama"]},
        lighting=LightingSpec(key_azimuth=azimuth, key_elevation=20, fill_ratio=0.2),
        camera=None, thresholds=Thresholds(), allow_extra_faces=False,
        preserves_geometry=geometry)
    return next(r for r in s.records if r.kind == "lighting")


def test_right_side_passes_wrong_side_fails(dlib_encoder, portrait_rgb, portrait_faces,
                                            lit_from_right):
    assert lit_from_right.metadata["preserves_geometry"] is True
    ok = _lighting(dlib_encoder, portrait_rgb, portrait_faces, lit_from_right.image, 60, True)
    assert ok.passed, ok.detail
    assert ok.detail["method"] == f"{METHOD}+ratio-reference"
    wrong = _lighting(dlib_encoder, portrait_rgb, portrait_faces, lit_from_right.image, -60, True)
    assert not wrong.passed
    assert wrong.detail["methods"][METHOD]["passed"] is False


def test_the_ratio_method_needs_the_engines_word_on_geometry(dlib_encoder, portrait_rgb,
                                                            portrait_faces, lit_from_right):
    rec = _lighting(dlib_encoder, portrait_rgb, portrait_faces, lit_from_right.image, 60, False)
    assert rec.detail["method"] == METHOD
    assert set(rec.detail["methods"]) == {METHOD}
    assert rec.passed, rec.detail


def test_key_side_matches_the_hand_labels_on_photos_and_mirrors(dlib_encoder, portrait_rgb,
                                                               portrait_faces, fixtures_dir):
    import json

    labels = json.loads((fixtures_dir / "key_side.json").read_text())
    for file, label in labels.items():
        if file.startswith("_"):
            continue
        name = file.removesuffix(".jpg")
        rgb = portrait_rgb[name]
        sign = -1.0 if label["key_side"] == "left" else 1.0
        assert estimate_light_sh(rgb, portrait_faces[name][0])["azimuth"] * sign > 0, name
        mirror = np.ascontiguousarray(rgb[:, ::-1])
        est_m = estimate_light_sh(mirror, dlib_encoder.detect(mirror, embed=False)[0])["azimuth"]
        assert est_m * sign < 0, f"{name} mirrored"
