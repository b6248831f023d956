"""Identify benchmark: does the soft-binding watermark lead a transformed copy back to its key,
and does it stay silent on images castkeep never marked?

Hosts are what castkeep signs: classical-engine outputs of the demo's requests (one person, two
seeds; a group of two), at the engine's size and at a request's 640 px, plus two fixture photos. Each gets a random key, is marked and encoded as
signing does (JPEG q92), then every transformation of the grid is applied and read back blind.
True match: the key read is the key embedded. False match: any key at all (CRC-valid) read from a
non-catalogued image: the fixture portraits (the sources the outputs were edited from, and
another person) and their transforms, and synthetic images. That is stricter than `identify`,
which also needs the key to be catalogued. PSNR is of the marked pixels against the unmarked.

    python benchmarks/identify.py [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from castkeep.provenance import watermark
from PIL import Image

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
Transform = Callable[[np.ndarray], np.ndarray]


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def resize(rgb: np.ndarray, f: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((round(w * f), round(h * f)), Image.LANCZOS))


def crop(rgb: np.ndarray, f: float) -> np.ndarray:
    # f of each dimension, unevenly from the sides.
    h, w = rgb.shape[:2]
    return rgb[int(h * f * 0.7):h - int(h * f * 0.3), int(w * f * 0.4):w - int(w * f * 0.6)]


def rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).rotate(degrees, Image.BICUBIC))


GRID: dict[str, Transform] = {
    "as signed (metadata stripped)": lambda a: a,
    "jpeg q80": lambda a: jpeg(a, 80),
    "jpeg q60": lambda a: jpeg(a, 60),
    "jpeg q40": lambda a: jpeg(a, 40),
    "resize 75%": lambda a: jpeg(resize(a, 0.75), 92),
    "resize 50%": lambda a: jpeg(resize(a, 0.5), 92),
    "resize 35%": lambda a: jpeg(resize(a, 0.35), 92),
    "crop 5%": lambda a: jpeg(crop(a, 0.05), 92),
    "crop 10%": lambda a: jpeg(crop(a, 0.10), 92),
    "crop 20%": lambda a: jpeg(crop(a, 0.20), 92),
    "crop 10% + q60": lambda a: jpeg(crop(a, 0.10), 60),
    "resize 50% + q60": lambda a: jpeg(resize(a, 0.5), 60),
    "crop 10% + resize 50% + q60": lambda a: jpeg(resize(crop(a, 0.10), 0.5), 60),
    "resize 75% + crop 10% + q70": lambda a: jpeg(crop(resize(a, 0.75), 0.10), 70),
    # Outside what the mark is built for (no rotation or mirror search): shown, not hidden.
    "rotate 2 deg": lambda a: jpeg(rotate(a, 2.0), 92),
    "mirror": lambda a: jpeg(a[:, ::-1].copy(), 92),
}
NEGATIVE_TRANSFORMS = ("as signed (metadata stripped)", "jpeg q60", "resize 50%",
                       "crop 10% + resize 50% + q60")


def engine_outputs() -> list[tuple[str, np.ndarray]]:
    """The demo requests' classical renders (what signing marks)."""
    from castkeep.models.engines.base import EditInput, get_engine
    from castkeep.models.faces.encoders import get_encoder
    from castkeep.models.imaging import load_image
    from castkeep.models.specs import parse_camera, parse_lighting

    encoder = get_encoder("dlib-resnet-v1")
    engine = get_engine("classical")
    out = []
    for label, photos, light, cam, seeds in (
            ("single", ("obama.jpg",), "azimuth=60,elevation=30,fill=0.2,temp=4500", "roll=8",
             (0, 1)),
            ("group", ("obama.jpg", "biden.jpg"), "azimuth=-60,elevation=30,fill=0.3", None, (0,))):
        refs = [load_image(FIXTURES / p).rgb for p in photos]
        faces = [encoder.detect(r, embed=True)[0] for r in refs]
        for seed in seeds:
            res = engine.predict(EditInput(refs, faces, lighting=parse_lighting(light),
                                           camera=parse_camera(cam) if cam else None, seed=seed))
            out.append((f"classical {label} seed {seed}", np.ascontiguousarray(res.image)))
    return out


def photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(FIXTURES / name).convert("RGB"))


def synthetic() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    h, w = 900, 720
    yy, xx = np.mgrid[0:h, 0:w]
    grad = np.stack([xx * 255 / w, yy * 255 / h, np.full((h, w), 128.0)], axis=-1)
    blocks = np.kron(rng.integers(0, 256, (h // 30, w // 30, 3)), np.ones((30, 30, 1)))
    periodic = 128 + 60 * np.sin(xx / 4.0)[..., None] * np.cos(yy / 4.0)[..., None]
    return [
        ("synthetic noise", rng.integers(0, 256, (h, w, 3))),
        ("synthetic gradient", grad),
        ("synthetic blocks", blocks),
        ("synthetic 4 px texture", np.repeat(periodic, 3, axis=-1)),
        ("synthetic flat grey", np.full((h, w, 3), 128)),
    ]


def _read(rgb: np.ndarray) -> tuple[watermark.Reading, float]:
    t0 = time.perf_counter()
    reading = watermark.read(np.ascontiguousarray(rgb, dtype=np.uint8))
    return reading, time.perf_counter() - t0


def run() -> dict:
    t_start = time.perf_counter()
    renders = engine_outputs()
    # A request's output is 512 x 640 (the renders scaled as the request pipeline scales them).
    hosts = renders + [(f"{label} at 640 px", resize(rgb, 640 / max(rgb.shape[:2])))
                       for label, rgb in renders]
    hosts += [("photo obama2.jpg", photo("obama2.jpg")), ("photo biden.jpg", photo("biden.jpg"))]
    psnrs, rows = {}, {name: {"found": 0, "tried": 0, "sync": [], "seconds": []} for name in GRID}
    for label, rgb in hosts:
        key = secrets.randbits(watermark.KEY_BITS)
        marked = watermark.embed(rgb, key)
        psnrs[label] = round(watermark.psnr(rgb, marked), 2)
        signed = jpeg(marked, 92)
        for name, transform in GRID.items():
            reading, secs = _read(transform(signed))
            row = rows[name]
            row["tried"] += 1
            row["found"] += int(reading.key == key)
            row["sync"].append(reading.sync)
            row["seconds"].append(secs)
    grid = {name: {"true_match_rate": row["found"] / row["tried"], "found": row["found"],
                   "tried": row["tried"], "min_sync": round(min(row["sync"]), 2),
                   "mean_read_s": round(float(np.mean(row["seconds"])), 2)}
            for name, row in rows.items()}

    negatives = [(f"photo {n}", photo(n)) for n in ("obama.jpg", "obama2.jpg", "obama3.jpg",
                                                      "biden.jpg", "obama_partial_face.jpg")]
    negatives += [(n, np.clip(a, 0, 255).astype(np.uint8)) for n, a in synthetic()]
    false, tried, max_sync = [], 0, 0.0
    for label, rgb in negatives:
        for name in NEGATIVE_TRANSFORMS:
            reading, _ = _read(GRID[name](rgb))
            tried += 1
            max_sync = max(max_sync, reading.sync)
            if reading.key is not None:
                false.append(f"{label} / {name}")
    return {
        "method": watermark.ALG,
        "hosts": [label for label, _ in hosts],
        "psnr_db": psnrs,
        "min_psnr_db": min(psnrs.values()),
        "grid": grid,
        "false_match_rate": len(false) / tried,
        "false_matches": false,
        "negatives_tried": tried,
        "negative_max_sync": round(max_sync, 2),
        "sync_threshold": watermark.SYNC_THRESHOLD,
        "seconds": round(time.perf_counter() - t_start, 1),
    }


def table(result: dict) -> str:
    lines = [f"soft binding {result['method']}: PSNR min {result['min_psnr_db']} dB "
             f"({', '.join(f'{k} {v}' for k, v in result['psnr_db'].items())})",
             "",
             "| transformation | true match | min sync z | read s |",
             "|---|---|---|---|"]
    for name, row in result["grid"].items():
        lines.append(f"| {name} | {row['found']}/{row['tried']} ({row['true_match_rate']:.0%}) "
                     f"| {row['min_sync']} | {row['mean_read_s']} |")
    lines += ["",
              f"false match rate: {len(result['false_matches'])}/{result['negatives_tried']} "
              f"({result['false_match_rate']:.0%}); largest sync z on unmarked images "
              f"{result['negative_max_sync']} (threshold {result['sync_threshold']})",
              f"{result['seconds']} s in all"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Print JSON only.")
    args = parser.parse_args()
    result = run()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(table(result))


if __name__ == "__main__":
    main()
