"""qwen-image-edit engine on a tiny random-weight pipeline, loaded from a local directory through
the production path (get_engine -> from_pretrained(local_files_only=True))."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from castkeep.errors import ModelNotConfiguredError, SpecError
from castkeep.models.engines.engine_qwen import (
    MODEL_DIR_SETTING,
    clear_pipeline_cache,
    file_sha256,
    model_dir_fingerprint,
)
from castkeep.models.engines.base import EditInput, get_engine
from castkeep.models.faces.face_types import DetectedFace, FaceQuality
from castkeep.models.specs import parse_camera, parse_lighting

FAST = {"steps": 2, "true_cfg_scale": 1.0, "width": 64, "height": 64}


def _ref(seed: int, h: int = 72, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _face(w: int = 64, h: int = 72) -> DetectedFace:
    # The qwen engine does not read face geometry (it edits whole images); a nominal face.
    return DetectedFace(
        box=(w * 0.3, h * 0.25, w * 0.7, h * 0.7),
        landmarks=((w * 0.4, h * 0.4), (w * 0.6, h * 0.4), (w * 0.5, h * 0.55)),
        eye_left=(w * 0.4, h * 0.4),
        eye_right=(w * 0.6, h * 0.4),
        nose=(w * 0.5, h * 0.55),
        quality=FaceQuality(face_px=int(w * 0.4), sharpness=100.0, det_score=1.0, yaw=0.0, roll=0.0),
        encoder="none",
        encoder_version="0",
    )


def _input(n: int = 1, seed: int = 7, **options) -> EditInput:
    return EditInput(
        references=[_ref(i) for i in range(n)],
        faces=[_face() for _ in range(n)],
        lighting=parse_lighting("azimuth=45,elevation=30,fill=0.2,temp=3200"),
        camera=parse_camera("roll=10,shot=medium"),
        scene=None,
        seed=seed,
        options={**FAST, **options},
    )


@pytest.fixture
def engine(tiny_qwen_dir):
    return get_engine("qwen-image-edit", model_dir=tiny_qwen_dir)


def test_end_to_end_from_local_dir(engine, tiny_qwen_dir):
    out = engine.predict(_input())
    assert out.image.shape == (64, 64, 3) and out.image.dtype == np.uint8
    assert out.image.std() > 0  # not a blank frame
    md = out.metadata
    assert md["model_dir_fingerprint"] == model_dir_fingerprint(tiny_qwen_dir)
    assert md["params"]["steps"] == 2 and md["params"]["seed"] == 7
    assert md["params"]["dtype"] == "float32" and md["params"]["device"] == "cpu"
    assert md["params"]["cfg_active"] is False  # true_cfg_scale 1.0
    assert len(md["timings"]["per_step_s"]) == 2
    assert md["peak_gpu_memory_bytes"] is None
    assert "45 degrees to camera-right" in md["params"]["prompt"]
    assert set(out.edit_kinds) == {"lighting", "camera"}
    assert engine.info.licence == "Apache-2.0" and engine.info.commercial_use is True


def test_seed_is_deterministic_and_matters(engine):
    a = engine.predict(_input(seed=3)).image
    b = engine.predict(_input(seed=3)).image
    c = engine.predict(_input(seed=4)).image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_pipeline_is_cached_per_process(tiny_qwen_dir):
    e1 = get_engine("qwen-image-edit", model_dir=tiny_qwen_dir)
    e2 = get_engine("qwen-image-edit", model_dir=tiny_qwen_dir)
    assert e1.pipeline is e2.pipeline


def test_true_cfg_runs_only_with_negative_prompt(engine):
    out = engine.predict(_input(true_cfg_scale=4.0, negative_prompt="blurry"))
    assert out.metadata["params"]["cfg_active"] is True
    out = engine.predict(_input(true_cfg_scale=4.0, negative_prompt=None))
    assert out.metadata["params"]["cfg_active"] is False


def test_group_of_three_references(engine):
    out = engine.predict(_input(n=3))
    assert out.image.shape == (64, 64, 3)
    assert "group_composite" in out.edit_kinds
    assert "3 people" in out.metadata["params"]["prompt"]
    with pytest.raises(SpecError, match="at most 3"):
        engine.predict(_input(n=4))


def test_loras_recorded_and_switched_without_base_reload(engine, tiny_qwen_loras):
    relight, angles = tiny_qwen_loras
    base_pipe = engine.pipeline
    plain = engine.predict(_input()).image
    with_a = engine.predict(_input(loras=[{"path": str(relight), "weight": 1.0}]))
    assert with_a.metadata["loras"][0]["sha256"] == file_sha256(relight)
    assert with_a.metadata["loras"][0]["weight"] == 1.0
    assert not np.array_equal(with_a.image, plain)  # the adapter changes the output
    both = engine.predict(
        _input(loras=[{"path": str(relight), "weight": 0.5}, {"path": str(angles), "weight": 0.8}])
    )
    assert [lo["sha256"] for lo in both.metadata["loras"]] == [file_sha256(relight), file_sha256(angles)]
    assert not np.array_equal(both.image, with_a.image)
    # Back to no LoRA, then to A again: same pipeline object, identical results as before.
    assert np.array_equal(engine.predict(_input()).image, plain)
    again = engine.predict(_input(loras=[str(relight)]))
    assert np.array_equal(again.image, with_a.image)
    assert engine.pipeline is base_pipe


def test_relative_lora_needs_lora_dir(tiny_qwen_dir, tiny_qwen_loras):
    relight, _ = tiny_qwen_loras
    no_dir = get_engine("qwen-image-edit", model_dir=tiny_qwen_dir)
    with pytest.raises(ModelNotConfiguredError, match="CASTKEEP_ENGINES__LORA_DIR"):
        no_dir.predict(_input(loras=[relight.name]))
    with_dir = get_engine("qwen-image-edit", model_dir=tiny_qwen_dir, lora_dir=relight.parent)
    out = with_dir.predict(_input(loras=[{"path": relight.name, "weight": 0.7}]))
    assert out.metadata["loras"][0]["file"] == relight.name
    with pytest.raises(ModelNotConfiguredError, match="not found"):
        with_dir.predict(_input(loras=["missing.safetensors"]))


def test_angle_prompt_style_reports_rounding(engine):
    inp = _input(prompt_style="angles")
    inp = EditInput(**{**inp.__dict__, "camera": parse_camera("yaw=30,pitch=5,shot=close-up")})
    out = engine.predict(inp)
    assert out.metadata["params"]["prompt"].startswith("<sks> front-right quarter view eye-level shot close-up")
    assert out.metadata["angle_rounding"]["azimuth"]["error"] == pytest.approx(-15.0)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"steps": 0}, "'steps'"),
        ({"true_cfg_scale": -1}, "'true_cfg_scale'"),
        ({"width": 50}, "'width'"),
        ({"prompt": ""}, "'prompt'"),
        ({"guidance": 3}, "unknown qwen-image-edit option"),
        ({"loras": [{"file": "x"}]}, r"loras\[0\]"),
    ],
)
def test_check_inputs_rejects_bad_options(engine, options, match):
    with pytest.raises(SpecError, match=match):
        engine.predict(_input(**options))


def test_missing_model_dir_names_the_setting(tmp_path):
    with pytest.raises(ModelNotConfiguredError, match=MODEL_DIR_SETTING):
        get_engine("qwen-image-edit", model_dir=None)
    with pytest.raises(ModelNotConfiguredError, match=MODEL_DIR_SETTING):
        get_engine("qwen-image-edit", model_dir=tmp_path / "nope")
    with pytest.raises(ModelNotConfiguredError, match="hub ids are not accepted"):
        get_engine("qwen-image-edit", model_dir="Qwen/Qwen-Image-Edit-2509")


def test_lora_for_another_model_is_a_configuration_error(engine, tmp_path):
    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "other.safetensors"
    save_file({"transformer.transformer_blocks.0.attn.to_q.lora_A.weight": torch.ones(4, 999),
               "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": torch.ones(48, 4)},
              str(bad))
    plain = engine.predict(_input()).image
    with pytest.raises(ModelNotConfiguredError, match="does not fit"):
        engine.predict(_input(loras=[str(bad)]))
    assert np.array_equal(engine.predict(_input()).image, plain)  # the pipeline is unharmed


def test_broken_model_dir_is_a_configuration_error(tiny_qwen_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_qwen_dir, broken)
    shutil.rmtree(broken / "transformer")
    engine = get_engine("qwen-image-edit", model_dir=broken)
    assert engine.fingerprint != model_dir_fingerprint(tiny_qwen_dir)
    with pytest.raises(ModelNotConfiguredError, match="cannot load"):
        engine.predict(_input())


def test_fingerprint_changes_with_config(tiny_qwen_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_qwen_dir, copy)
    assert model_dir_fingerprint(copy) == model_dir_fingerprint(tiny_qwen_dir)
    cfg = copy / "scheduler" / "scheduler_config.json"
    cfg.write_text(cfg.read_text().replace("{", '{"note": 1, ', 1))
    assert model_dir_fingerprint(copy) != model_dir_fingerprint(tiny_qwen_dir)


def test_components_passed_in(tiny_qwen_dir):
    from diffusers import QwenImageEditPlusPipeline

    from castkeep.testing.tiny_qwen import build_tiny_components

    pipe = QwenImageEditPlusPipeline(**build_tiny_components(seed=5))
    engine = get_engine("qwen-image-edit", pipeline=pipe)
    out = engine.predict(_input())
    assert out.metadata["model_dir_fingerprint"].startswith("components:")
    assert engine.pipeline is pipe
    clear_pipeline_cache()
    assert get_engine("qwen-image-edit", pipeline=pipe).pipeline is pipe
