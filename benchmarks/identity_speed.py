"""dlib-resnet-v1's face descriptors: castkeep's (the ResNet converted to ONNX, onnxruntime) vs
dlib's own compute_face_descriptor, on the same aligned chips, measured interleaved in one run.
Goal: speedup >= 5 at a max absolute descriptor difference <= 1e-4.

Also times what surrounds the ResNet in `detect()`: HOG detection with the 5-point landmarks
and chip alignment, per image, so it is visible whether detection now dominates.

    python benchmarks/identity_speed.py [--rounds 7] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from castkeep.models.faces.dlib_encoder import CHIP_PADDING, CHIP_SIZE
from castkeep.models.faces.encoders import get_encoder
from castkeep.models.imaging import load_image

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
PORTRAITS = ("obama", "obama2", "obama3", "biden", "obama_partial_face", "obama_partial_face2")


def _chips(encoder, images) -> list[np.ndarray]:
    """The aligned chips detect() embeds, from the landmarks it finds."""
    import dlib

    chips = []
    for rgb in images:
        for face in encoder.detect(rgb, embed=False):
            x0, y0, x1, y1 = (round(v) for v in face.box)
            parts = [dlib.point(round(x), round(y)) for x, y in face.landmarks]
            shape = dlib.full_object_detection(dlib.rectangle(x0, y0, x1 - 1, y1 - 1), parts)
            chips.append(dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
    return chips


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(rounds: int, threads: int | None) -> dict:
    import dlib
    import face_recognition_models as frm

    images = [load_image(FIXTURES / f"{name}.jpg").rgb for name in PORTRAITS]
    encoder = get_encoder("dlib-resnet-v1", threads=threads)
    encoder.load()
    resnet = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    chips = _chips(encoder, images)
    n = len(chips)

    def ours():
        return encoder.compute_descriptors(chips)

    def theirs():
        return np.asarray([np.asarray(d) for d in resnet.compute_face_descriptor(chips)])

    diff = float(np.abs(ours() - theirs()).max())  # also the warm-up of both
    t_dlib, t_ours = [], []
    for _ in range(rounds):  # interleaved: machine load hits both alike
        t_dlib.append(_timed(theirs))
        t_ours.append(_timed(ours))
    dlib_ms = statistics.median(t_dlib) / n * 1000
    ours_ms = statistics.median(t_ours) / n * 1000

    # What surrounds the ResNet: HOG + landmarks + chips (embed=False), and all of detect().
    t_det, t_full = [], []
    for _ in range(max(1, rounds // 2)):
        t_det.append(sum(_timed(lambda im=rgb: encoder.detect(im, embed=False)) for rgb in images))
        t_full.append(sum(_timed(lambda im=rgb: encoder.detect(im)) for rgb in images))
    detect_ms = statistics.median(t_det) / len(images) * 1000
    full_ms = statistics.median(t_full) / len(images) * 1000
    return {
        "faces": n,
        "dlib_ms_per_face": round(dlib_ms, 2),
        "castkeep_ms_per_face": round(ours_ms, 2),
        "speedup": round(dlib_ms / ours_ms, 2),
        "max_abs_descriptor_diff": diff,
        "runtime": encoder.descriptor_runtime,
        "onnx_threads": threads or "default",
        "images": len(images),
        "detect_landmarks_ms_per_image": round(detect_ms, 1),
        "detect_and_embed_ms_per_image": round(full_ms, 1),
        "goal_met": dlib_ms / ours_ms >= 5 and diff <= 1e-4,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None,
                        help="onnxruntime intra-op threads (default: onnxruntime's choice)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = measure(max(1, args.rounds), args.threads)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:32} {value}")


if __name__ == "__main__":
    main()
