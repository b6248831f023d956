"""The soft-binding watermark on the fixture photos: its key survives the transformations a
social platform applies, the image keeps PSNR >= 38 dB, and unmarked photos yield no key."""

from __future__ import annotations

import io

import numpy as np
import pytest
from castkeep.provenance import watermark
from PIL import Image

KEY = 0x5A17_C0DE


def _load(path, max_side: int = 1200) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    im.thumbnail((max_side, max_side))
    return np.asarray(im)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _resize(rgb: np.ndarray, f: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((round(w * f), round(h * f)), Image.LANCZOS))


def _crop(rgb: np.ndarray, f: float = 0.1) -> np.ndarray:
    # 10 % off the area's sides, off-centre (a crop is rarely aligned with the tile).
    h, w = rgb.shape[:2]
    return rgb[int(h * f * 0.7):h - int(h * f * 0.3), int(w * f * 0.4):w - int(w * f * 0.6)]


@pytest.fixture(scope="module")
def marked(fixtures_dir):
    src = _load(fixtures_dir / "obama.jpg")
    return src, _jpeg(watermark.embed(src, KEY), 92)


def test_embedding_keeps_psnr_above_38_db(marked):
    src, out = marked
    assert watermark.psnr(src, watermark.embed(src, KEY)) >= 38.0
    assert out.shape == src.shape


TRANSFORMS = {
    "as signed": lambda a: a,
    "jpeg q60": lambda a: _jpeg(a, 60),
    "resize 50%": lambda a: _resize(a, 0.5),
    "crop 10%": _crop,
    "crop + resize + q60": lambda a: _jpeg(_resize(_crop(a), 0.5), 60),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_key_survives(marked, name):
    reading = watermark.read(TRANSFORMS[name](marked[1]))
    assert reading.key == KEY, reading
    assert reading.sync >= watermark.SYNC_THRESHOLD
    assert 0 < reading.confidence <= 1


def test_reading_reports_the_scale(marked):
    assert watermark.read(_resize(marked[1], 0.5)).scale == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("name", ["obama.jpg", "obama2.jpg", "biden.jpg"])
def test_unmarked_photo_has_no_key(fixtures_dir, name):
    reading = watermark.read(_jpeg(_resize(_load(fixtures_dir / name, 800), 0.5), 60))
    assert reading.key is None
    assert reading.sync < watermark.SYNC_THRESHOLD
    assert reading.confidence == 0.0


def test_a_different_key_reads_as_itself(fixtures_dir):
    src = _load(fixtures_dir / "biden.jpg", 800)
    assert watermark.read(_jpeg(watermark.embed(src, 1), 80)).key == 1


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=f"{watermark.KEY_BITS}-bit unsigned"):
        watermark.tile_for(1 << watermark.KEY_BITS)
    with pytest.raises(ValueError, match="unsigned"):
        watermark.tile_for(-1)
    with pytest.raises(ValueError, match="uint8"):
        watermark.embed(np.zeros((8, 8), dtype=np.uint8), KEY)


def test_request_sized_output_survives_halving_and_q60(fixtures_dir):
    # A request's output is 512 x 640: halved and recompressed, a copy is 256 x 320.
    src = _load(fixtures_dir / "obama.jpg", 640)
    copy = _jpeg(_resize(_jpeg(watermark.embed(src, KEY), 92), 0.5), 60)
    assert watermark.read(copy).key == KEY


def test_a_key_the_catalogue_does_not_know_does_not_end_the_search(marked):
    seen = []
    reading = watermark.read(marked[1], is_known=lambda key: seen.append(key) or False)
    assert reading.key is None
    assert KEY in seen  # decoded, offered, refused: the search went on and found nothing else
