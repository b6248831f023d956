"""Image decoding: formats, orientation, colour normalisation, and refusal of unsafe input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from castkeep.errors import UnsupportedImageError
from castkeep.models.imaging import decode_image, encode_image, load_image


def _gradient(w: int = 64, h: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256], -1).astype(np.uint8)


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _rgb_icc(r_xyz, g_xyz, b_xyz) -> bytes:
    """A minimal ICC v2 matrix/TRC display profile with linear (gamma 1.0) curves."""
    xyz = lambda v: b"XYZ " + b"\0" * 4 + b"".join(_s15(c) for c in v)  # noqa: E731
    curv = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 0x0100) + b"\0\0"
    desc_text = b"test\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(desc_text)) + desc_text
    desc += b"\0" * 8 + b"\0" * 3 + b"\0" * 67  # empty unicode + scriptcode parts
    desc += b"\0" * (-len(desc) % 4)
    d50 = (0.9642, 1.0, 0.8249)
    tags = [
        (b"desc", desc), (b"wtpt", xyz(d50)),
        (b"rXYZ", xyz(r_xyz)), (b"gXYZ", xyz(g_xyz)), (b"bXYZ", xyz(b_xyz)),
        (b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntr" + b"RGB "
        + b"XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
        + b"".join(_s15(c) for c in d50) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


# sRGB colorants, D50-adapted (as in the standard sRGB ICC profile).
SRGB_R, SRGB_G, SRGB_B = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)


def test_jpeg_fixture_decodes_to_rgb(fixtures_dir):
    img = load_image(fixtures_dir / "obama.jpg")
    assert (img.format, img.media_type) == ("JPEG", "image/jpeg")
    assert img.rgb.shape == (1137, 910, 3) and img.rgb.dtype == np.uint8
    assert (img.width, img.height) == (910, 1137)
    assert img.rgb.std() > 20  # real content, not a blank decode


@pytest.mark.parametrize(
    "fmt,kw,media_type,exact",
    [
        ("PNG", {}, "image/png", True),
        ("WEBP", {"lossless": True}, "image/webp", True),
        ("TIFF", {"compression": "tiff_lzw"}, "image/tiff", True),
        ("JPEG", {"quality": 98, "subsampling": 0}, "image/jpeg", False),
    ],
)
def test_formats_round_trip(fmt, kw, media_type, exact):
    src = _gradient()
    img = decode_image(_save(Image.fromarray(src), fmt, **kw))
    assert img.media_type == media_type
    assert img.rgb.shape == src.shape
    diff = np.abs(img.rgb.astype(int) - src.astype(int))
    assert diff.max() == 0 if exact else diff.mean() < 2.0


def test_exif_orientation_is_applied():
    src = _gradient(64, 48)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
    data = _save(Image.fromarray(src), "PNG", exif=exif.tobytes())
    img = decode_image(data)
    assert (img.width, img.height) == (48, 64)
    np.testing.assert_array_equal(img.rgb, np.rot90(src, k=-1))


def test_cmyk_jpeg_becomes_rgb():
    src = np.zeros((32, 32, 3), np.uint8)
    src[:, :16] = (200, 30, 30)
    src[:, 16:] = (30, 30, 200)
    data = _save(Image.fromarray(src).convert("CMYK"), "JPEG", quality=98)
    img = decode_image(data)
    assert img.rgb.shape == (32, 32, 3)
    left, right = img.rgb[:, :12].mean((0, 1)), img.rgb[:, 20:].mean((0, 1))
    assert left[0] > 150 and left[2] < 80  # still red
    assert right[2] > 150 and right[0] < 80  # still blue


def test_16bit_grey_png_scales_to_8bit():
    grey16 = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    data = _save(Image.fromarray(grey16), "PNG")
    img = decode_image(data)
    assert img.rgb.shape == (8, 64, 3)
    expected = np.round(grey16[0] / 257.0).astype(int)
    assert np.abs(img.rgb[0, :, 1].astype(int) - expected).max() <= 1
    assert (img.rgb[..., 0] == img.rgb[..., 2]).all()


def test_16bit_grey_tiff_scales_to_8bit():
    grey16 = np.full((4, 4), 40000, np.uint16)
    img = decode_image(_save(Image.fromarray(grey16), "TIFF"))
    assert abs(int(img.rgb[0, 0, 0]) - round(40000 / 257)) <= 1


def test_alpha_is_flattened_onto_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:2, :, 3] = 255  # top half opaque, bottom half transparent
    img = decode_image(_save(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert tuple(img.rgb[0, 0]) == (255, 0, 0)
    assert tuple(img.rgb[3, 3]) == (255, 255, 255)


def test_palette_with_transparency():
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    pal.putpixel((0, 0), 1)
    data = _save(pal, "PNG", transparency=0)
    img = decode_image(data)
    assert tuple(img.rgb[0, 0]) == (0, 255, 0)
    assert tuple(img.rgb[1, 1]) == (255, 255, 255)  # index 0 is transparent -> white


def test_32bit_png_fixture(fixtures_dir):
    img = load_image(fixtures_dir / "32bit.png")
    assert img.format == "PNG" and img.rgb.shape == (1200, 626, 3)
    ref = np.asarray(Image.open(fixtures_dir / "32bit.png").convert("RGB"))
    np.testing.assert_array_equal(img.rgb, ref)  # fully opaque: flattening changes nothing


def test_embedded_icc_profile_is_converted_to_srgb():
    # A profile whose red and green colorants are swapped: stored "red" means sRGB green.
    icc = _rgb_icc(SRGB_G, SRGB_R, SRGB_B)
    src = np.zeros((4, 8, 3), np.uint8)
    src[:, :4] = (255, 0, 0)
    src[:, 4:] = (0, 0, 255)
    img = decode_image(_save(Image.fromarray(src), "PNG", icc_profile=icc))
    r, g, b = (int(v) for v in img.rgb[0, 0])
    assert g > 230 and r < 40 and b < 40, (r, g, b)
    r, g, b = (int(v) for v in img.rgb[0, 7])
    assert b > 230 and r < 40 and g < 40, (r, g, b)


def test_srgb_profile_leaves_pixels_unchanged():
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = _gradient()
    img = decode_image(_save(Image.fromarray(src), "PNG", icc_profile=srgb))
    np.testing.assert_array_equal(img.rgb, src)


def test_broken_icc_profile_is_ignored():
    src = _gradient()
    img = decode_image(_save(Image.fromarray(src), "PNG", icc_profile=b"not a profile" * 10))
    np.testing.assert_array_equal(img.rgb, src)


def test_pixel_limit_is_checked_before_decoding():
    # Header claims 9000 x 9000 (under Pillow's own bomb limit) but carries no pixel data: if the
    # decoder ran first this would be reported as truncated; the limit must reject it from the header.
    ihdr = struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")
    with pytest.raises(UnsupportedImageError, match="9000x9000 = 81,000,000 pixels, over the limit"):
        decode_image(data)
    huge = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", huge) + _png_chunk(b"IEND", b"")
    with pytest.raises(UnsupportedImageError, match="too many pixels"):
        decode_image(data)


def test_custom_pixel_limit():
    data = _save(Image.fromarray(_gradient(100, 100)), "PNG")
    assert decode_image(data, max_pixels=10_000).width == 100
    with pytest.raises(UnsupportedImageError, match="10,000 pixels, over the limit of 9,999"):
        decode_image(data, max_pixels=9_999)


def test_truncated_jpeg_is_rejected(fixtures_dir):
    data = (fixtures_dir / "obama.jpg").read_bytes()
    with pytest.raises(UnsupportedImageError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2])


def test_truncated_png_is_rejected():
    rng = np.random.default_rng(0)
    data = _save(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "PNG")
    with pytest.raises(UnsupportedImageError, match="truncated or corrupt"):
        decode_image(data[: len(data) - 2000])


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "empty"),
        (b"\x00garbage" * 100, "not a supported image"),
        (b"GIF89a" + b"\0" * 100, "not a supported image"),
    ],
)
def test_garbage_is_rejected(data, match):
    with pytest.raises(UnsupportedImageError, match=match):
        decode_image(data)


def test_gif_is_not_accepted():
    data = _save(Image.fromarray(_gradient()).convert("P"), "GIF")
    with pytest.raises(UnsupportedImageError, match="JPEG, PNG, WebP and TIFF"):
        decode_image(data)


def test_load_image_missing_file(tmp_path):
    with pytest.raises(UnsupportedImageError, match="not found"):
        load_image(tmp_path / "nope.jpg")


def test_load_image_names_the_file(tmp_path):
    p = tmp_path / "bad.jpg"
    p.write_bytes(b"nonsense")
    with pytest.raises(UnsupportedImageError, match="bad.jpg"):
        load_image(p)


def test_encode_png_is_lossless_and_jpeg_close():
    src = _gradient()
    back = decode_image(encode_image(src, "PNG"))
    np.testing.assert_array_equal(back.rgb, src)
    jpeg = encode_image(src, "JPEG", quality=95)
    assert jpeg[:3] == b"\xff\xd8\xff"
    assert np.abs(decode_image(jpeg).rgb.astype(int) - src).mean() < 2.0
    assert len(encode_image(src, "JPEG", quality=20)) < len(jpeg)


@pytest.mark.parametrize(
    "arr,fmt",
    [
        (np.zeros((4, 4), np.uint8), "PNG"),
        (np.zeros((4, 4, 3), np.float32), "PNG"),
        (np.zeros((4, 4, 3), np.uint8), "BMP"),
    ],
)
def test_encode_rejects_bad_input(arr, fmt):
    with pytest.raises(UnsupportedImageError):
        encode_image(arr, fmt)
