"""Safe image decoding to the one pixel format every model uses: 8-bit sRGB RGB, EXIF-upright.

Untrusted bytes go through `decode_image`: the format is sniffed from a short allow-list, the pixel
count is checked from the header *before* any pixel is decoded (decompression bombs), truncated or
corrupt data is an error rather than a grey half-image, and colour is normalised (embedded ICC
profile -> sRGB, CMYK / 16-bit / palette / alpha -> RGB, alpha flattened onto white).
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from castkeep.errors import UnsupportedImageError

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 50_000_000

# Pillow format name -> (our format name, media type). MPO is the multi-picture JPEG many phones
# write (Pillow's JPEG opener returns it); its first frame is an ordinary JPEG.
_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("JPEG", "image/jpeg"),
    "MPO": ("JPEG", "image/jpeg"),
    "PNG": ("PNG", "image/png"),
    "WEBP": ("WEBP", "image/webp"),
    "TIFF": ("TIFF", "image/tiff"),
}
_OPEN_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")
_ENCODE_FORMATS = {"JPEG": "JPEG", "JPG": "JPEG", "PNG": "PNG", "WEBP": "WEBP"}

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_HIGH_DEPTH_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # H x W x 3, uint8, sRGB, upright
    width: int
    height: int
    media_type: str  # image/jpeg | image/png | image/webp | image/tiff
    format: str  # JPEG | PNG | WEBP | TIFF


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode untrusted image bytes; UnsupportedImageError for anything unsafe or unreadable."""
    if not data:
        raise UnsupportedImageError("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # We enforce our own limit below; Pillow's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    except Image.DecompressionBombError as exc:
        raise UnsupportedImageError(f"the image has too many pixels to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedImageError(
            "not a supported image: castkeep reads JPEG, PNG, WebP and TIFF"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedImageError(f"the image header is corrupt: {exc}") from exc

    with im:
        fmt, media_type = _FORMATS[im.format or ""]
        width, height = im.size
        if width <= 0 or height <= 0:
            raise UnsupportedImageError(f"the image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise UnsupportedImageError(
                f"the image is {width}x{height} = {width * height:,} pixels, over the limit of "
                f"{max_pixels:,}; downscale it before use"
            )
        try:
            im.seek(0)  # first frame of a multi-page TIFF / animated WebP
            im.load()
            icc = im.info.get("icc_profile")  # read before transposing, which copies the image
            upright = im
            if im.getexif().get(0x0112, 1) not in (None, 1):  # EXIF Orientation
                upright = ImageOps.exif_transpose(im) or im
            rgb = _to_srgb_rgb(upright, icc)
        except UnsupportedImageError:
            raise
        except Image.DecompressionBombError as exc:
            raise UnsupportedImageError(f"the image has too many pixels to decode safely ({exc})") from exc
        except (OSError, ValueError, SyntaxError, EOFError, KeyError, IndexError) as exc:
            # Pillow reports truncation as OSError("image file is truncated ...").
            raise UnsupportedImageError(f"the {fmt} data is truncated or corrupt: {exc}") from exc

    arr = np.asarray(rgb, dtype=np.uint8)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return DecodedImage(
        rgb=arr, width=arr.shape[1], height=arr.shape[0], media_type=media_type, format=fmt
    )


def load_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Read and decode an image file (see `decode_image`)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError as exc:
        raise UnsupportedImageError(f"image file not found: {p}") from exc
    except IsADirectoryError as exc:
        raise UnsupportedImageError(f"expected an image file, got a directory: {p}") from exc
    except OSError as exc:
        raise UnsupportedImageError(f"cannot read image file {p}: {exc.strerror or exc}") from exc
    try:
        return decode_image(data, max_pixels=max_pixels)
    except UnsupportedImageError as exc:
        raise UnsupportedImageError(f"{p}: {exc}") from exc


def encode_image(rgb: np.ndarray, fmt: str = "JPEG", quality: int = 95) -> bytes:
    """Encode an H x W x 3 uint8 RGB array. JPEG keeps full chroma at quality >= 90."""
    key = fmt.upper()
    if key not in _ENCODE_FORMATS:
        raise UnsupportedImageError(f"cannot encode as {fmt!r}; use JPEG, PNG or WEBP")
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise UnsupportedImageError(
            f"expected an H x W x 3 uint8 RGB array, got shape {arr.shape} dtype {arr.dtype}"
        )
    if not 1 <= quality <= 100:
        raise UnsupportedImageError(f"quality must be 1-100, got {quality}")
    im = Image.fromarray(np.ascontiguousarray(arr), "RGB")
    buf = io.BytesIO()
    pil_fmt = _ENCODE_FORMATS[key]
    if pil_fmt == "JPEG":
        im.save(buf, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2, optimize=True)
    elif pil_fmt == "WEBP":
        im.save(buf, "WEBP", quality=quality, method=4)
    else:
        im.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


# --- colour normalisation ---------------------------------------------------------------------

_SRGB = None


def _srgb_profile() -> ImageCms.ImageCmsProfile:
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return _SRGB


def _to_srgb_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    im = _to_8bit(im)

    alpha = None
    if im.mode == "P":
        # Palette transparency (tRNS) becomes a real alpha channel before flattening.
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in _ALPHA_MODES:
        if im.mode in ("RGBa", "La"):
            im = im.convert("RGBA" if im.mode == "RGBa" else "LA")
        if im.mode == "PA":
            im = im.convert("RGBA")
        alpha = im.getchannel("A")
        im = im.convert("L" if im.mode == "LA" else "RGB")
    if im.mode == "1":
        im = im.convert("L")

    im = _apply_icc(im, icc) if icc else im
    if im.mode != "RGB":
        if im.mode not in ("L", "CMYK", "YCbCr", "RGBX", "LAB", "HSV"):
            raise UnsupportedImageError(f"unsupported pixel mode {im.mode!r}")
        im = im.convert("RGB")

    if alpha is not None:
        # Flatten onto white: transparent cut-outs would otherwise show as black backgrounds.
        a = np.asarray(alpha, dtype=np.float32)[..., None] / 255.0
        rgb = np.asarray(im, dtype=np.float32)
        out = rgb * a + 255.0 * (1.0 - a)
        im = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")
    return im


def _to_8bit(im: Image.Image) -> Image.Image:
    if im.mode not in _HIGH_DEPTH_MODES:
        return im
    arr = np.asarray(im)
    if im.mode == "F":
        arr = arr.astype(np.float64)
        finite = arr[np.isfinite(arr)]
        peak = float(finite.max()) if finite.size else 0.0
        # Float images are 0-1 by convention; larger values are taken as 0-255 or 0-65535.
        scale = 255.0 if peak <= 1.0 else (1.0 if peak <= 255.0 else 255.0 / 65535.0)
        out = np.nan_to_num(arr * scale, nan=0.0, posinf=255.0, neginf=0.0)
    else:
        arr = arr.astype(np.int64)
        # "I" holds 16-bit PNG/TIFF samples (0-65535); 8-bit content widened to I stays as is.
        peak = int(arr.max()) if arr.size else 0
        out = arr / 257.0 if (im.mode.startswith("I;16") or peak > 255) else arr.astype(np.float64)
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "L")


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    desc = (ImageCms.getProfileDescription(profile) or "").strip()
    return profile.profile.xcolor_space.strip() == "RGB" and desc.startswith("sRGB")


def _apply_icc(im: Image.Image, icc: bytes) -> Image.Image:
    if im.mode not in ("RGB", "L", "CMYK"):
        return im
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if im.mode == "RGB" and _is_srgb(src):
            return im  # already sRGB (most camera and web JPEGs): converting would change nothing
        return ImageCms.profileToProfile(
            im,
            src,
            _srgb_profile(),
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        # A broken or mismatched profile is common in the wild; the pixels are still usable.
        log.warning("ignoring unusable embedded ICC profile (%s); assuming sRGB", exc)
        return im
