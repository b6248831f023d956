"""Scoring on real photos with the real dlib encoder: a synthetic group photo of two people."""

from __future__ import annotations

import uuid

import pytest

from castkeep.models.request_spec import Thresholds
from castkeep.models.specs import parse_lighting
from castkeep.models.scoring.variant import (
    COARSE_FRACTION,
    EXTRA_FACE_MIN_REL,
    NOT_FOUND_DISTANCE,
    score_variant,
)
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


def _relit(portrait_rgb, portrait_faces, names, azimuth):
    from castkeep.models.engines.base import EditInput, get_engine

    return get_engine("classical").predict(EditInput(
        references=[portrait_rgb[n] for n in names],
        faces=[portrait_faces[n][0] for n in names],
        lighting=parse_lighting(f"azimuth={azimuth},fill=0.2"),
        seed=3,
        options={"variation": 0},  # the spec exactly: these tests judge the scorer, not the jitter
    )).image


def _lighting(scores):
    return next(r for r in scores.records if r.kind == "lighting")


@pytest.mark.parametrize("azimuth", [-60, 45])
def test_lighting_is_scored_against_the_reference_photo(dlib_encoder, portrait_faces,
                                                        portrait_rgb, azimuth):
    out = _relit(portrait_rgb, portrait_faces, ("obama",), azimuth)
    common = dict(encoder=dlib_encoder, talent_embeddings=_refs(portrait_faces, (A, "obama")),
                  talent_labels={A: "a"}, camera=None, allow_extra_faces=False)
    refs = dict(reference_faces={A: portrait_faces["obama"][0]},
                reference_images={A: portrait_rgb["obama"]}, preserves_geometry=True)
    right = score_variant(out, lighting=parse_lighting(f"azimuth={azimuth}"),
                          thresholds=Thresholds(lighting_azimuth_deg=15), **refs, **common)
    light = _lighting(right)
    assert right.passed, right.reasons
    assert light.detail["relative_to_reference"] is True and light.value <= 15
    # Never the ratio alone: the independent estimator measured too, and both passed.
    assert light.detail["method"] == "sh1-generic-face+ratio-reference"
    assert all(m["passed"] for m in light.detail["methods"].values())
    # The key on the other side is told apart: a clear failure, not a near miss.
    wrong = score_variant(out, lighting=parse_lighting(f"azimuth={-azimuth}"),
                          thresholds=Thresholds(), **refs, **common)
    assert not wrong.passed and _lighting(wrong).value > 60
    assert any(r.startswith("lighting: error") for r in wrong.reasons)
    # Without the reference the output alone is judged, by the independent method only.
    alone = score_variant(out, lighting=parse_lighting(f"azimuth={azimuth}"),
                          thresholds=Thresholds(), **common)
    assert _lighting(alone).detail["method"] == "sh1-generic-face"
    assert _lighting(alone).passed


def test_group_lighting_uses_each_talents_own_reference(dlib_encoder, portrait_faces,
                                                       portrait_rgb):
    out = _relit(portrait_rgb, portrait_faces, ("obama", "biden"), -45)
    s = score_variant(
        out, encoder=dlib_encoder,
        talent_embeddings=_refs(portrait_faces, (A, "obama"), (B, "biden")),
        talent_labels={A: "a", B: "b"},
        reference_faces={A: portrait_faces["obama"][0], B: portrait_faces["biden"][0]},
        reference_images={A: portrait_rgb["obama"], B: portrait_rgb["biden"]},
        lighting=parse_lighting("azimuth=-45"), camera=None,
        thresholds=Thresholds(lighting_azimuth_deg=15), allow_extra_faces=False,
        preserves_geometry=True,
    )
    light = _lighting(s)
    assert s.passed, s.reasons
    assert light.detail["faces"] == 2 and light.detail["relative_to_reference"] is True


@pytest.mark.parametrize("share", [0.5, 0.8])
def test_smaller_extra_face_is_still_caught(dlib_encoder, portrait_faces, portrait_rgb, share):
    """A portrait cropped round the talent (found by the coarse pass) beside another person
    whose face is smaller (only the fine pass, down to EXTRA_FACE_MIN_REL of the talent's
    height, sees it): still an extra face."""
    canvas, big, h = _talent_beside_smaller(portrait_faces, portrait_rgb, share)
    assert max(canvas.shape[:2]) / COARSE_FRACTION > share * h > EXTRA_FACE_MIN_REL * h
    s = score_variant(canvas, encoder=dlib_encoder,
                      talent_embeddings=_refs(portrait_faces, (A, "obama2")),
                      talent_labels={A: "a"}, lighting=None, camera=None,
                      thresholds=Thresholds(), allow_extra_faces=False)
    assert len(s.faces) == 2
    assert not s.passed and any("1 extra face(s)" in r for r in s.reasons)
    ident = next(r for r in s.records if r.kind == "identity")
    assert ident.passed and s.faces[ident.face_index].box[0] < big.shape[1]


def _talent_beside_smaller(portrait_faces, portrait_rgb, share):
    """A crop round obama's face beside biden scaled to `share` of its face height:
    (canvas, the crop, obama's face height)."""
    import cv2
    import numpy as np

    x0, y0, x1, y1 = (int(v) for v in portrait_faces["obama"][0].box)
    h = y1 - y0
    big = portrait_rgb["obama"][max(0, y0 - h // 2):y1 + h, max(0, x0 - h // 2):x1 + h // 2]
    other = portrait_rgb["biden"]
    bh = portrait_faces["biden"][0].box[3] - portrait_faces["biden"][0].box[1]
    k = share * h / bh
    small = cv2.resize(other, (round(other.shape[1] * k), round(other.shape[0] * k)),
                       interpolation=cv2.INTER_AREA)
    canvas = np.full((max(big.shape[0], small.shape[0]), big.shape[1] + small.shape[1] + 40, 3),
                     128, np.uint8)
    canvas[:big.shape[0], :big.shape[1]] = big
    canvas[:small.shape[0], big.shape[1] + 40:] = small
    return canvas, big, h


@pytest.mark.parametrize("case", ["extra face only the fine pass sees", "relit portrait"])
def test_fine_pass_alongside_the_scorers_gives_the_serial_result(
        dlib_encoder, portrait_faces, portrait_rgb, case):
    """score_variant judges the coarse pass's faces while the fine pass runs, and again if that
    pass finds a new face: the records are those of detecting fully first, then judging."""
    from castkeep.models.scoring.variant import _detect_and_assign, _judge

    if case == "relit portrait":
        from castkeep.models.engines.base import EditInput, get_engine

        rgb = get_engine("classical").predict(EditInput(
            [portrait_rgb["obama"]], [portrait_faces["obama"][0]],
            lighting=parse_lighting("azimuth=60,fill=0.2"))).image
    else:
        rgb, _, _ = _talent_beside_smaller(portrait_faces, portrait_rgb, 0.5)
    kwargs = dict(talent_embeddings=_refs(portrait_faces, (A, "obama")), talent_labels={A: "a"},
                  reference_faces={A: portrait_faces["obama"][0]},
                  reference_images={A: portrait_rgb["obama"]},
                  lighting=parse_lighting("azimuth=60,fill=0.2"), camera=None,
                  thresholds=Thresholds(), allow_extra_faces=False, preserves_geometry=True)
    s = score_variant(rgb, encoder=dlib_encoder, **kwargs)
    faces, assignment = _detect_and_assign(rgb, dlib_encoder, kwargs["talent_embeddings"], 0.0)
    records, reasons = _judge(rgb, faces, assignment, info=dlib_encoder.info, **kwargs)
    assert s.records == tuple(records) and s.reasons == tuple(reasons)
    assert [f.box for f in s.faces] == [f.box for f in faces]
    assert s.overlapped_detect_seconds > 0  # the fine pass ran (beside the scorers)
    assert len(s.faces) == (2 if case.startswith("extra") else 1)


def test_blankness_is_the_grey_standard_deviation_exactly():
    """The channel sum (cv2's uint16 adds) equals numpy's exact sum, saturated pixels included."""
    import cv2
    import numpy as np
    from castkeep.models.scoring.variant import _blankness

    rng = np.random.default_rng(7)
    for rgb in (rng.integers(0, 256, (64, 48, 3), dtype=np.uint8),
                np.full((32, 32, 3), 255, np.uint8),
                np.dstack([np.full((8, 9), 255, np.uint8), rng.integers(0, 256, (8, 9), np.uint8),
                           np.zeros((8, 9), np.uint8)])):
        exact = float(cv2.meanStdDev(rgb.sum(axis=2, dtype=np.uint16))[1][0, 0]) / 3.0
        assert _blankness(rgb) == exact
        assert _blankness(rgb) == pytest.approx(rgb.astype(np.float64).mean(axis=2).std())
    assert _blankness(np.full((16, 16, 3), 128, np.uint8)) == 0.0
