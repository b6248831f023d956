"""Ingest throughput vs the raw detect+embed rate on the same images, measured in one run.

200 distinct portraits are made by augmenting the fixture photos (crop, mirror, brightness), with
one consent manifest per person. The reference is what ingest cannot avoid: decode each image and
detect + embed its faces with the configured encoder. The ingest side is the real flow
(`ingest_references`, Prefect test harness, bundled PostgreSQL, filesystem store), including
planning, hashing, dedup, the mislabel guard, object storage and the catalogue transaction.
Goal: ingest rate >= 0.85 x the raw rate. Prints JSON.

    python benchmarks/ingest.py [--count 200]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SOURCES = {"obama.jpg": "bench-a", "obama2.jpg": "bench-a", "obama3.jpg": "bench-a",
           "biden.jpg": "bench-b"}
MAX_SIDE = 720  # portraits as an agency would deliver them for reference use, after resize


def _base_images() -> dict[str, np.ndarray]:
    out = {}
    for name in SOURCES:
        im = Image.open(FIXTURES / name).convert("RGB")
        im.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
        out[name] = np.asarray(im)
    return out


def _augment(rgb: np.ndarray, i: int) -> bytes:
    h, w = rgb.shape[:2]
    dx, dy = (i * 7) % (w // 12), (i * 5) % (h // 12)
    out = rgb[dy:h - (i * 3) % (h // 14), dx:w - (i * 11) % (w // 14)]
    if i % 2:
        out = out[:, ::-1]
    out = np.clip(out.astype(np.float32) * (0.85 + (i % 7) * 0.05), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(out)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_dataset(folder: Path, count: int) -> list[Path]:
    bases = _base_images()
    names = list(bases)
    by_talent: dict[str, list[str]] = {}
    paths = []
    for i in range(count):
        src = names[i % len(names)]
        fname = f"p{i:04d}.jpg"
        (folder / fname).write_bytes(_augment(bases[src], i))
        by_talent.setdefault(SOURCES[src], []).append(fname)
        paths.append(folder / fname)
    for ref, portraits in by_talent.items():
        (folder / f"{ref}-release.txt").write_text(f"benchmark release for {ref}\n")
        doc = {
            "talent": {"external_ref": ref, "display_name": f"Benchmark {ref}"},
            "portraits": portraits, "release_document": f"{ref}-release.txt",
            "valid_from": "2024-01-01", "valid_until": "2035-12-31",
            "scope": {"channels": ["web"], "territories": ["WORLD"], "purposes": ["advertising"],
                      "edits": ["lighting"]},
            "signed_by": f"Benchmark {ref}",
        }
        (folder / f"{ref}.consent.yaml").write_text(yaml.safe_dump(doc))
    return paths


def raw_rate(paths: list[Path], encoder) -> tuple[float, int]:
    from castkeep.models.imaging import decode_image

    faces = 0
    t0 = time.perf_counter()
    for p in paths:
        rgb = decode_image(p.read_bytes()).rgb
        faces += len(encoder.detect(rgb, embed=True))
    return len(paths) / (time.perf_counter() - t0), faces


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "drop"
        data.mkdir()
        paths = make_dataset(data, args.count)

        from castkeep.db.server import start_bundled_server, stop_bundled_server

        server = start_bundled_server(tmp_path / "pg", fast=True)
        try:
            os.environ["CASTKEEP_HOME"] = str(tmp_path / "home")
            os.environ["CASTKEEP_DATABASE__URL"] = server.url("postgres")
            from prefect.testing.utilities import prefect_test_harness

            from castkeep.flows.ingest_references import encoder_from_settings, ingest_references
            from castkeep.flows.runtime import open_runtime
            from castkeep.flows.settings import get_settings

            get_settings.cache_clear()
            settings = get_settings()
            open_runtime(settings).close()  # migrate before timing
            encoder = encoder_from_settings(settings.faces)
            raw_rate(paths[:4], encoder)  # warm caches

            with prefect_test_harness(server_startup_timeout=120):
                raw1, faces = raw_rate(paths, encoder)
                t0 = time.perf_counter()
                result = ingest_references(str(data))
                ingest_s = time.perf_counter() - t0
                raw2, _ = raw_rate(paths, encoder)
                t1 = time.perf_counter()
                again = ingest_references(str(data))
                rerun_s = time.perf_counter() - t1
        finally:
            stop_bundled_server(tmp_path / "pg")

    summary = result.summary()
    raw = (raw1 + raw2) / 2  # before and after, so drift on a shared machine evens out
    ingest = args.count / ingest_s
    print(json.dumps({
        "portraits": args.count,
        "faces_found_raw": faces,
        "accepted": summary["accepted"],
        "rejected": len(summary["rejected"]),
        "rejections": summary["rejected"][:5],
        "raw_detect_embed_per_s": round(raw, 2),
        "raw_runs_per_s": [round(raw1, 2), round(raw2, 2)],
        "ingest_per_s": round(ingest, 2),
        "ingest_s": round(ingest_s, 2),
        "ratio": round(ingest / raw, 3),
        "goal_ratio": 0.85,
        "rerun_duplicates": again.summary()["duplicates"],
        "rerun_s": round(rerun_s, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
