"""Variety between the variants of one request, for the classical engine.

For the demo's two requests (one person; a group of two) the engine renders N seeded variants,
each is scored as the request pipeline scores it (identity, lighting, camera, quality), and the
mean pairwise grey difference of the passing ones is reported (compared at 256 x 320). Goal: at
least 8 grey levels (models/scoring/variety.MIN_MEAN_DIFFERENCE); the classical 1.0 engine gave
1.8-5.4 (the same picture N times).

    python benchmarks/variety.py [--variants N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

from castkeep.models.engines.base import EditInput, get_engine
from castkeep.models.faces.encoders import get_encoder
from castkeep.models.imaging import load_image
from castkeep.models.request_spec import Thresholds
from castkeep.models.scoring.variant import score_variant
from castkeep.models.scoring.variety import MIN_MEAN_DIFFERENCE, mean_pairwise_difference
from castkeep.models.specs import parse_camera, parse_lighting

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
REQUESTS = {
    # The demo's requests (flows/demo.py).
    "single": (("obama.jpg",), "azimuth=60,elevation=30,fill=0.2,temp=4500", "roll=8"),
    "group": (("obama.jpg", "biden.jpg"), "azimuth=-60,elevation=30,fill=0.3", None),
}


def run(variants: int = 6) -> dict:
    encoder = get_encoder("dlib-resnet-v1")
    engine = get_engine("classical")
    out: dict = {"variants": variants, "goal_min_mean_difference": MIN_MEAN_DIFFERENCE}
    t0 = time.perf_counter()
    for label, (photos, light, cam) in REQUESTS.items():
        refs = [load_image(FIXTURES / p).rgb for p in photos]
        faces = [encoder.detect(r, embed=True)[0] for r in refs]
        ids = [str(uuid.UUID(int=i + 1)) for i in range(len(refs))]
        lighting = parse_lighting(light) if light else None
        camera = parse_camera(cam) if cam else None
        passing, reasons = [], []
        for seed in range(variants):
            res = engine.predict(EditInput(refs, faces, lighting=lighting, camera=camera, seed=seed))
            scores = score_variant(
                res.image, encoder=encoder,
                talent_embeddings={t: [f.embedding] for t, f in zip(ids, faces)},
                talent_labels={t: p for t, p in zip(ids, photos)},
                reference_faces=dict(zip(ids, faces)), reference_images=dict(zip(ids, refs)),
                lighting=lighting, camera=camera, thresholds=Thresholds(), allow_extra_faces=False,
                preserves_geometry=bool(res.metadata.get("preserves_geometry")),
            )
            if scores.passed:
                passing.append(res.image)
            else:
                reasons.append({"seed": seed, "reasons": list(scores.reasons)})
        diff = mean_pairwise_difference(passing)
        out[label] = {
            "passed": len(passing),
            "mean_pairwise_grey_difference": None if diff is None else round(diff, 2),
            "meets_goal": diff is not None and diff >= MIN_MEAN_DIFFERENCE,
            "rejected": reasons,
        }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=6)
    result = run(parser.parse_args().variants)
    for label in REQUESTS:
        r = result[label]
        print(f"{label:7s} passed={r['passed']} mean_diff={r['mean_pairwise_grey_difference']}",
              file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
