"""An image-only Qwen2-VL processor that works without torchvision.

transformers' ``Qwen2VLProcessor`` also wants a video processor, and its fast image/video
processors need torchvision, which cannot be installed beside a CPU-only torch. The edit
pipeline only ever sends images, so this subclass keeps the tokenizer and the PIL-backed image
processor and drops video. It lives in an importable module so saved pipelines can name it.
"""

from __future__ import annotations

import os
from pathlib import Path

# ProcessorMixin is imported for diffusers' loader: it looks up this module's base classes to
# know how to load/save the component named in model_index.json.
from transformers import ProcessorMixin, Qwen2Tokenizer, Qwen2VLProcessor  # noqa: F401
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil


class QwenImageOnlyProcessor(Qwen2VLProcessor):
    """Qwen2-VL text+image processor with no video branch (no torchvision needed)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        # Skip Qwen2VLProcessor.__init__'s video_processor argument; set the same attributes.
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = getattr(tokenizer, "image_token_id", None) or tokenizer.convert_tokens_to_ids(
            self.image_token
        )
        self.video_token_id = getattr(tokenizer, "video_token_id", None) or tokenizer.convert_tokens_to_ids(
            self.video_token
        )
        super(Qwen2VLProcessor, self).__init__(image_processor, tokenizer, chat_template=chat_template)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):  # type: ignore[override]
        """Load tokenizer + PIL image processor from a local folder (never the hub).

        Accepts a pipeline's ``processor`` folder, or the pipeline root (then ``processor/``
        inside it is used). Extra diffusers loader kwargs are ignored.
        """
        path = Path(pretrained_model_name_or_path)
        subfolder = kwargs.get("subfolder")
        if subfolder:
            path = path / subfolder
        elif (path / "processor").is_dir() and not (path / "preprocessor_config.json").exists():
            path = path / "processor"
        tokenizer = Qwen2Tokenizer.from_pretrained(os.fspath(path), local_files_only=True)
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(os.fspath(path), local_files_only=True)
        return cls(image_processor=image_processor, tokenizer=tokenizer)
