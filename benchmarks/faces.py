"""Face benchmarks, each a ratio or a quality figure measured against a reference in the same run.

1. Pipeline throughput: faces/s through castkeep (decode + dlib-resnet-v1 detect + align + embed
   + quality) versus the same dlib calls made directly on the same images (goal: ratio >= 0.9).
   Also reported: dlib the way face_recognition calls it (HOG with one upsample on the full image).
2. pgvector search on synthetic clustered 128-d embeddings (dlib-like geometry): p50/p95 latency of
   castkeep.db.face_search.search on the partial HNSW index, recall@10 against exact search, at
   each requested row count (goal at 1M: p50 < 10 ms, recall@10 >= 0.95).

    python benchmarks/faces.py                      # pipeline + search at 100k
    python benchmarks/faces.py --rows 100000 --rows 1000000
    python benchmarks/faces.py --skip-search        # pipeline only

Prints one JSON document. A bundled PostgreSQL is started in a temporary folder unless
--database-url points at a server where the user may CREATE DATABASE.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PORTRAITS = ("obama", "obama2", "obama3", "biden", "obama_partial_face", "obama_partial_face2")


# --- 1. pipeline throughput ------------------------------------------------------------------


def _images() -> list[bytes]:
    """The fixture portraits plus two synthetic group photos, as encoded files."""
    from castkeep.models.imaging import encode_image, load_image

    data = [(FIXTURES / f"{n}.jpg").read_bytes() for n in PORTRAITS]
    rgb = {n: load_image(FIXTURES / f"{n}.jpg").rgb for n in ("obama", "biden", "obama2")}
    sys.path.insert(0, str(ROOT))
    from tests.plugins.faces import side_by_side

    for group in (("obama", "biden"), ("biden", "obama2", "obama")):
        canvas, _, _ = side_by_side(*(rgb[n] for n in group))
        data.append(encode_image(canvas, "JPEG", quality=92))
    return data


def _raw_dlib(max_side: int, upsample: int, bounded: bool):
    """dlib called directly: decode with Pillow, detect (on a bounded copy when `bounded`),
    5-point landmarks on the full image, chip, ResNet descriptor."""
    import cv2
    import dlib
    import face_recognition_models as frm
    from PIL import Image, ImageOps

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def run(data: bytes) -> int:
        im = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
        rgb = np.asarray(im)
        h, w = rgb.shape[:2]
        scale = min(1.0, max_side / max(h, w)) if bounded else 1.0
        small = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
        rects = det(small, upsample)
        chips = []
        for r in rects:
            rect = dlib.rectangle(
                round(r.left() / scale), round(r.top() / scale),
                round((r.right() + 1) / scale) - 1, round((r.bottom() + 1) / scale) - 1,
            )
            chips.append(dlib.get_face_chip(rgb, sp(rgb, rect), size=150, padding=0.25))
        if chips:
            net.compute_face_descriptor(chips)
        return len(rects)

    return run


def _castkeep(encoder):
    from castkeep.models.imaging import decode_image

    def run(data: bytes) -> int:
        return len(encoder.detect(decode_image(data).rgb))

    return run


def bench_pipeline(rounds: int) -> dict:
    from castkeep.models.faces.encoders import get_encoder

    images = _images()
    encoder = get_encoder("dlib-resnet-v1")
    encoder.load()
    runners = {
        "castkeep": _castkeep(encoder),
        "raw_dlib": _raw_dlib(encoder.max_side, encoder.upsample, bounded=True),
    }
    faces = {name: sum(run(d) for d in images) for name, run in runners.items()}  # warm-up
    # Per image, alternate the two sides (A B, then B A) every round and keep each side's best
    # time: on a shared machine the minimum is the measurement least disturbed by other load.
    best_img: dict[str, list[float]] = {name: [float("inf")] * len(images) for name in runners}
    passes: dict[str, list[float]] = {name: [] for name in runners}
    order = list(runners)
    for r in range(rounds):
        spent = {name: 0.0 for name in runners}
        for i, d in enumerate(images):
            for name in order if (r + i) % 2 == 0 else order[::-1]:
                t = time.perf_counter()
                runners[name](d)
                dt = time.perf_counter() - t
                spent[name] += dt
                best_img[name][i] = min(best_img[name][i], dt)
        for name in runners:
            passes[name].append(spent[name])
    best = {name: sum(ts) for name, ts in best_img.items()}
    fps = {name: faces[name] / best[name] for name in runners}
    times = passes
    # face_recognition's way, once (slow): HOG upsampled on the full-resolution image.
    full = _raw_dlib(encoder.max_side, 1, bounded=False)
    t = time.perf_counter()
    full_faces = sum(full(d) for d in images)
    full_s = time.perf_counter() - t
    return {
        "images": len(images),
        "faces_per_pass": faces,
        "rounds": rounds,
        "castkeep_faces_per_s": round(fps["castkeep"], 2),
        "raw_dlib_faces_per_s": round(fps["raw_dlib"], 2),
        "ratio": round(fps["castkeep"] / fps["raw_dlib"], 3),
        "goal_ratio": 0.9,
        "median_pass_s": {n: round(statistics.median(ts), 3) for n, ts in times.items()},
        "raw_dlib_full_resolution_faces_per_s": round(full_faces / full_s, 2),
        "full_resolution_faces": full_faces,
    }


# --- 2. pgvector search ------------------------------------------------------------------------


def synthetic_embeddings(rows: int, per_identity: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered vectors shaped like dlib descriptors: a shared mean (norm ~1.2), identities
    ~0.85 apart, faces of one identity ~0.35 apart. Returns (vectors, identity of each, centres)."""
    rng = np.random.default_rng(seed)
    n_id = max(1, rows // per_identity)
    mean = rng.normal(size=128)
    mean *= 1.2 / np.linalg.norm(mean)
    centres = (mean + rng.normal(0, 0.053, (n_id, 128))).astype(np.float32)
    ident = np.arange(rows) % n_id
    vecs = np.empty((rows, 128), np.float32)
    for s in range(0, rows, 200_000):
        e = min(rows, s + 200_000)
        vecs[s:e] = centres[ident[s:e]] + rng.normal(0, 0.022, (e - s, 128)).astype(np.float32)
    return vecs, ident, centres


def _exact_topk(vecs_unit: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    sims = vecs_unit @ (q / np.linalg.norm(q))
    top = np.argpartition(-sims, k)[:k]
    return top[np.argsort(-sims[top])]


def bench_search(
    url: str, rows: int, queries: int, ef_values: list[int], seed: int, index_with: str = ""
) -> dict:
    import psycopg
    import sqlalchemy as sa
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb
    from sqlalchemy.orm import Session

    from castkeep.db.engine import make_engine
    from castkeep.db.face_search import search
    from castkeep.db.schema import FACE_HNSW_INDEXES

    out: dict = {"rows": rows, "queries": queries}
    vecs, ident, centres = synthetic_embeddings(rows, 10, seed)
    ids = [uuid.uuid4() for _ in range(rows)]
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    name, dim, predicate = next(ix for ix in FACE_HNSW_INDEXES if ix[1] == 128)
    with psycopg.connect(plain, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("TRUNCATE face")
        t_id, c_id, r_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        conn.execute("INSERT INTO talent (id, display_name) VALUES (%s, 'bench')", (t_id,))
        conn.execute(
            "INSERT INTO consent (id, talent_id, release_doc_sha256, release_doc_key, valid_from, valid_until,"
            " scope, synthetic_likeness, ai_training, minor, status) VALUES (%s, %s, %s, 'k', now(),"
            " now() + interval '1 day', '{}', false, false, false, 'active')",
            (c_id, t_id, "0" * 64),
        )
        conn.execute(
            "INSERT INTO reference_portrait (id, talent_id, consent_id, sha256, object_key, media_type, width,"
            " height, quality) VALUES (%s, %s, %s, %s, 'k', 'image/jpeg', 1, 1, '{}')",
            (r_id, t_id, c_id, secrets.token_hex(32)),
        )
        # Bulk load without the index, then build it (how a large catalogue is restored).
        conn.execute(f"DROP INDEX IF EXISTS {name}")
        t = time.perf_counter()
        empty_list, empty_obj = Jsonb([]), Jsonb({})
        with conn.cursor() as cur, cur.copy(
            "COPY face (id, reference_portrait_id, face_index, encoder, encoder_version, dim, embedding,"
            " box, landmarks, quality) FROM STDIN WITH (FORMAT BINARY)"
        ) as cp:
            cp.set_types(["uuid", "uuid", "int4", "varchar", "varchar", "int4", "vector", "jsonb", "jsonb", "jsonb"])
            for i in range(rows):
                cp.write_row((ids[i], r_id, i, "dlib-resnet-v1", "resnet_v1+sp5", 128, vecs[i], empty_list, empty_list, empty_obj))
        out["load_s"] = round(time.perf_counter() - t, 1)
        conn.execute("ANALYZE face")
        conn.execute("SET maintenance_work_mem = '3GB'")
        conn.execute(f"SET max_parallel_maintenance_workers = {max(1, (os.cpu_count() or 2) - 1)}")
        t = time.perf_counter()
        conn.execute(
            f"CREATE INDEX {name} ON face USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
            f"{index_with} WHERE {predicate}"
        )
        out["index_params"] = index_with or "pgvector defaults (m = 16, ef_construction = 64), as migrated"
        out["index_build_s"] = round(time.perf_counter() - t, 1)
        out["pgvector"] = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]

    rng = np.random.default_rng(seed + 1)
    qid = rng.integers(0, len(centres), queries)
    qs = (centres[qid] + rng.normal(0, 0.022, (queries, 128))).astype(np.float32)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    truth = [set(_exact_topk(unit, q, 10).tolist()) for q in qs]
    index_of = {u: i for i, u in enumerate(ids)}

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            plan = "\n".join(
                r[0] for r in session.execute(
                    sa.text(
                        f"EXPLAIN SELECT id FROM face f WHERE f.encoder = 'dlib-resnet-v1' AND f.dim = 128 "
                        f"ORDER BY (f.embedding::vector(128)) <=> CAST(:q AS vector(128)) LIMIT 10"
                    ),
                    {"q": "[" + ",".join(map(str, qs[0].tolist())) + "]"},
                )
            )
            out["uses_hnsw_index"] = name in plan
            results = []
            for ef in ef_values:
                for q in qs[: min(20, queries)]:  # warm the index pages
                    search(session, q, encoder="dlib-resnet-v1", k=10, ef_search=ef)
                lat, recall = [], []
                for q, tr in zip(qs, truth):
                    t = time.perf_counter()
                    hits = search(session, q, encoder="dlib-resnet-v1", k=10, ef_search=ef)
                    lat.append((time.perf_counter() - t) * 1000)
                    got = {index_of[h.face_id] for h in hits}
                    recall.append(len(got & tr) / 10)
                session.rollback()  # end the transaction holding the set_config values
                lat.sort()
                results.append({
                    "ef_search": ef,
                    "p50_ms": round(statistics.median(lat), 2),
                    "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 2),
                    "recall_at_10": round(float(np.mean(recall)), 4),
                })
            out["hnsw"] = results
            session.rollback()
        # The same index query without castkeep (psycopg, binary vector parameter): how much of
        # the latency is castkeep's own (ef setting, owner join, both distances, mapping).
        with psycopg.connect(plain, autocommit=False) as conn:
            register_vector(conn)
            conn.execute("SET hnsw.ef_search = 100")
            sql = (
                f"SELECT id FROM face WHERE encoder = 'dlib-resnet-v1' AND dim = 128 "
                f"ORDER BY (embedding::vector(128)) <=> %s::vector(128) LIMIT 10"
            )
            for q in qs[:20]:
                conn.execute(sql, (q,)).fetchall()
            lat = []
            for q in qs:
                t = time.perf_counter()
                conn.execute(sql, (q,)).fetchall()
                lat.append((time.perf_counter() - t) * 1000)
            lat.sort()
            out["bare_pgvector_ef100"] = {
                "p50_ms": round(statistics.median(lat), 2),
                "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 2),
            }
        with Session(engine) as session:
            # Exact (sequential) search through the same function: the reference latency.
            lat = []
            n_exact = min(10, queries)
            for q, tr in zip(qs[:n_exact], truth[:n_exact]):
                t = time.perf_counter()
                hits = search(session, q, encoder="dlib-resnet-v1", k=10, exact=True)
                lat.append((time.perf_counter() - t) * 1000)
                assert {index_of[h.face_id] for h in hits} == tr or len({index_of[h.face_id] for h in hits} & tr) >= 9
            out["exact_p50_ms"] = round(statistics.median(lat), 2)
    finally:
        engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, action="append", help="catalogue sizes for the search benchmark (repeatable)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ef", type=int, action="append", help="hnsw.ef_search values (repeatable)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--database-url", default=os.environ.get("CASTKEEP_BENCH_DATABASE_URL"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hnsw-m", type=int, help="rebuild the index with this m (default: as migrated)")
    ap.add_argument("--ef-construction", type=int, help="rebuild the index with this ef_construction")
    args = ap.parse_args(argv)

    report: dict = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
    }
    if not args.skip_pipeline:
        report["pipeline"] = bench_pipeline(args.rounds)
        print(json.dumps({"pipeline": report["pipeline"]}), file=sys.stderr, flush=True)
    if not args.skip_search:
        report["search"] = _run_search(args)
    print(json.dumps(report, indent=2))
    return 0


def _run_search(args) -> list[dict]:
    import psycopg

    from castkeep.db.migrate import upgrade

    rows_list = args.rows or [100_000]
    ef_values = args.ef or [40, 100, 200]
    with tempfile.TemporaryDirectory(prefix="castkeep-bench-") as tmp:
        server_dir = None
        if args.database_url:
            base = args.database_url
        else:
            from castkeep.db.server import start_bundled_server

            server_dir = Path(tmp) / "pg"
            base = start_bundled_server(server_dir, fast=True).superuser_url("postgres")
        from sqlalchemy.engine import make_url

        dbname = f"castkeep_bench_{secrets.token_hex(3)}"
        admin = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        url = make_url(base).set(database=dbname).render_as_string(hide_password=False)
        try:
            upgrade(url)
            results = []
            for rows in rows_list:
                params = [f"{k} = {v}" for k, v in (("m", args.hnsw_m), ("ef_construction", args.ef_construction)) if v]
                index_with = f"WITH ({', '.join(params)})" if params else ""
                r = bench_search(url, rows, args.queries, ef_values, args.seed, index_with)
                print(json.dumps({"search": r}), file=sys.stderr, flush=True)
                results.append(r)
            return results
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            if server_dir is not None:
                from castkeep.db.server import stop_bundled_server

                stop_bundled_server(server_dir)


if __name__ == "__main__":
    raise SystemExit(main())
