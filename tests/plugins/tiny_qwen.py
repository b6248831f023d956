"""A tiny random-weight Qwen-Image-Edit model directory, built offline once per session.

`tiny_qwen_dir` is a real diffusers model folder (model_index.json + components) that the
qwen-image-edit engine loads through its production local-directory path:
``get_engine("qwen-image-edit", model_dir=tiny_qwen_dir)``. While it is alive the pipeline's
reference working sizes (module constants VAE_IMAGE_SIZE / CONDITION_IMAGE_SIZE, ~1 MP by
default) are lowered to 64x64, so one call takes well under a second on CPU instead of ~25 s.
`tiny_qwen_loras` gives two LoRA files (different seeds) that fit that model.
`tiny_qwen_options` are per-call engine options that keep a call fast (2 steps, 64x64 output:
without width/height the engine outputs ~1 MP, far too slow for a toy model on CPU).
"""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_REFERENCE_AREA = 64 * 64


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as mod

    from castkeep.testing.tiny_qwen import save_tiny_pipeline

    path = save_tiny_pipeline(tmp_path_factory.mktemp("tiny-qwen") / "Qwen-Image-Edit-tiny")
    old = (mod.VAE_IMAGE_SIZE, mod.CONDITION_IMAGE_SIZE)
    mod.VAE_IMAGE_SIZE = mod.CONDITION_IMAGE_SIZE = TINY_REFERENCE_AREA
    yield path
    mod.VAE_IMAGE_SIZE, mod.CONDITION_IMAGE_SIZE = old


@pytest.fixture(scope="session")
def tiny_qwen_loras(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from castkeep.testing.tiny_qwen import save_tiny_lora

    root = tmp_path_factory.mktemp("tiny-loras")
    return (
        save_tiny_lora(root, seed=1, weight_name="relight-tiny.safetensors"),
        save_tiny_lora(root, seed=2, weight_name="angles-tiny.safetensors"),
    )


@pytest.fixture(scope="session")
def tiny_qwen_options() -> dict:
    return {"steps": 2, "true_cfg_scale": 1.0, "width": 64, "height": 64}
