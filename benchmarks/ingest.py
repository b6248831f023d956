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
        if name in ("biden.jpg", "obama3.jpg"):  # tall photos: keep the upper body, as a portrait
            im = im.crop((0, 0, im.width, im.width * 5 // 4))
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


def make_dataset(folder: Path, count: int, start: int = 0) -> list[Path]:
    bases = _base_images()
    names = list(bases)
    by_talent: dict[str, list[str]] = {}
    paths = []
    for i in range(start, start + count):
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
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleave raw and ingest in this many slices (shared machines "
                             "drift; each slice's raw reference is measured right beside it)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        per_round = args.count // args.rounds
        folders = []
        for r in range(args.rounds):
            folder = tmp_path / f"drop-{r}"
            folder.mkdir()
            folders.append((folder, make_dataset(folder, per_round, start=r * per_round)))

        from castkeep.db.server import start_bundled_server, stop_bundled_server

        server = start_bundled_server(tmp_path / "pg", fast=True)
        try:
            os.environ["CASTKEEP_HOME"] = str(tmp_path / "home")
            os.environ["CASTKEEP_DATABASE__URL"] = server.superuser_url("postgres")
            from prefect.testing.utilities import prefect_test_harness

            from castkeep.flows.ingest_references import encoder_from_settings, ingest_references
            from castkeep.flows.runtime import open_runtime
            from castkeep.flows.settings import get_settings

            get_settings.cache_clear()
            settings = get_settings()
            open_runtime(settings).close()  # migrate before timing
            encoder = encoder_from_settings(settings.faces)
            raw_rate(folders[0][1][:4], encoder)  # warm caches

            raw_s = ingest_s = 0.0
            faces = 0
            summaries = []
            rounds = []
            with prefect_test_harness(server_startup_timeout=120):
                for folder, paths in folders:
                    before, n = raw_rate(paths, encoder)
                    t0 = time.perf_counter()
                    result = ingest_references(str(folder))
                    took = time.perf_counter() - t0
                    after, _ = raw_rate(paths, encoder)
                    faces += n
                    # Raw time of this slice: mean of the runs just before and just after.
                    slice_raw = len(paths) / before / 2 + len(paths) / after / 2
                    raw_s += slice_raw
                    ingest_s += took
                    summaries.append(result.summary())
                    rounds.append({"raw_per_s": [round(before, 2), round(after, 2)],
                                   "ingest_per_s": round(len(paths) / took, 2),
                                   "ratio": round(slice_raw / took, 3)})
                t1 = time.perf_counter()
                again = [ingest_references(str(folder)).summary() for folder, _ in folders]
                rerun_s = time.perf_counter() - t1
        finally:
            stop_bundled_server(tmp_path / "pg")

    total = per_round * args.rounds
    rejected = [r for s in summaries for r in s["rejected"]]
    print(json.dumps({
        "portraits": total,
        "faces_found_raw": faces,
        "accepted": sum(s["accepted"] for s in summaries),
        "rejected": rejected[:5],
        "raw_detect_embed_per_s": round(total / raw_s, 2),
        "ingest_per_s": round(total / ingest_s, 2),
        "ingest_s": round(ingest_s, 2),
        "ratio": round(raw_s / ingest_s, 3),
        "goal_ratio": 0.85,
        "rounds": rounds,
        "rerun_duplicates": sum(s["duplicates"] for s in again),
        "rerun_s": round(rerun_s, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
