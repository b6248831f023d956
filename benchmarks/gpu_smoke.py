"""GPU smoke run of the qwen-image-edit engine on tiny random weights (no downloads).

    python benchmarks/gpu_smoke.py [--steps 4] [--sizes 256,512]

With CUDA: builds the tiny Qwen-Image-Edit pipeline (castkeep/testing/tiny_qwen.py), saves it to a temp
dir, loads it through the engine's production local-directory path in bf16 and edits a
reference at each size. Prints JSON: per-step times, peak GPU memory, and the same output checks
as the CPU tests (shape, uint8, not blank, same seed -> same image, other seed -> different,
a LoRA changes the output and is recorded by sha256). Without CUDA it says so and exits 0.
Budget: well under 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _checks(engine, make_input, size: int, lora: Path) -> dict:
    from castkeep.models.engines.engine_qwen import file_sha256

    first = engine.predict(make_input(seed=1))
    again = engine.predict(make_input(seed=1))
    other = engine.predict(make_input(seed=2))
    with_lora = engine.predict(make_input(seed=1, loras=[{"path": str(lora), "weight": 1.0}]))
    img = first.image
    steps = first.metadata["timings"]["per_step_s"]
    return {
        "size": size,
        "dtype": first.metadata["params"]["dtype"],
        "device": first.metadata["params"]["device"],
        "per_step_s": steps,
        "mean_step_s_after_first": round(float(np.mean(steps[1:])), 5) if len(steps) > 1 else None,
        "inference_s": first.metadata["timings"]["inference_s"],
        "load_s_first_call": first.metadata["timings"]["load_s"],
        "peak_gpu_memory_mib": round(first.metadata["peak_gpu_memory_bytes"] / 2**20, 1),
        "checks": {
            "shape_ok": img.shape == (size, size, 3),
            "uint8": img.dtype == np.uint8,
            "not_blank": bool(img.std() > 0),
            "same_seed_same_image": bool(np.array_equal(img, again.image)),
            "other_seed_differs": bool(not np.array_equal(img, other.image)),
            "lora_changes_output": bool(not np.array_equal(img, with_lora.image)),
            "lora_sha256_recorded": with_lora.metadata["loras"][0]["sha256"] == file_sha256(lora),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--sizes", default="256,512")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"cuda": False, "message": "no CUDA device: GPU smoke skipped"}))
        return 0

    from castkeep.models.engines.base import EditInput, get_engine
    from castkeep.models.faces.face_types import DetectedFace, FaceQuality
    from castkeep.testing.tiny_qwen import save_tiny_lora, save_tiny_pipeline
    from castkeep.models.specs import parse_camera, parse_lighting

    t0 = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_tiny_pipeline(Path(tmp) / "tiny-qwen")
        lora = save_tiny_lora(Path(tmp) / "loras", seed=1)
        engine = get_engine("qwen-image-edit", model_dir=model_dir, device="cuda")
        for size in [int(s) for s in args.sizes.split(",")]:
            rng = np.random.default_rng(size)
            ref = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
            # The engine does not read face geometry; a nominal face in the middle.
            c = size / 2.0
            face = DetectedFace(
                box=(c - size / 5, c - size / 5, c + size / 5, c + size / 5),
                landmarks=((c - size / 10, c - size / 20), (c + size / 10, c - size / 20), (c, c)),
                eye_left=(c - size / 10, c - size / 20), eye_right=(c + size / 10, c - size / 20),
                nose=(c, c),
                quality=FaceQuality(face_px=int(size / 2.5), sharpness=1.0, det_score=1.0,
                                    yaw=0.0, roll=0.0),
                encoder="none", encoder_version="0",
            )

            def make_input(seed: int, loras=None, size=size, ref=ref, face=face):
                options = {"steps": args.steps, "true_cfg_scale": 4.0, "negative_prompt": " ",
                           "width": size, "height": size, "reference_area": size * size}
                if loras:
                    options["loras"] = loras
                return EditInput(
                    references=[ref], faces=[face],
                    lighting=parse_lighting("azimuth=45,elevation=30,fill=0.2,temp=3200"),
                    camera=parse_camera("roll=10,shot=medium"), seed=seed, options=options,
                )

            results.append(_checks(engine, make_input, size, lora))
    ok = all(all(r["checks"].values()) for r in results)
    print(json.dumps({
        "cuda": True,
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "steps": args.steps,
        "true_cfg": "on (negative prompt given): two transformer passes per step",
        "results": results,
        "all_checks_passed": ok,
        "total_s": round(time.perf_counter() - t0, 2),
    }, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
