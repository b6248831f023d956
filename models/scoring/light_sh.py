"""Key-light direction from the output alone, by a model the classical engine does not use.

The engine shades an ellipsoid head with a Lambert/wrap key and fill (relight.py) and searches
that model's key directions. This scorer instead fits first-order spherical-harmonic irradiance
(band 0 + the dipole, linear least squares, robustly reweighted) to the skin's linear luminance
over the normals of a generic face surface of its own: a horizontally curved face (a cylinder of
1.6 eye distances' radius) whose forehead and chin slope back, with a nose ridge, placed by the
eyes. The key's side and rough azimuth come from the dipole's sideways part. It judges the output
alone (the photo's own light counts too), so it is coarse: it decides the key's side reliably
for keys 45 degrees or more off-axis, not the exact angle. Nothing here imports the engine's head
or shading model.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from castkeep.models.faces.face_types import DetectedFace

METHOD = "sh1-generic-face"
CROP = 96  # the face is fitted on an upright crop this size (shading is low-frequency)
UNIT = 24.0  # pixels per eye distance in the crop
AZIMUTH_GAIN = 2.0
SIDE_DECIDED_FROM = 45.0  # degrees of spec azimuth from which the key side is judged


def _face_surface(size: int, unit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face coordinates (x right, y down, eye distances from the eye midpoint) and camera-space
    unit normals (x right, y up, z to camera) of the generic surface."""
    c = (size - 1) / 2.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = (xs - c) / unit, (ys - c) / unit + 0.6  # eye line 0.6 units above the crop centre
    radius = 1.6
    z = np.sqrt(np.clip(radius**2 - x * x, 0.0, None))
    z -= 0.35 * np.clip(-0.4 - y, 0.0, None) ** 2  # forehead slopes back above the brows
    z -= 0.45 * np.clip(y - 1.6, 0.0, None) ** 2  # chin and jaw slope back
    ridge = np.clip(1.0 - np.abs(x) / 0.3, 0.0, None) * np.clip(y / 0.9, 0.0, 1.0) \
        * (y < 1.05)
    z = z + 0.35 * ridge
    zs = cv2.GaussianBlur(z * unit, (0, 0), 1.2)  # in pixels, smoothed (finite differences)
    dzdx = cv2.Sobel(zs, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    dzdy = cv2.Sobel(zs, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    n = np.stack([-dzdx, dzdy, np.ones_like(zs)], axis=-1)  # y up: the image's y is flipped
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return x, y, n


def _upright_crop(rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
    (lx, ly), (rx, ry) = face.eye_left, face.eye_right
    ed = max(4.0, math.hypot(rx - lx, ry - ly))
    roll = math.degrees(math.atan2(ry - ly, rx - lx))
    mx, my = (lx + rx) / 2.0, (ly + ry) / 2.0
    s = UNIT / ed
    m = cv2.getRotationMatrix2D((mx, my), roll, s)
    c = (CROP - 1) / 2.0
    m[:, 2] += np.array([c - mx, c - 0.6 * UNIT - my])
    return cv2.warpAffine(rgb, m, (CROP, CROP), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


def estimate_light_sh(rgb: np.ndarray, face: DetectedFace) -> dict[str, float]:
    """Key azimuth (degrees, spec conventions) from the output's face shading alone."""
    crop = _upright_crop(rgb, face).astype(np.float32)
    lin = crop / 255.0
    lin = np.where(lin <= 0.04045, lin / 12.92, ((lin + 0.055) / 1.055) ** 2.4)
    lum = 0.2126 * lin[..., 0] + 0.7152 * lin[..., 1] + 0.0722 * lin[..., 2]
    x, y, n = _face_surface(CROP, UNIT)
    face_area = ((x / 1.15) ** 2 + ((y - 0.55) / 1.45) ** 2) < 1.0
    eyes = ((np.abs(x) - 0.5) ** 2 + y * y) < 0.28**2
    brows = (y > -0.5) & (y < -0.18) & (np.abs(x) > 0.15) & (np.abs(x) < 0.85)
    mouth = ((x / 0.5) ** 2 + ((y - 1.4) / 0.22) ** 2) < 1.0
    # Skin by chromaticity near the cheeks' median (beards, glasses and hair drop out).
    tot = crop.sum(axis=-1) + 1e-3
    chroma = crop[..., :2] / tot[..., None]
    cheeks = face_area & (y > 0.3) & (y < 1.1) & (np.abs(x) > 0.35)
    ref = np.median(chroma[cheeks], axis=0)
    skin = np.abs(chroma - ref).max(axis=-1) < 0.06
    ok = face_area & ~eyes & ~brows & ~mouth & skin & (lum > 0.002) & (lum < 0.97)
    if ok.sum() < 60:
        raise ValueError("too little skin visible for a lighting estimate")
    nn, b = n[ok], lum[ok]
    a = np.column_stack([np.ones(len(b)), nn[:, 0], nn[:, 1], nn[:, 2]])
    wts = np.ones(len(b))
    coef = np.zeros(4)
    for _ in range(5):  # reweight: moles, specular highlights, stubble break the model
        coef, *_ = np.linalg.lstsq(a * wts[:, None], b * wts, rcond=None)
        resid = b - a @ coef
        scale = 1.4826 * np.median(np.abs(resid)) + 1e-9
        wts = 1.0 / np.maximum(1.0, np.abs(resid) / (2.0 * scale))
    # Irradiance at the face's front (band 0 + the dipole's z part) normalises the sideways part;
    # ambient and fill flatten that ratio, which AZIMUTH_GAIN undoes (fitted on photos with a
    # hand-labelled key side and on renders, benchmarks/adherence.py).
    front = coef[0] + coef[3]
    if front <= 1e-6:
        raise ValueError("the face is too dark for a lighting estimate")
    side = coef[1] / front
    az = math.degrees(math.atan(AZIMUTH_GAIN * side))
    resid = float(np.sqrt(np.mean((b - a @ coef) ** 2)) / (np.mean(b) + 1e-9))
    return {"azimuth": float(az), "side_gradient": float(side), "residual": resid,
            "pixels": int(ok.sum())}


def judge_side(estimated: float, spec_azimuth: float, threshold: float) -> tuple[bool, str, float]:
    """(passed, rule, effective threshold on |estimated - spec|) of the independent estimate.
    For a key 45 degrees or more off-axis the light must come from the spec's side, at least 5
    degrees off-axis (error <= |spec| - 5); nearer the axis only a gross error (over twice the
    threshold) fails, as the photo's own light moves the estimate by tens of degrees."""
    error = abs(estimated - spec_azimuth)
    if abs(spec_azimuth) >= SIDE_DECIDED_FROM:
        limit = abs(spec_azimuth) - 5.0
        return error <= limit, "key side", limit
    limit = 2.0 * threshold
    return error <= limit, "gross error", limit
