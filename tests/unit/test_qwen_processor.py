"""The image-only Qwen2-VL processor: prompt + image tokenisation without torchvision."""

from __future__ import annotations

import numpy as np
from PIL import Image

from castkeep.models.engines.qwen_processor import QwenImageOnlyProcessor
from castkeep.testing.tiny_qwen import build_processor


def _image(w: int, h: int) -> Image.Image:
    return Image.fromarray(np.full((h, w, 3), 128, dtype=np.uint8))


def test_has_no_video_branch():
    assert QwenImageOnlyProcessor.get_attributes() == ["image_processor", "tokenizer"]
    proc = build_processor()
    assert not hasattr(proc, "video_processor")


def test_expands_image_placeholder_to_grid_tokens():
    proc = build_processor()
    text = "Picture 1: <|vision_start|><|image_pad|><|vision_end|>make it warm"
    out = proc(text=[text], images=[_image(112, 56)], padding=True, return_tensors="pt")
    grid = out["image_grid_thw"][0].tolist()  # (t, h/14, w/14)
    assert grid == [1, 4, 8]
    n_pad = int((out["input_ids"][0] == proc.image_token_id).sum())
    assert n_pad == 4 * 8 // 4  # merge_size 2 x 2
    assert out["pixel_values"].shape[0] == 4 * 8


def test_two_images_get_their_own_placeholders():
    proc = build_processor()
    text = "".join(f"Picture {i}: <|vision_start|><|image_pad|><|vision_end|>" for i in (1, 2)) + "x"
    out = proc(text=[text], images=[_image(56, 56), _image(112, 112)], return_tensors="pt")
    assert out["image_grid_thw"].tolist() == [[1, 4, 4], [1, 8, 8]]
    assert int((out["input_ids"][0] == proc.image_token_id).sum()) == 4 + 16


def test_save_and_load_round_trip(tmp_path):
    proc = build_processor()
    proc.save_pretrained(tmp_path / "processor")
    loaded = QwenImageOnlyProcessor.from_pretrained(tmp_path / "processor")
    assert loaded.image_token_id == proc.image_token_id
    assert loaded.image_processor.size["longest_edge"] == proc.image_processor.size["longest_edge"]
    text = "hello <|im_start|>"
    assert loaded.tokenizer(text)["input_ids"] == proc.tokenizer(text)["input_ids"]
    # The pipeline root also works (the processor/ folder is found inside it).
    assert QwenImageOnlyProcessor.from_pretrained(tmp_path).image_token_id == proc.image_token_id
