"""Edit engines: one family, one registry.

An engine turns 1..N reference portraits plus a lighting/camera spec (and optionally a scene) into
one edited image. Engines read like a diffusers pipeline: components are passed in (or loaded by
``load()``), ``check_inputs`` raises on bad input rather than fixing it, ``_predict`` runs in
numbered stages, and the result is a frozen ``EditOutput``.

Edit kinds (vocabulary shared with consent scopes): see ``EDIT_KINDS``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pydantic import BaseModel, ConfigDict, ValidationError

from castkeep.errors import SpecError, UnknownModelError
from castkeep.models.base import ModelBase
from castkeep.models.faces.face_types import DetectedFace
from castkeep.models.specs import CameraSpec, LightingSpec
from castkeep.vocab import EditKind, values

EDIT_KINDS = values(EditKind)


@dataclass(frozen=True)
class EngineInfo:
    name: str
    version: str
    licence: str
    commercial_use: bool
    device: str  # "cpu" or "cuda" (what it runs on when loaded)
    max_references: int


@dataclass(frozen=True)
class EditInput:
    """What to edit and how. ``faces[i]`` is the detected face of ``references[i]``."""

    references: list[np.ndarray]  # HxWx3 uint8 RGB
    faces: list[DetectedFace]
    lighting: LightingSpec | None = None
    camera: CameraSpec | None = None
    scene: str | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EditOutput:
    image: np.ndarray  # HxWx3 uint8 RGB
    metadata: dict[str, Any]
    edit_kinds: tuple[str, ...]


def requested_edit_kinds(inp: EditInput) -> tuple[str, ...]:
    """The edit kinds an input asks for (before an engine decides what it can do)."""
    kinds = []
    if inp.lighting is not None:
        kinds.append("lighting")
    if inp.camera is not None:
        kinds.append("camera")
    if inp.scene:
        kinds.append("background")
    if len(inp.references) > 1:
        kinds.append("group_composite")
    return tuple(kinds)


class EditEngine(ModelBase):
    """Base of every edit engine. Subclasses set ``info`` and implement ``_predict``."""

    info: EngineInfo

    def check_inputs(self, inp: EditInput) -> None:
        """Raise SpecError on input this engine cannot use. Shared checks first."""
        n = len(inp.references)
        if n == 0:
            raise SpecError(f"engine {self.info.name!r} needs at least one reference image")
        if n > self.info.max_references:
            raise SpecError(
                f"engine {self.info.name!r} takes at most {self.info.max_references} reference "
                f"images, got {n}; split the group or choose fewer references"
            )
        if len(inp.faces) != n:
            raise SpecError(
                f"got {n} reference images but {len(inp.faces)} detected faces; pass exactly one "
                "face per reference (detect first)"
            )
        for i, ref in enumerate(inp.references):
            if not (isinstance(ref, np.ndarray) and ref.ndim == 3 and ref.shape[2] == 3
                    and ref.dtype == np.uint8):
                raise SpecError(f"reference {i} must be an HxWx3 uint8 RGB array (decode it first)")
        if not isinstance(inp.seed, int) or inp.seed < 0:
            raise SpecError(f"seed must be a non-negative integer, got {inp.seed!r}")
        if inp.lighting is None and inp.camera is None and not inp.scene and n == 1:
            raise SpecError("nothing to do: give a lighting spec, a camera spec or a scene")

    def check_options(self, options: dict[str, Any], *, scene: str | None = None) -> None:
        """Raise SpecError on options (or a scene) this engine cannot use. Needs no images, so a
        request is checked before it is catalogued; an engine's check_inputs calls it too."""

    def predict(self, inp: EditInput) -> EditOutput:  # type: ignore[override]
        self.check_inputs(inp)
        return super().predict(inp)


class EngineOptions(BaseModel):
    """Base of an engine's options model: unknown keys are refused, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def validate_options(model: type[EngineOptions], options: dict[str, Any], *, engine: str,
                     hints: dict[str, str]) -> EngineOptions:
    """The options as `model`, or SpecError in words: the unknown keys with the known ones, or
    the first bad option with its hint (formatted with the given `value`)."""
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        errors = exc.errors()
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        raise SpecError(
            f"unknown {engine} option(s) {unknown}; known: {sorted(model.model_fields)}"
        ) from None
    key = str(errors[0]["loc"][0])
    hint = hints.get(key, f"option {key!r} is invalid: {errors[0]['msg']}")
    raise SpecError(hint.format(value=options.get(key))) from None


# name -> "module:Class" so that importing the registry loads no engine code.
_REGISTRY: dict[str, str] = {
    "classical": "castkeep.models.engines.engine_classical:ClassicalEngine",
    "qwen-image-edit": "castkeep.models.engines.engine_qwen:QwenImageEditEngine",
}


def known_engines() -> list[str]:
    return sorted(_REGISTRY)


def get_engine(name: str, **options: Any) -> EditEngine:
    """Instantiate an engine by name (not loaded yet; ``load()`` or the first predict loads it)."""
    target = _REGISTRY.get(name)
    if target is None:
        raise UnknownModelError(
            f"unknown edit engine {name!r}; known engines: {', '.join(known_engines())} "
            "(set CASTKEEP_ENGINES__DEFAULT or pass --engine)"
        )
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(**options)
