"""tasks/report.sheet_preview: the contact sheet as a JPEG small enough for a data: URL."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from castkeep.tasks.report import PREVIEW_MAX_BYTES, sheet_preview


def _png(width: int, height: int, seed: int = 0) -> bytes:
    # Noise does not compress: the hardest case for the size limit.
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_a_large_sheet_is_scaled_down_under_the_limit_keeping_its_shape():
    png = _png(2400, 1200)
    assert len(png) > 5 * PREVIEW_MAX_BYTES
    jpeg = sheet_preview(png)
    assert len(jpeg) <= PREVIEW_MAX_BYTES
    with Image.open(io.BytesIO(jpeg)) as img:
        assert img.format == "JPEG" and img.mode == "RGB"
        assert max(img.size) <= 1600
        assert abs(img.width / img.height - 2.0) < 0.02


def test_a_small_sheet_keeps_its_size():
    jpeg = sheet_preview(_png(300, 200))
    with Image.open(io.BytesIO(jpeg)) as img:
        assert img.size == (300, 200)


def test_a_smaller_limit_is_met_too():
    assert len(sheet_preview(_png(1200, 800), max_bytes=20_000)) <= 20_000


def test_the_unencoded_sheet_gives_the_same_preview_as_its_png():
    rgb = np.random.default_rng(3).integers(0, 256, (900, 1700, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    from_image = sheet_preview(image)
    assert from_image == sheet_preview(buf.getvalue())
    assert len(from_image) <= PREVIEW_MAX_BYTES


def test_a_kept_thumbnail_stands_in_for_reading_the_stored_asset(tmp_path):
    from castkeep.db.fs_store import FilesystemStore
    from castkeep.tasks import report

    store = FilesystemStore(tmp_path / "store")
    rgb = np.random.default_rng(5).integers(0, 256, (640, 512, 3), dtype=np.uint8)
    key = "assets/ab/cd/kept-in-memory-only.jpg"  # never written to the store
    assert report._thumbnail(store, key) is None  # not kept: read from the store, missing
    report.keep_thumbnail(key, rgb)
    tile = report._thumbnail(store, key)
    assert tile.shape == (report.THUMB_SIDE, 205, 3)
    assert abs(float(tile.mean()) - float(rgb.mean())) < 2.0
    # Bounded: the oldest are forgotten first.
    for i in range(report._KEPT_THUMBNAILS):
        report.keep_thumbnail(f"assets/other-{i}.jpg", rgb[:8, :8])
    assert report._thumbnail(store, key) is None
