"""`qwen-image-edit`: diffusers QwenImageEditPlusPipeline (Qwen-Image-Edit-2509/2511, Apache-2.0).

Weights come from a local model directory only (``CASTKEEP_ENGINES__QWEN_MODEL_DIR``), never a hub
id. A loaded pipeline is cached per process, keyed by the directory's fingerprint, device, dtype and
offload mode, because loading real weights takes tens of seconds. LoRAs (relight, multiple-angles,
Lightning) are local safetensors files; each is loaded into the cached pipeline once as a named
adapter, and switching sets only re-weights adapters, so the base model is never reloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from castkeep.errors import EngineError, ModelNotConfiguredError, SpecError
from castkeep.models.cache import models
from castkeep.models.engines.base import (
    EditEngine,
    EditInput,
    EditOutput,
    EngineInfo,
    EngineOptions,
    requested_edit_kinds,
    validate_options,
)
from castkeep.models.engines.spec_compile import angle_prompt, instruction, lighting_instruction

log = logging.getLogger(__name__)

MODEL_DIR_SETTING = "CASTKEEP_ENGINES__QWEN_MODEL_DIR"
LORA_DIR_SETTING = "CASTKEEP_ENGINES__LORA_DIR"
LICENCE = "Apache-2.0"
DEFAULT_STEPS = 40
DEFAULT_TRUE_CFG = 4.0
DEFAULT_NEGATIVE = " "  # Qwen's own examples: a blank negative prompt switches true CFG on
DEFAULT_MAX_AREA = 1024 * 1024
Size = Annotated[int, Field(ge=32, le=4096, multiple_of=16)]


class QwenOptions(EngineOptions):
    prompt: Annotated[str, Field(min_length=1, pattern=r"\S")] | None = None
    prompt_style: Literal["instruction", "angles"] = "instruction"
    negative_prompt: str | None = None
    steps: Annotated[int, Field(ge=1, le=200)] = DEFAULT_STEPS
    true_cfg_scale: Annotated[float, Field(ge=0.0, le=20.0)] = DEFAULT_TRUE_CFG
    loras: list[Any] = Field(default_factory=list)  # each entry is checked when loading it
    width: Size | None = None
    height: Size | None = None
    reference_area: Annotated[int, Field(gt=0)] | None = None


OPTION_KEYS = frozenset(QwenOptions.model_fields)
OPTION_HINTS = {
    "prompt": "option 'prompt' must be one non-empty string (one prompt per call)",
    "prompt_style": "option 'prompt_style' must be 'instruction' or 'angles'",
    "steps": "option 'steps' must be an integer 1..200, got {value!r}",
    "true_cfg_scale": "option 'true_cfg_scale' must be 0..20, got {value!r}",
    "loras": "option 'loras' must be a list",
    "width": "option 'width' must be a multiple of 16 in 32..4096, got {value!r}",
    "height": "option 'height' must be a multiple of 16 in 32..4096, got {value!r}",
    "reference_area": "option 'reference_area' must be a positive number of pixels, got {value!r}",
}


def model_dir_fingerprint(model_dir: Path) -> str:
    """sha256 over model_index.json, every component's JSON configs, and weight file names and
    sizes. Weight contents are not hashed: real checkpoints are tens of GB."""
    h = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(model_dir).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        h.update(rel.encode())
        if path.suffix in {".json", ".txt", ".jinja"}:
            h.update(path.read_bytes())
        else:
            h.update(str(path.stat().st_size).encode())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class LoraRef:
    path: Path
    weight: float
    sha256: str

    @property
    def adapter_name(self) -> str:
        return "lora_" + self.sha256[:16]


@dataclass
class _Loaded:
    pipe: Any
    fingerprint: str
    adapters: dict[str, str] = field(default_factory=dict)  # sha256 -> adapter name
    lock: threading.Lock = field(default_factory=threading.Lock)


PIPELINE = "pipeline"  # ModelCache kind of loaded diffusers pipelines
# The pipeline reads its reference working sizes from module constants; changing them is
# serialised so concurrent calls in one process cannot see each other's values.
_SIZE_LOCK = threading.Lock()


def clear_pipeline_cache() -> None:
    """Drop every cached pipeline (frees memory; the next call reloads)."""
    models.clear(PIPELINE)


@contextlib.contextmanager
def _reference_area(area: int | None):
    if area is None:
        yield
        return
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as mod

    with _SIZE_LOCK:
        old = (mod.VAE_IMAGE_SIZE, mod.CONDITION_IMAGE_SIZE)
        mod.VAE_IMAGE_SIZE = area
        mod.CONDITION_IMAGE_SIZE = min(area, old[1])
        try:
            yield
        finally:
            mod.VAE_IMAGE_SIZE, mod.CONDITION_IMAGE_SIZE = old


def _resolve_model_dir(model_dir: str | os.PathLike | None) -> Path:
    if model_dir is None or str(model_dir).strip() == "":
        raise ModelNotConfiguredError(
            "the qwen-image-edit engine needs a local Qwen-Image-Edit model directory; set "
            f"{MODEL_DIR_SETTING} to a folder holding model_index.json (weights are never downloaded)"
        )
    path = Path(model_dir).expanduser()
    if not (path / "model_index.json").is_file():
        raise ModelNotConfiguredError(
            f"{path} is not a local diffusers model directory (no model_index.json); set "
            f"{MODEL_DIR_SETTING} to the folder you downloaded Qwen-Image-Edit-2509/2511 into "
            "(hub ids are not accepted)"
        )
    return path.resolve()


class QwenImageEditEngine(EditEngine):
    """Instruction editing with 1-3 references on GPU (float32 on CPU, for tests)."""

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        *,
        pipeline: Any = None,
        lora_dir: str | os.PathLike | None = None,
        device: str | None = None,
        cpu_offload: bool = False,
        max_area: int = DEFAULT_MAX_AREA,
        licence_id: str | None = None,
    ) -> None:
        super().__init__()
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.cpu_offload = bool(cpu_offload) and self.device.startswith("cuda")
        self.lora_dir = Path(lora_dir).expanduser() if lora_dir else None
        self.max_area = int(max_area)
        self.licence_id = licence_id
        self._given_pipeline = pipeline
        if pipeline is not None:
            self.model_dir = None
            # Passed-in components have no directory to fingerprint: the object identity keeps
            # two different in-memory pipelines from sharing a cache slot.
            self.fingerprint = f"components:{id(pipeline):x}:" + hashlib.sha256(
                json.dumps(dict(pipeline.config), sort_keys=True, default=str).encode()
            ).hexdigest()
        else:
            self.model_dir = _resolve_model_dir(model_dir)
            self.fingerprint = model_dir_fingerprint(self.model_dir)
        self._entry: _Loaded | None = None
        self._lora_hashes: dict[tuple, str] = {}
        self.info = EngineInfo(
            name="qwen-image-edit",
            version=f"qwen-image-edit-plus@{self.fingerprint.split(':')[-1][:12]}",
            licence=LICENCE,
            commercial_use=True,
            device=self.device,
            max_references=3,
        )

    # -- loading -----------------------------------------------------------------------------
    def _cache_key(self) -> dict[str, Any]:
        # By content, not by engine options: engines that differ only in a licence id share one.
        return {"fingerprint": self.fingerprint, "device": self.device,
                "dtype": str(self.dtype), "cpu_offload": self.cpu_offload}

    def _load(self) -> None:
        def build() -> _Loaded:
            t0 = time.perf_counter()
            pipe = self._place(self._given_pipeline or self._from_dir())
            log.info("qwen-image-edit pipeline loaded in %.1fs", time.perf_counter() - t0)
            return _Loaded(pipe=pipe, fingerprint=self.fingerprint)

        self._entry = models.get(PIPELINE, "qwen-image-edit", self._cache_key(), build)

    def _from_dir(self):
        from diffusers import QwenImageEditPlusPipeline

        from castkeep.models.engines.qwen_processor import QwenImageOnlyProcessor

        assert self.model_dir is not None
        try:
            # Our processor replaces whatever model_index.json names: transformers' own needs
            # torchvision for video, which the edit pipeline never uses.
            processor = QwenImageOnlyProcessor.from_pretrained(self.model_dir / "processor")
            return QwenImageEditPlusPipeline.from_pretrained(
                os.fspath(self.model_dir),
                processor=processor,
                dtype=self.dtype,
                local_files_only=True,
            )
        except (OSError, ValueError) as exc:
            raise ModelNotConfiguredError(
                f"cannot load the Qwen-Image-Edit pipeline from {self.model_dir}: {exc}; check "
                f"{MODEL_DIR_SETTING} points at a complete local copy"
            ) from exc

    def _place(self, pipe):
        pipe.set_progress_bar_config(disable=True)
        if self.cpu_offload:
            pipe.enable_model_cpu_offload()
        elif self._given_pipeline is not None:
            pipe.to(self.device, self.dtype)  # components built in memory: cast them here
        else:
            pipe.to(self.device)  # from_pretrained already loaded them in self.dtype
        return pipe

    def _unload(self) -> None:
        models.discard(PIPELINE, "qwen-image-edit", self._cache_key())
        self._entry = None

    @property
    def pipeline(self):
        self.load()
        assert self._entry is not None
        return self._entry.pipe

    # -- LoRAs -------------------------------------------------------------------------------
    def resolve_loras(self, specs: list[Any]) -> list[LoraRef]:
        """``[{"path": "relight.safetensors", "weight": 0.8}, ...]`` (or plain paths) -> LoraRefs.
        Relative paths resolve against the LoRA directory setting."""
        refs = []
        for i, item in enumerate(specs):
            if isinstance(item, (str, os.PathLike)):
                item = {"path": item}
            if not isinstance(item, dict) or "path" not in item:
                raise SpecError(f"loras[{i}] must be a path or {{'path': ..., 'weight': ...}}")
            unknown = set(item) - {"path", "weight"}
            if unknown:
                raise SpecError(f"loras[{i}] has unknown key(s) {sorted(unknown)}; use path, weight")
            path = Path(item["path"]).expanduser()
            if not path.is_absolute():
                if self.lora_dir is None:
                    raise ModelNotConfiguredError(
                        f"LoRA {path} is a relative path but no LoRA directory is set; set "
                        f"{LORA_DIR_SETTING} or give an absolute path"
                    )
                path = self.lora_dir / path
            if not path.is_file():
                raise ModelNotConfiguredError(
                    f"LoRA file {path} not found; put it under {LORA_DIR_SETTING} (never downloaded)"
                )
            weight = float(item.get("weight", 1.0))
            if not -4.0 <= weight <= 4.0:
                raise SpecError(f"loras[{i}] weight {weight} is outside -4..4")
            stat = path.stat()
            key = (os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns)
            sha = self._lora_hashes.get(key) or file_sha256(path)
            self._lora_hashes[key] = sha
            refs.append(LoraRef(path=path.resolve(), weight=weight, sha256=sha))
        return refs

    def _activate_loras(self, entry: _Loaded, loras: list[LoraRef]) -> None:
        pipe = entry.pipe
        for ref in loras:
            if ref.sha256 not in entry.adapters:
                try:
                    pipe.load_lora_weights(
                        os.fspath(ref.path.parent),
                        weight_name=ref.path.name,
                        adapter_name=ref.adapter_name,
                        local_files_only=True,
                    )
                except (OSError, ValueError, KeyError, RuntimeError) as exc:
                    with contextlib.suppress(Exception):  # drop a half-injected adapter
                        pipe.delete_adapters(ref.adapter_name)
                    # A configuration problem, not a transient one: retrying cannot help.
                    raise ModelNotConfiguredError(
                        f"LoRA {ref.path.name} does not fit this Qwen-Image-Edit model ({exc}); "
                        f"use a LoRA trained for it under {LORA_DIR_SETTING}"
                    ) from exc
                entry.adapters[ref.sha256] = ref.adapter_name
        if loras:
            pipe.enable_lora()
            pipe.set_adapters([r.adapter_name for r in loras], [r.weight for r in loras])
        elif entry.adapters:
            pipe.disable_lora()

    # -- inputs ------------------------------------------------------------------------------
    def check_inputs(self, inp: EditInput) -> None:
        super().check_inputs(inp)
        self.check_options(inp.options, scene=inp.scene)
        if inp.options.get("prompt_style") == "angles" and inp.camera is None:
            raise SpecError("prompt_style 'angles' needs a camera spec")

    def check_options(self, options: dict[str, Any], *, scene: str | None = None) -> None:
        validate_options(QwenOptions, options, engine="qwen-image-edit", hints=OPTION_HINTS)

    def _output_size(self, inp: EditInput) -> tuple[int, int]:
        opts = inp.options
        h0, w0 = inp.references[-1].shape[:2]
        if opts.get("width") and opts.get("height"):
            return int(opts["width"]), int(opts["height"])
        scale = math.sqrt(min(1.0, self.max_area / float(w0 * h0)))
        w = max(32, int(round(w0 * scale / 32.0)) * 32)
        h = max(32, int(round(h0 * scale / 32.0)) * 32)
        return w, h

    def compile_prompt(self, inp: EditInput) -> tuple[str, dict | None]:
        if inp.options.get("prompt"):
            return inp.options["prompt"].strip(), None
        if inp.options.get("prompt_style") == "angles":
            ap = angle_prompt(inp.camera)  # type: ignore[arg-type]
            text = ap.prompt
            if inp.lighting is not None:
                text += " " + lighting_instruction(inp.lighting)
            return text, ap.rounding
        return instruction(inp.lighting, inp.camera, inp.scene, people=len(inp.references)), None

    # -- run ---------------------------------------------------------------------------------
    def _predict(self, inp: EditInput) -> EditOutput:
        import torch
        from PIL import Image

        t_start = time.perf_counter()
        opts = inp.options
        # 1. Resolve LoRAs (hash files; missing ones fail before any GPU work).
        loras = self.resolve_loras(list(opts.get("loras", [])))
        # 2. Load (cached per process) and switch adapters on the cached pipeline.
        t0 = time.perf_counter()
        self.load()
        entry = self._entry
        assert entry is not None
        load_s = time.perf_counter() - t0
        # 3. Compile the prompt and sizes.
        prompt, rounding = self.compile_prompt(inp)
        negative = opts.get("negative_prompt", DEFAULT_NEGATIVE)
        cfg = float(opts.get("true_cfg_scale", DEFAULT_TRUE_CFG))
        steps = int(opts.get("steps", DEFAULT_STEPS))
        width, height = self._output_size(inp)
        images = [Image.fromarray(r) for r in inp.references]
        generator = torch.Generator(device="cpu").manual_seed(inp.seed)
        step_times: list[float] = []
        last = [time.perf_counter()]

        def _on_step(pipe, i, t, kwargs):
            now = time.perf_counter()
            step_times.append(now - last[0])
            last[0] = now
            return kwargs

        cuda = self.device.startswith("cuda")
        # 4. Denoise (one prompt per call; the pipeline refuses batches).
        with entry.lock:
            self._activate_loras(entry, loras)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t1 = time.perf_counter()
            last[0] = t1
            try:
                with _reference_area(opts.get("reference_area")), torch.inference_mode():
                    result = entry.pipe(
                        image=images,
                        prompt=prompt,
                        negative_prompt=negative,
                        true_cfg_scale=cfg,
                        num_inference_steps=steps,
                        height=height,
                        width=width,
                        generator=generator,
                        output_type="np",
                        callback_on_step_end=_on_step,
                    )
            except (RuntimeError, ValueError) as exc:
                raise EngineError(f"qwen-image-edit failed: {exc}") from exc
            if cuda:
                torch.cuda.synchronize()
            inference_s = time.perf_counter() - t1
            peak = int(torch.cuda.max_memory_allocated()) if cuda else None
        # 5. Output image and metadata.
        arr = np.asarray(result.images[0])
        image = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
        metadata = {
            "engine": self.info.name,
            "engine_version": self.info.version,
            "model_dir_fingerprint": self.fingerprint,
            "loras": [
                {"file": r.path.name, "sha256": r.sha256, "weight": r.weight, "adapter": r.adapter_name}
                for r in loras
            ],
            "params": {
                "prompt": prompt,
                "negative_prompt": negative,
                "true_cfg_scale": cfg,
                "cfg_active": bool(cfg > 1.0 and negative is not None),
                "steps": steps,
                "seed": inp.seed,
                "width": width,
                "height": height,
                "references": len(inp.references),
                "device": self.device,
                "dtype": str(self.dtype).replace("torch.", ""),
                "cpu_offload": self.cpu_offload,
                "reference_area": opts.get("reference_area"),
            },
            "angle_rounding": rounding,
            "timings": {
                "load_s": round(load_s, 4),
                "inference_s": round(inference_s, 4),
                "per_step_s": [round(s, 4) for s in step_times],
                "total_s": round(time.perf_counter() - t_start, 4),
            },
            "peak_gpu_memory_bytes": peak,
        }
        return EditOutput(image=image, metadata=metadata, edit_kinds=requested_edit_kinds(inp))
