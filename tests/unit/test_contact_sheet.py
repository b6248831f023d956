from __future__ import annotations

import io

import numpy as np
from PIL import Image

from castkeep.models.contact_sheet import (
    FAIL_COLOUR,
    PASS_COLOUR,
    ScoreLine,
    SheetEntry,
    render_contact_sheet,
)


def _solid(colour, h=120, w=80):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = colour
    return img


def test_grid_shows_every_variant_with_verdict_colours():
    entries = [
        SheetEntry(
            title="variant 0",
            passed=True,
            image=_solid((0, 0, 255)),
            scores=(ScoreLine("identity", "identity t-1", 0.41, 0.6, True),),
        ),
        SheetEntry(
            title="variant 1",
            passed=False,
            image=_solid((255, 255, 0)),
            scores=(ScoreLine("camera", "camera", 9.0, 5.0, False),),
            note="camera roll error 9.0 > 5.0 degrees after 2 retries",
        ),
        SheetEntry(title="variant 2", passed=False, image=None, note="engine failed"),
    ]
    png = render_contact_sheet(entries, title="Spring", thumb=128, columns=3)
    sheet = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # Three cells side by side: width covers them all.
    assert sheet.shape[1] >= 3 * 128
    # Cell borders: green for the pass, red for the rejects; thumbnails centred in their tile.
    pad, header, border = 10, 40, 4
    cell_w = 128 + 2 * border + pad
    assert tuple(sheet[header + 1, pad + 1]) == PASS_COLOUR
    assert tuple(sheet[header + 1, pad + cell_w + 1]) == FAIL_COLOUR
    assert tuple(sheet[header + border + 64, pad + border + 64]) == (0, 0, 255)
    assert tuple(sheet[header + border + 64, pad + cell_w + border + 64]) == (255, 255, 0)


def test_score_line_text():
    assert ScoreLine("identity", "identity t", 0.412, 0.6, True).text() == "identity t: 0.41 / 0.60 ok"
    assert ScoreLine("quality", "quality", 3.0, None, False).text() == "quality: 3.00 FAIL"


def test_empty_sheet_still_renders():
    png = render_contact_sheet([], title="nothing")
    assert Image.open(io.BytesIO(png)).size[0] > 100


def test_sheet_image_is_the_png_before_encoding():
    from castkeep.models.contact_sheet import contact_sheet_image

    entries = [SheetEntry(title="variant 0", passed=True, image=_solid((0, 0, 255)))]
    image = contact_sheet_image(entries, title="Spring", thumb=64)
    png = render_contact_sheet(entries, title="Spring", thumb=64)
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(io.BytesIO(png)).convert("RGB")))
