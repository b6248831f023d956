"""insightface model packs (buffalo_l, antelopev2, or any SCRFD + ArcFace ONNX pack) read from a
local folder and run with onnxruntime.

castkeep reads the packs itself rather than through the `insightface` package: that package
requires `opencv-python`, which installs a second `cv2` over castkeep's `opencv-python-headless`,
and its FaceAnalysis downloads a pack it cannot find. Here a missing pack is an error naming the
setting, and nothing is ever fetched. The decoding (SCRFD anchors, ArcFace 5-point similarity
alignment, input normalisation) follows insightface's reference implementation (MIT).

The pretrained insightface weights are licensed for non-commercial research only: the encoder
reports `commercial_use=False` unless the user declares a licence id they hold.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from castkeep.errors import ModelNotConfiguredError
from castkeep.models.faces.encoders import FaceEncoder
from castkeep.models.faces.face_quality import detected_face
from castkeep.models.faces.face_types import DetectedFace, EncoderInfo, l2_normalise

log = logging.getLogger(__name__)

ROOT_SETTING = "CASTKEEP_FACES__INSIGHTFACE_ROOT"
PACK_SETTING = "CASTKEEP_FACES__INSIGHTFACE_PACK"
LICENCE_SETTING = "CASTKEEP_FACES__INSIGHTFACE_LICENCE_ID"

# ArcFace's canonical 5-point positions in a 112 x 112 crop: eyes (image-left, image-right),
# nose tip, mouth corners.
ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


@dataclass(frozen=True)
class _Detector:
    session: Any
    input_name: str
    output_names: list[str]
    input_size: tuple[int, int] | None  # (w, h) when the model fixes it
    strides: tuple[int, ...]
    anchors: int
    batched: bool


@dataclass(frozen=True)
class _Recogniser:
    session: Any
    input_name: str
    output_name: str
    size: int
    mean: float
    std: float
    dim: int


class InsightFaceEncoder(FaceEncoder):
    """Options: `root` (folder holding packs; CASTKEEP_FACES__INSIGHTFACE_ROOT), `pack` (folder
    name under root; CASTKEEP_FACES__INSIGHTFACE_PACK), `licence_id` (commercial licence held for
    the pack), `det_size` (SCRFD input side), `det_thresh`, `nms_thresh`, `max_side`,
    `threshold` (same-person cosine distance), `providers` (onnxruntime execution providers)."""

    def __init__(
        self,
        *,
        root: str | Path | None = None,
        pack: str = "buffalo_l",
        licence_id: str | None = None,
        det_size: int = 640,
        det_thresh: float = 0.5,
        nms_thresh: float = 0.4,
        max_side: int = 1024,
        threshold: float = 0.5,
        providers: tuple[str, ...] | list[str] | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(root).expanduser() if root else None
        self.pack = pack
        self.licence_id = licence_id or None
        self.det_size = int(det_size)
        self.det_thresh = float(det_thresh)
        self.nms_thresh = float(nms_thresh)
        self.max_side = int(max_side)
        self.threshold = float(threshold)
        self.providers = list(providers) if providers else ["CPUExecutionProvider"]
        self._info: EncoderInfo | None = None
        self._run_lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"insightface-{self.pack}"

    @property
    def info(self) -> EncoderInfo:
        # dim and version come from the pack's files, so the pack is loaded on first use.
        self.load()
        assert self._info is not None
        return self._info

    # --- loading ---------------------------------------------------------------------------

    def pack_dir(self) -> Path:
        """The folder holding this pack's .onnx files; ModelNotConfiguredError when absent."""
        if self.root is None:
            raise ModelNotConfiguredError(
                f"no insightface model folder configured: set {ROOT_SETTING} to a local folder "
                f"holding <pack>/*.onnx (e.g. {self.pack}/); castkeep never downloads models"
            )
        if not self.root.is_dir():
            raise ModelNotConfiguredError(
                f"insightface model folder {self.root} does not exist; fix {ROOT_SETTING}"
            )
        d = self.root / self.pack
        if not d.is_dir():
            packs = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise ModelNotConfiguredError(
                f"insightface pack {self.pack!r} not found in {self.root} (packs there: "
                f"{', '.join(packs) or 'none'}); copy the pack's .onnx files to {d} or set "
                f"{PACK_SETTING} / {ROOT_SETTING}; castkeep never downloads models"
            )
        if not any(d.glob("*.onnx")):
            # Pack archives often unpack to <pack>/<pack>/*.onnx.
            nested = [p for p in d.iterdir() if p.is_dir() and any(p.glob("*.onnx"))]
            if len(nested) == 1:
                return nested[0]
            raise ModelNotConfiguredError(
                f"insightface pack folder {d} holds no .onnx files; copy the pack's model files "
                f"there (see {ROOT_SETTING} / {PACK_SETTING})"
            )
        return d

    def _load(self) -> None:
        import onnxruntime as ort

        d = self.pack_dir()
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        detector = recogniser = None
        rec_path = None
        for path in sorted(d.glob("*.onnx")):
            try:
                sess = ort.InferenceSession(str(path), sess_options=opts, providers=self.providers)
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise ModelNotConfiguredError(
                    f"cannot load {path}: {exc}; replace the file with a valid ONNX model"
                ) from exc
            role = _route(sess)
            if role == "detection" and detector is None:
                detector = _make_detector(sess, path)
            elif role == "recognition" and recogniser is None:
                recogniser = _make_recogniser(sess, path)
                rec_path = path
            else:
                log.debug("ignoring %s (%s) in pack %s", path.name, role, self.pack)
        if detector is None or recogniser is None:
            missing = [n for n, m in (("an SCRFD detector", detector), ("an ArcFace recogniser", recogniser)) if m is None]
            raise ModelNotConfiguredError(
                f"insightface pack {d} lacks {' and '.join(missing)} (.onnx); use a complete pack "
                f"such as buffalo_l or antelopev2 ({ROOT_SETTING} / {PACK_SETTING})"
            )
        assert rec_path is not None
        self._detector, self._recogniser = detector, recogniser
        digest = _sha256(rec_path)[:12]
        if self.licence_id:
            licence = f"insightface pack {self.pack}: commercial licence {self.licence_id}"
        else:
            licence = (
                f"insightface pack {self.pack}: pretrained weights for non-commercial research "
                f"only (declare a licence id in {LICENCE_SETTING} for commercial use)"
            )
        self._info = EncoderInfo(
            name=self.name,
            version=f"{rec_path.stem}-{digest}",
            dim=recogniser.dim,
            licence=licence,
            commercial_use=self.licence_id is not None,
            threshold=self.threshold,
            metric="cosine",
        )

    def _unload(self) -> None:
        self._detector = self._recogniser = None

    # --- pipeline --------------------------------------------------------------------------

    def _detect(self, rgb: np.ndarray, *, embed: bool) -> list[DetectedFace]:
        h, w = rgb.shape[:2]
        info = self._info
        assert info is not None
        # 1. Bounded copy, then SCRFD's own letterbox to its input size.
        scale = min(1.0, self.max_side / max(h, w))
        small = rgb
        if scale < 1.0:
            small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        with self._run_lock:
            boxes, scores, kpss = self._scrfd(small)
            boxes, kpss = boxes / scale, kpss / scale  # back to original pixels
            # 2. Align each face to ArcFace's template from its 5 points; 3. embed in one batch.
            embeddings: list[np.ndarray | None] = [None] * len(boxes)
            if embed and len(boxes):
                crops = [_norm_crop(rgb, k, self._recogniser.size) for k in kpss]
                embeddings = list(self._arcface(crops))

        faces = []
        for box, score, kps, emb in zip(boxes, scores, kpss, embeddings):
            pts = tuple((float(x), float(y)) for x, y in kps)
            eye_left, eye_right, nose = pts[0], pts[1], pts[2]
            faces.append(
                detected_face(
                    rgb, tuple(float(v) for v in box), pts, eye_left, eye_right, nose, float(score),
                    encoder=info.name, encoder_version=info.version,
                    embedding=None if emb is None else l2_normalise(emb),
                )
            )
        return faces

    def _scrfd(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        det = self._detector
        in_w, in_h = det.input_size or (self.det_size, self.det_size)
        h, w = rgb.shape[:2]
        if h / w > in_h / in_w:
            new_h, new_w = in_h, max(1, int(in_h * w / h))
        else:
            new_w, new_h = in_w, max(1, int(in_w * h / w))
        det_scale = new_h / h
        canvas = np.zeros((in_h, in_w, 3), np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(rgb, (new_w, new_h))
        blob = ((canvas.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
        outs = det.session.run(det.output_names, {det.input_name: np.ascontiguousarray(blob)})

        fmc = len(det.strides)
        all_scores, all_boxes, all_kps = [], [], []
        for i, stride in enumerate(det.strides):
            scores, deltas, kdeltas = outs[i], outs[i + fmc], outs[i + 2 * fmc]
            if det.batched:
                scores, deltas, kdeltas = scores[0], deltas[0], kdeltas[0]
            scores = scores.reshape(-1)
            deltas = deltas.reshape(-1, 4) * stride
            kdeltas = kdeltas.reshape(-1, 10) * stride
            gh, gw = in_h // stride, in_w // stride
            centres = (np.stack(np.mgrid[:gh, :gw][::-1], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
            if det.anchors > 1:
                centres = np.repeat(centres, det.anchors, axis=0)
            keep = np.where(scores >= self.det_thresh)[0]
            if keep.size == 0:
                continue
            c = centres[keep]
            d = deltas[keep]
            all_boxes.append(np.stack([c[:, 0] - d[:, 0], c[:, 1] - d[:, 1], c[:, 0] + d[:, 2], c[:, 1] + d[:, 3]], -1))
            k = kdeltas[keep].reshape(-1, 5, 2) + c[:, None, :]
            all_kps.append(k)
            all_scores.append(scores[keep])
        if not all_scores:
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        boxes = np.concatenate(all_boxes) / det_scale
        kps = np.concatenate(all_kps) / det_scale
        scores = np.concatenate(all_scores)
        keep = _nms(boxes, scores, self.nms_thresh)
        return boxes[keep], scores[keep], kps[keep]

    def _arcface(self, crops: list[np.ndarray]) -> np.ndarray:
        rec = self._recogniser
        blob = (np.stack(crops).astype(np.float32) - rec.mean) / rec.std
        blob = np.ascontiguousarray(blob.transpose(0, 3, 1, 2))
        out = rec.session.run([rec.output_name], {rec.input_name: blob})[0]
        return out.reshape(len(crops), -1).astype(np.float32)


# --- pack routing (the same shape rules insightface uses) ----------------------------------------


def _route(sess: Any) -> str:
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    shape = inputs[0].shape
    if len(outputs) >= 5:
        return "detection"
    if len(shape) == 4 and isinstance(shape[2], int) and shape[2] == shape[3]:
        side = shape[2]
        if side in (192, 96) or (len(inputs) == 2 and side == 128):
            return "other"  # landmarks, gender/age, face swapper
        if side >= 112 and side % 16 == 0 and len(outputs) == 1:
            return "recognition"
    return "other"


def _make_detector(sess: Any, path: Path) -> _Detector:
    outputs = sess.get_outputs()
    n = len(outputs)
    if n not in (9, 15):
        raise ModelNotConfiguredError(
            f"detector {path} has {n} outputs; castkeep needs an SCRFD model with 5-point "
            "keypoints (9 or 15 outputs)"
        )
    strides = (8, 16, 32) if n == 9 else (8, 16, 32, 64, 128)
    anchors = 2 if n == 9 else 1
    inp = sess.get_inputs()[0]
    h, w = inp.shape[2], inp.shape[3]
    size = (w, h) if isinstance(w, int) and isinstance(h, int) else None
    return _Detector(
        session=sess,
        input_name=inp.name,
        output_names=[o.name for o in outputs],
        input_size=size,
        strides=strides,
        anchors=anchors,
        batched=len(outputs[0].shape) == 3,
    )


def _make_recogniser(sess: Any, path: Path) -> _Recogniser:
    import onnx

    # MXNet-converted ArcFace models normalise inside the graph (Sub + Mul first); others expect
    # (x - 127.5) / 127.5.
    graph = onnx.load(str(path), load_external_data=False).graph
    names = [node.name for node in graph.node[:8]]
    has_sub = any(n.startswith(("Sub", "_minus")) for n in names)
    has_mul = any(n.startswith(("Mul", "_mul")) for n in names)
    mean, std = (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    dim = out.shape[-1]
    if not isinstance(dim, int):
        raise ModelNotConfiguredError(f"recognition model {path} has no fixed embedding size")
    return _Recogniser(sess, inp.name, out.name, int(inp.shape[2]), mean, std, int(dim))


# --- geometry --------------------------------------------------------------------------------


def _similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src to dst
    (Umeyama 1991); returns the 2 x 3 matrix."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    U, S, Vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(cov) < 0:
        sign[-1] = -1
    R = U @ np.diag(sign) @ Vt
    var = (s**2).sum() / len(src)
    scale = (S * sign).sum() / var if var > 0 else 1.0
    M = np.zeros((2, 3))
    M[:, :2] = scale * R
    M[:, 2] = mu_d - scale * R @ mu_s
    return M


def _norm_crop(rgb: np.ndarray, kps: np.ndarray, size: int) -> np.ndarray:
    M = _similarity_transform(kps, ARCFACE_DST * (size / 112.0))
    return cv2.warpAffine(rgb, M, (size, size), borderValue=0.0)


def _nms(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> list[int]:
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
        iou = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][iou <= thresh]
    return keep


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
