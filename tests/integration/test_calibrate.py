"""Threshold calibration: metrics on constructed distances, CSV parsing, and a real run over the
fixture portraits with dlib."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest

from castkeep.errors import ManifestError
from castkeep.models.faces.calibrate import (
    FailedPair,
    LabelledPair,
    calibrate_pairs,
    parse_label,
    read_pairs_csv,
    summarise,
)
from castkeep.models.faces.encoders import FaceEncoder
from castkeep.models.faces.face_types import EncoderInfo
from castkeep.models.imaging import encode_image
from tests.plugins.faces import PERSON, PORTRAITS

TOY = EncoderInfo("toy", "1", 2, "none", True, 0.6, "euclidean")


def test_summary_metrics():
    labels = [True, True, True, False, False]
    c = summarise(TOY, labels, [0.3, 0.5, 0.65, 0.7, 0.9])
    assert (c.pairs, c.threshold, c.accuracy) == (5, 0.6, 0.8)
    assert c.best_accuracy == 1.0 and 0.65 < c.best_threshold < 0.7
    assert c.auc == 1.0


def test_failed_pairs_count_as_wrong_everywhere():
    labels = [True, True, True, False, False, True]
    failed = [FailedPair("x.jpg", "y.jpg", "no face found in x.jpg")]
    c = summarise(TOY, labels, [0.3, 0.5, 0.65, 0.7, 0.9, None], failed)
    assert c.pairs == 6
    assert c.accuracy == pytest.approx(4 / 6, abs=1e-6)
    assert c.best_accuracy == pytest.approx(5 / 6, abs=1e-6)
    assert c.auc == 1.0  # ranks only the measurable pairs
    assert c.as_dict()["failed"] == [{"a": "x.jpg", "b": "y.jpg", "reason": "no face found in x.jpg"}]


def test_auc_with_overlap_and_ties():
    # same: 0.3, 0.8; different: 0.5, 0.9 -> 3 of 4 (same, different) orderings right
    assert summarise(TOY, [True, True, False, False], [0.3, 0.8, 0.5, 0.9]).auc == 0.75
    assert summarise(TOY, [True, False], [0.4, 0.4]).auc == 0.5
    assert summarise(TOY, [True, True], [0.1, 0.2]).auc is None


def test_best_threshold_prefers_the_encoder_threshold_on_ties():
    c = summarise(TOY, [True, False], [0.2, 0.9])
    assert c.best_threshold == 0.6 and c.best_accuracy == 1.0


@pytest.mark.parametrize("text,value", [("YES", True), (" true ", True), ("1", True), ("No", False), ("FALSE", False), ("0", False)])
def test_parse_label(text, value):
    assert parse_label(text) is value


def test_read_pairs_csv(tmp_path):
    p = tmp_path / "pairs.csv"
    p.write_text("left,right,match\na.jpg,b.jpg,Yes\n\nc.jpg,d.jpg,0\n")
    pairs = read_pairs_csv(p, a_col="left", b_col="right", label_col="match")
    assert pairs == [LabelledPair("a.jpg", "b.jpg", True), LabelledPair("c.jpg", "d.jpg", False)]
    with pytest.raises(ManifestError, match="missing column.*same.*--label-col"):
        read_pairs_csv(p, a_col="left", b_col="right")
    p.write_text("a,b,same\na.jpg,b.jpg,yes\nc.jpg,d.jpg,maybe\n")
    with pytest.raises(ManifestError, match=r"row 3, column 'same': 'maybe'"):
        read_pairs_csv(p)
    p.write_text("a,b,same\na.jpg,,yes\n")
    with pytest.raises(ManifestError, match=r"row 2, column 'b'"):
        read_pairs_csv(p)
    with pytest.raises(ManifestError, match="not found"):
        read_pairs_csv(tmp_path / "none.csv")


class CountingEncoder(FaceEncoder):
    """Delegates to the real dlib encoder, counting detections."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    @property
    def info(self):
        return self.inner.info

    def _load(self):
        self.inner.load()

    def _detect(self, rgb, *, embed):
        self.calls += 1
        return self.inner._detect(rgb, embed=embed)


def test_calibrate_real_portraits(tmp_path, fixtures_dir, dlib_encoder):
    for name in PORTRAITS:
        shutil.copy(fixtures_dir / f"{name}.jpg", tmp_path / f"{name}.jpg")
    (tmp_path / "blank.png").write_bytes(encode_image(np.full((200, 200, 3), 90, np.uint8), "PNG"))
    pairs = [LabelledPair(f"{a}.jpg", f"{b}.jpg", PERSON[a] == PERSON[b]) for a, b in itertools.combinations(PORTRAITS, 2)]
    pairs += [LabelledPair("obama.jpg", "blank.png", True), LabelledPair("missing.jpg", "biden.jpg", False)]
    enc = CountingEncoder(dlib_encoder)
    c = calibrate_pairs(pairs, enc, base_dir=tmp_path)
    assert enc.calls == len(PORTRAITS) + 1  # each readable image embedded once
    assert c.encoder == "dlib-resnet-v1" and c.pairs == 17 and c.threshold == 0.6
    assert c.accuracy == pytest.approx(15 / 17, abs=1e-6)  # every real pair right, 2 failed
    assert c.best_accuracy == pytest.approx(15 / 17, abs=1e-6)
    assert c.auc == 1.0
    reasons = {(f.a, f.b): f.reason for f in c.failed}
    assert set(reasons) == {("obama.jpg", "blank.png"), ("missing.jpg", "biden.jpg")}
    assert "no face found in blank.png" in reasons[("obama.jpg", "blank.png")]
    assert "not found" in reasons[("missing.jpg", "biden.jpg")]
