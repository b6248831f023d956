"""Tiny random-weight QwenImageEditPlusPipeline components, built offline.

A test and benchmark utility: it builds the same component classes as Qwen-Image-Edit-2509
(MMDiT transformer, Qwen-Image VAE, Qwen2.5-VL text encoder, flow-match scheduler, byte-level
tokenizer, image-only processor) at toy sizes with random weights, so the production engine can be
exercised end to end without downloading anything. Nothing here is used to make real images.

``save_tiny_pipeline(dir)`` writes a model directory the engine loads through its normal
local-directory path; ``save_tiny_lora(dir, ...)`` writes a LoRA file in the diffusers format.
"""

from __future__ import annotations

import os
from pathlib import Path

# Token ids of the tiny vocabulary: 256 byte-level symbols first, then the chat/vision tokens the
# pipeline's prompt template uses.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
TEXT_HIDDEN = 16
VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)


def _byte_alphabet() -> list[str]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return sorted(set(bytes_to_unicode().values()))


def build_tokenizer():
    """Byte-level Qwen2 tokenizer with no merges: one token per byte, plus special tokens."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab = {ch: i for i, ch in enumerate(_byte_alphabet())}
    for tok in SPECIAL_TOKENS:
        vocab[tok] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[])
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True) for t in SPECIAL_TOKENS[1:]]}
    )
    return tokenizer


def build_processor(tokenizer=None):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from castkeep.models.engines.qwen_processor import QwenImageOnlyProcessor

    tokenizer = tokenizer or build_tokenizer()
    # Small pixel budget: the vision tower sees a few 28 px tiles, not hundreds.
    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)
    return QwenImageOnlyProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build_tiny_components(seed: int = 0) -> dict:
    """Random-weight components, same classes and wiring as the real pipeline (seeded)."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tokenizer = build_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}

    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=3,
        joint_attention_dim=TEXT_HIDDEN,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
    )
    torch.manual_seed(seed)
    z_dim = 4
    vae = AutoencoderKLQwenImage(
        base_dim=z_dim * 6,
        z_dim=z_dim,
        dim_mult=[1, 2, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True],
        latents_mean=[0.0] * z_dim,
        latents_std=[1.0] * z_dim,
    )
    scheduler = FlowMatchEulerDiscreteScheduler()
    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": TEXT_HIDDEN,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "vocab_size": VOCAB_SIZE,
            "eos_token_id": ids["<|endoftext|>"],
            "bos_token_id": ids["<|endoftext|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": TEXT_HIDDEN,
        },
        hidden_size=TEXT_HIDDEN,
        vocab_size=VOCAB_SIZE,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config)
    return {
        "transformer": transformer,
        "vae": vae,
        "scheduler": scheduler,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "processor": build_processor(tokenizer),
    }


def save_tiny_pipeline(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a complete tiny model directory (model_index.json + one folder per component)."""
    from diffusers import QwenImageEditPlusPipeline

    path = Path(path)
    pipe = QwenImageEditPlusPipeline(**build_tiny_components(seed))
    pipe.save_pretrained(os.fspath(path))
    return path


def save_tiny_lora(
    path: str | os.PathLike,
    *,
    seed: int = 1,
    rank: int = 4,
    scale: float = 0.5,
    weight_name: str = "lora.safetensors",
) -> Path:
    """A random LoRA over the tiny transformer's attention projections, in diffusers format.

    Weights are non-zero on both factors so loading it visibly changes the output."""
    import torch
    from diffusers import QwenImageEditPlusPipeline
    from safetensors.torch import save_file

    components = build_tiny_components(0)
    transformer = components["transformer"]
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in {"to_q", "to_k", "to_v"}:
            a = torch.randn(rank, module.in_features, generator=gen) * scale
            b = torch.randn(module.out_features, rank, generator=gen) * scale
            state[f"transformer.{name}.lora_A.weight"] = a
            state[f"transformer.{name}.lora_B.weight"] = b
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    out = path / weight_name
    save_file(state, os.fspath(out))
    assert QwenImageEditPlusPipeline  # the format is the one its load_lora_weights reads
    return out
