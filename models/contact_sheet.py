"""Contact sheet: every variant of a request as a thumbnail with its scores and pass/fail.

Pillow only. Reviewers look at this before approving, so rejected variants are shown too
(red border and the failing scores), not hidden.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PASS_COLOUR = (34, 139, 34)
FAIL_COLOUR = (200, 30, 30)
_BG = (245, 245, 245)
_INK = (20, 20, 20)


@dataclass(frozen=True)
class ScoreLine:
    kind: str  # identity | lighting | camera | quality
    label: str  # e.g. "identity t-3f2a", "lighting"
    value: float
    threshold: float | None
    passed: bool

    def text(self) -> str:
        bar = f" / {self.threshold:.2f}" if self.threshold is not None else ""
        mark = "ok" if self.passed else "FAIL"
        return f"{self.label}: {self.value:.2f}{bar} {mark}"


@dataclass(frozen=True)
class SheetEntry:
    title: str  # e.g. "variant 2 (attempt 1, seed 123)"
    passed: bool
    image: np.ndarray | None = None  # HxWx3 uint8; None when no image was produced
    scores: tuple[ScoreLine, ...] = ()
    note: str | None = None  # e.g. the reason a variant was rejected


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType
        return ImageFont.load_default()


def _text_width(font, text: str) -> float:
    try:
        return font.getlength(text)
    except AttributeError:  # bitmap default font
        return 7.0 * len(text)


def _thumbnail(rgb: np.ndarray | None, size: int) -> Image.Image:
    tile = Image.new("RGB", (size, size), (210, 210, 210))
    if rgb is None:
        draw = ImageDraw.Draw(tile)
        draw.line((0, 0, size, size), fill=(150, 150, 150), width=2)
        draw.line((0, size, size, 0), fill=(150, 150, 150), width=2)
        return tile
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    tile.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return tile


def _wrap(text: str, width_chars: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width_chars:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return lines


def render_contact_sheet(
    entries: Sequence[SheetEntry],
    *,
    title: str,
    thumb: int = 256,
    columns: int | None = None,
    max_note_lines: int = 3,
) -> bytes:
    """PNG bytes of a grid: one cell per entry, thumbnail on top, score lines under it."""
    return sheet_png(contact_sheet_image(entries, title=title, thumb=thumb, columns=columns,
                                         max_note_lines=max_note_lines))


def sheet_png(sheet: Image.Image) -> bytes:
    out = io.BytesIO()
    sheet.save(out, format="PNG", compress_level=1)  # fast: the sheet is a preview
    return out.getvalue()


def contact_sheet_image(
    entries: Sequence[SheetEntry],
    *,
    title: str,
    thumb: int = 256,
    columns: int | None = None,
    max_note_lines: int = 3,
) -> Image.Image:
    """The contact sheet as an RGB image (render_contact_sheet's PNG, before encoding: a caller
    that also wants a smaller preview starts from these pixels instead of decoding the PNG)."""
    if not entries:
        entries = [SheetEntry(title="no variants", passed=False, note="nothing was generated")]
    cols = columns or min(len(entries), max(1, math.ceil(math.sqrt(len(entries)))) + 1, 5)
    cols = max(1, min(cols, len(entries)))
    rows = math.ceil(len(entries) / cols)
    font, small, big = _font(13), _font(11), _font(18)
    line_h, pad, border = 16, 10, 4
    chars = max(20, thumb // 7)
    text_lines = max(
        1 + len(e.scores) + min(max_note_lines, len(_wrap(e.note or "", chars))) for e in entries
    )
    cell_w = thumb + 2 * border + pad
    cell_h = thumb + 2 * border + text_lines * line_h + pad * 2
    header = 40
    passed = sum(1 for e in entries if e.passed)
    heading = f"{title}  -  {passed}/{len(entries)} passed"
    width = max(cols * cell_w + pad, int(_text_width(big, heading)) + 2 * pad)
    sheet = Image.new("RGB", (width, header + rows * cell_h + pad), _BG)
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 10), heading, fill=_INK, font=big)
    for i, entry in enumerate(entries):
        r, c = divmod(i, cols)
        x, y = pad + c * cell_w, header + r * cell_h
        colour = PASS_COLOUR if entry.passed else FAIL_COLOUR
        draw.rectangle((x, y, x + thumb + 2 * border - 1, y + thumb + 2 * border - 1), fill=colour)
        sheet.paste(_thumbnail(entry.image, thumb), (x + border, y + border))
        ty = y + thumb + 2 * border + 4
        verdict = "PASS" if entry.passed else "REJECTED"
        draw.text((x, ty), f"{entry.title}  {verdict}", fill=colour, font=font)
        ty += line_h
        for score in entry.scores:
            draw.text(
                (x, ty), score.text(), fill=_INK if score.passed else FAIL_COLOUR, font=small
            )
            ty += line_h
        for line in _wrap(entry.note or "", chars)[:max_note_lines]:
            draw.text((x, ty), line, fill=(90, 90, 90), font=small)
            ty += line_h
    return sheet
