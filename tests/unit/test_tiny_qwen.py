"""The tiny random-weight pipeline builder (test/benchmark utility)."""

from __future__ import annotations

import json

from safetensors.torch import load_file

from castkeep.testing.tiny_qwen import (
    SPECIAL_TOKENS,
    VOCAB_SIZE,
    build_tiny_components,
    build_tokenizer,
    save_tiny_lora,
    save_tiny_pipeline,
)


def test_tokenizer_is_byte_level_with_special_tokens():
    tok = build_tokenizer()
    text = "Relight: key 45° camera-right"
    ids = tok(text)["input_ids"]
    assert len(ids) == len(text.encode("utf-8"))  # one token per byte, no merges
    assert tok.decode(ids) == text
    special = tok("<|im_start|>user<|im_end|>")["input_ids"]
    assert special[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert special[-1] == tok.convert_tokens_to_ids("<|im_end|>")
    assert max(tok.convert_tokens_to_ids(list(SPECIAL_TOKENS))) == VOCAB_SIZE - 1


def test_components_are_seeded():
    a = build_tiny_components(seed=0)["transformer"].state_dict()
    b = build_tiny_components(seed=0)["transformer"].state_dict()
    c = build_tiny_components(seed=1)["transformer"].state_dict()
    key = next(iter(a))
    assert (a[key] == b[key]).all()
    assert not (a[key] == c[key]).all()


def test_saved_pipeline_names_the_image_only_processor(tmp_path):
    path = save_tiny_pipeline(tmp_path / "tiny")
    index = json.loads((path / "model_index.json").read_text())
    assert index["_class_name"] == "QwenImageEditPlusPipeline"
    assert index["processor"] == ["castkeep.models.engines.qwen_processor", "QwenImageOnlyProcessor"]
    for part in ("transformer", "vae", "text_encoder", "tokenizer", "processor", "scheduler"):
        assert (path / part).is_dir()


def test_lora_file_covers_attention_projections(tmp_path):
    path = save_tiny_lora(tmp_path, seed=3, rank=2)
    state = load_file(str(path))
    assert any(k.endswith("to_q.lora_A.weight") for k in state)
    a = next(v for k, v in state.items() if k.endswith("lora_A.weight"))
    assert a.shape[0] == 2 and float(a.abs().sum()) > 0
