"""An invisible watermark carrying a 32-bit asset key: the soft binding that leads a stripped,
recompressed, resized or cropped copy back to its catalogued asset.

Method: spread-spectrum in the luminance, written on numpy alone. A 128 x 128 px tile of 32 x 32
cells (4 px each, smoothed) repeats over the image; a quarter of the cells carry a fixed
pseudo-random synchronisation sign, the rest the key and a CRC-16, each bit spread over 16 cells
scrambled by that sign. Because the tile repeats, a crop is only a shift of it, found by one
circular correlation of the folded image against the sync cells; a resize is found by trying
scales (fine log steps, so the fold stays aligned across the whole image). Reading needs no
original and no catalogue: the key is decoded blind, then looked up.

Why not a library: invisible-watermark needs opencv-python (which overwrites
opencv-python-headless's cv2) and its DWT-DCT marks do not survive a crop; TrustMark needs torch
models at run time. Why not a perceptual fingerprint alone: an asset edited from a portrait keeps
that portrait's fingerprint within matching distance, so a fingerprint cannot tell the asset from
the photo it was made from, and a 10 % crop moves PDQ/pHash as far as a different picture.

Strength: the mark's RMS is fixed at 3.0 grey levels (PSNR about 38.6 dB), weighted towards
textured areas where it is least visible.
"""

from __future__ import annotations

import binascii
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ALG = "com.castkeep.tiled-ss.1"  # the soft-binding algorithm name in the manifest
# 32 bits + CRC-16: 16 cells a bit, enough to read a halved, q60 copy of a 512 x 640 output
# (48 bits left 12 cells a bit and lost most of those). Keys are drawn unused (tasks/sign.py).
KEY_BITS = 32
_CRC_BITS = 16
_BITS = KEY_BITS + _CRC_BITS
CELL = 4
GRID = 32
TILE = CELL * GRID
_SYNC_CELLS = 256
_RMS = 3.0
# Sync correlation peak, in standard deviations of the correlation surface, above which the key
# is decoded. The largest of ~16k offsets x ~300 scales on unmarked photos stays near 5.5; a chance
# peak above it only costs a decode, since a key must pass its CRC and be catalogued (`is_known`).
SYNC_THRESHOLD = 6.0
# Scales tried (the copy's size over the signed file's): 1.25 down to 0.3 in 0.5 % steps.
_SCALE_STEP = 1.005
_SCALE_MAX = 1.25
_SCALE_MIN = 0.3


@dataclass(frozen=True)
class Layout:
    sign: np.ndarray  # GRID x GRID of +-1: the scrambling/sync sign of each cell
    bit_of: np.ndarray  # GRID x GRID of int: the payload bit a cell carries, -1 for sync


@functools.cache
def layout() -> Layout:
    # Fixed, public: the key is not secret, only its link to an asset is (in the catalogue).
    rng = np.random.default_rng(0xC457_4EE9)
    sign = rng.choice(np.array([-1.0, 1.0]), size=(GRID, GRID))
    order = rng.permutation(GRID * GRID)
    bit_of = np.full(GRID * GRID, -1, dtype=np.int64)
    payload = order[_SYNC_CELLS:]
    bit_of[payload] = np.arange(payload.size) % _BITS
    return Layout(sign=sign, bit_of=bit_of.reshape(GRID, GRID))


def _crc(key: int) -> int:
    return binascii.crc_hqx(key.to_bytes(KEY_BITS // 8, "big"), 0)


def _bits(key: int) -> np.ndarray:
    word = (key << _CRC_BITS) | _crc(key)
    return np.array([(word >> (_BITS - 1 - i)) & 1 for i in range(_BITS)], dtype=np.int64)


def _smooth_tile(cells: np.ndarray) -> np.ndarray:
    """Cell values -> a TILE x TILE pixel pattern (blocks softened by a wrap-around blur, so the
    tile stays periodic), unit RMS."""
    from scipy.ndimage import gaussian_filter

    tile = np.kron(cells, np.ones((CELL, CELL)))
    tile = gaussian_filter(tile, sigma=1.0, mode="wrap")
    return tile / np.sqrt(np.mean(tile**2))


def tile_for(key: int) -> np.ndarray:
    if not 0 <= key < 1 << KEY_BITS:
        raise ValueError(f"a watermark key is a {KEY_BITS}-bit unsigned integer")
    lay = layout()
    bits = _bits(key) * 2 - 1
    cells = lay.sign * np.where(lay.bit_of >= 0, bits[np.maximum(lay.bit_of, 0)], 1)
    return _smooth_tile(cells)


@functools.cache
def _sync_tile_fft() -> np.ndarray:
    lay = layout()
    tile = _smooth_tile(np.where(lay.bit_of < 0, lay.sign, 0.0))
    return np.conj(np.fft.fft2(tile))


def _luma(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _activity(y: np.ndarray) -> np.ndarray:
    """Local contrast: the mark is stronger where texture hides it, weaker on flat skin/sky."""
    from scipy.ndimage import uniform_filter

    mean = uniform_filter(y, 9)
    std = np.sqrt(np.maximum(uniform_filter(y * y, 9) - mean * mean, 0.0))
    return np.clip(std / (np.mean(std) + 1e-6), 0.4, 2.5)


def embed(rgb: np.ndarray, key: int) -> np.ndarray:
    """The image (H x W x 3 uint8) with the key's mark added to its luminance."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError("embed takes an H x W x 3 uint8 RGB array")
    h, w = rgb.shape[:2]
    tile = tile_for(key)
    pattern = np.tile(tile, (math.ceil(h / TILE), math.ceil(w / TILE)))[:h, :w]
    delta = pattern * _activity(_luma(rgb))
    delta *= _RMS / np.sqrt(np.mean(delta**2))
    # The same offset on R, G and B changes luminance only.
    out = rgb.astype(np.float32) + delta[..., None].astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


@dataclass(frozen=True)
class Reading:
    """What a copy's pixels say: the key when the mark is present and its CRC checks."""

    key: int | None
    sync: float  # the sync peak in standard deviations (SYNC_THRESHOLD and up: a mark is there)
    scale: float  # the copy's size over the signed file's
    bit_margin: float  # the weakest decoded bit's |soft value| over the mean |soft value|

    @property
    def confidence(self) -> float:
        if self.key is None:
            return 0.0
        return round(min(1.0, self.sync / (2 * SYNC_THRESHOLD)), 3)


def _scales() -> list[float]:
    # 1.0 and 0.5 first (an untouched size, a halved one), then the whole range outwards.
    n_up = int(math.log(_SCALE_MAX) / math.log(_SCALE_STEP))
    n_down = int(math.log(1 / _SCALE_MIN) / math.log(_SCALE_STEP))
    grid = [_SCALE_STEP**i for i in range(-n_down, n_up + 1)]
    return sorted(grid, key=lambda s: min(abs(math.log(s)), abs(math.log(s / 0.5)) + 1e-3))


def _residual(y: np.ndarray) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    r = y - uniform_filter(y, 3)
    # Edges dominate a residual; clipping keeps them from swamping the mark.
    lim = 3.0 * float(np.std(r)) + 1e-6
    return np.clip(r, -lim, lim)


def _fold(res: np.ndarray, scale: float) -> np.ndarray:
    """The residual folded into one tile at the hypothesised scale (mean per tile pixel)."""
    h, w = res.shape
    ty = (np.floor(np.arange(h) / scale).astype(np.int64) % TILE)
    tx = (np.floor(np.arange(w) / scale).astype(np.int64) % TILE)
    idx = (ty[:, None] * TILE + tx[None, :]).ravel()
    sums = np.bincount(idx, weights=res.ravel(), minlength=TILE * TILE)
    counts = np.bincount(idx, minlength=TILE * TILE)
    acc = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    acc = acc.reshape(TILE, TILE)
    return acc - acc.mean()


def _sync_peak(acc: np.ndarray) -> tuple[float, int, int]:
    corr = np.real(np.fft.ifft2(np.fft.fft2(acc) * _sync_tile_fft()))
    i = int(np.argmax(corr))
    dy, dx = divmod(i, TILE)
    z = (corr.flat[i] - corr.mean()) / (corr.std() + 1e-12)
    return float(z), dy, dx


@functools.cache
def _bit_templates() -> np.ndarray:
    """_BITS x TILE*TILE: each payload bit's own smoothed, sign-scrambled cells (a matched filter
    over every pixel, so a copy's blur and sparse folding still add up)."""
    lay = layout()
    rows = []
    for k in range(_BITS):
        rows.append(_smooth_tile(np.where(lay.bit_of == k, lay.sign, 0.0)).ravel())
    return np.stack(rows)


_CHASE_BITS = 8  # the weakest bits a failed CRC may flip, up to two at a time


def _to_key(bits: np.ndarray) -> int | None:
    word = 0
    for b in bits:
        word = (word << 1) | int(b)
    key, crc = word >> _CRC_BITS, word & ((1 << _CRC_BITS) - 1)
    return key if _crc(key) == crc else None


def _word(soft: np.ndarray) -> tuple[int | None, float]:
    """Hard decisions, and when their CRC fails, the same with one or two of the least certain
    bits flipped (Chase decoding: a halved, recompressed copy leaves a few bits near zero). At
    most 37 candidates, so a noise word passes the CRC-16 about once in 1,800 reads that already
    passed the sync threshold, and the key must then still be a catalogued asset's."""
    import itertools

    bits = (soft > 0).astype(np.int64)
    margin = float(np.min(np.abs(soft)) / (np.mean(np.abs(soft)) + 1e-12))
    key = _to_key(bits)
    if key is not None:
        return key, margin
    weakest = np.argsort(np.abs(soft))[:_CHASE_BITS]
    for flips in itertools.chain(itertools.combinations(weakest, 1),
                                 itertools.combinations(weakest, 2)):
        trial = bits.copy()
        trial[list(flips)] ^= 1
        key = _to_key(trial)
        if key is not None:
            kept = np.delete(np.abs(soft), list(flips))
            return key, float(np.min(kept) / (np.mean(np.abs(soft)) + 1e-12))
    return None, margin


def _decode(acc: np.ndarray, dy: int, dx: int) -> tuple[int | None, float]:
    """The key at the sync peak, or one pixel beside it (a halved copy folds onto every other
    pixel, so the peak can sit a pixel off the tile's true origin)."""
    best: tuple[int | None, float] = (None, 0.0)
    for ey, ex in ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1)):
        # The peak at d means acc[p + d] ~ pattern[p]: roll it back into the tile's frame.
        aligned = np.roll(acc, shift=(-(dy + ey), -(dx + ex)), axis=(0, 1))
        key, margin = _word(_bit_templates() @ aligned.ravel())
        if key is not None:
            return key, margin
        best = max(best, (None, margin), key=lambda b: b[1])
    return best


def read(rgb: np.ndarray, *, max_side: int = 2048,
         is_known: Callable[[int], bool] | None = None) -> Reading:
    """Search a copy for the mark (blind: scales, then the crop's shift) and decode its key.
    `is_known` (the catalogue's check) makes the search go on past a key that passed its CRC by
    chance but names no asset."""
    from PIL import Image

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("read takes an H x W x 3 RGB array")
    y = _luma(rgb)
    shrink = 1.0
    if max(y.shape) > max_side:
        # A larger copy is read at a bounded size (the mark's cells are 4 px and up at scale 1).
        shrink = max_side / max(y.shape)
        size = (round(y.shape[1] * shrink), round(y.shape[0] * shrink))
        y = np.asarray(Image.fromarray(y).resize(size, Image.BILINEAR), dtype=np.float32)
    res = _residual(y)
    best = Reading(key=None, sync=0.0, scale=1.0, bit_margin=0.0)
    for scale in _scales():
        acc = _fold(res, scale * shrink)
        z, dy, dx = _sync_peak(acc)
        if z > best.sync:
            best = Reading(key=None, sync=z, scale=scale, bit_margin=0.0)
        if z >= SYNC_THRESHOLD:
            key, margin = _decode(acc, dy, dx)
            if key is not None and (is_known is None or is_known(key)):
                return Reading(key=key, sync=z, scale=scale, bit_margin=margin)
    return best
