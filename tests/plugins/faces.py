"""Face fixtures: one loaded dlib encoder and the fixture portraits detected once per session."""

from __future__ import annotations

import pytest

PORTRAITS = ("obama", "obama2", "obama3", "biden", "obama_partial_face", "obama_partial_face2")
PERSON = {
    "obama": "obama",
    "obama2": "obama",
    "obama3": "obama",
    "obama_partial_face": "obama",
    "obama_partial_face2": "obama",
    "biden": "biden",
}


@pytest.fixture(scope="session")
def dlib_encoder():
    """The real dlib-resnet-v1 encoder, loaded once (about a second)."""
    from castkeep.models.faces.encoders import get_encoder

    encoder = get_encoder("dlib-resnet-v1")
    encoder.load()
    return encoder


@pytest.fixture(scope="session")
def portrait_rgb(fixtures_dir):
    """name -> decoded RGB array of each fixture portrait."""
    from castkeep.models.imaging import load_image

    return {name: load_image(fixtures_dir / f"{name}.jpg").rgb for name in PORTRAITS}


@pytest.fixture(scope="session")
def portrait_faces(dlib_encoder, portrait_rgb):
    """name -> faces found by dlib_encoder in that portrait (largest first)."""
    return {name: dlib_encoder.detect(rgb) for name, rgb in portrait_rgb.items()}


def side_by_side(*images, gap: int = 40, height: int = 600):
    """Paste RGB images next to each other at a common height on a grey canvas (a synthetic
    group photo). Returns (canvas, x offsets, scale factors)."""
    import cv2
    import numpy as np

    resized, scales = [], []
    for im in images:
        s = height / im.shape[0]
        resized.append(cv2.resize(im, (round(im.shape[1] * s), height), interpolation=cv2.INTER_AREA))
        scales.append(s)
    width = sum(r.shape[1] for r in resized) + gap * (len(resized) + 1)
    canvas = np.full((height + 2 * gap, width, 3), 128, np.uint8)
    offsets, x = [], gap
    for r in resized:
        canvas[gap : gap + height, x : x + r.shape[1]] = r
        offsets.append(x)
        x += r.shape[1] + gap
    return canvas, offsets, scales
