"""The marketing request file: who, what edit, where it will be used, and the quality bar.

A request file is YAML or JSON (JSON is read as YAML, so either parses). Unknown keys are errors,
and every error names the file and the field, so a requester can fix the file without reading code.

Example::

    campaign: Spring launch
    requester: marketing@example.com
    talents: [t-0001, t-0002]          # castkeep talent ids or the agency's external refs
    scene: "on a sunlit terrace"       # optional; asks the engine to change the background
    lighting: {azimuth: -45, elevation: 30, fill: 0.2, temp: 3200}   # or "azimuth=-45,fill=0.2"
    camera: "roll=30,shot=medium"
    engine: classical
    engine_options: {}
    variants: 4
    seeds: [1, 2, 3, 4]                # optional, one per variant
    channel: social
    territory: FR
    purpose: advertising
    publish_date: 2026-12-01
    thresholds: {camera_roll_deg: 4}  # optional, over the configured defaults
    approval_required: true
    allow_extra_faces: false

Defaults (engine name, thresholds) are passed in by the caller, which reads them from settings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from castkeep.documents import parse_document, read_document
from castkeep.errors import ManifestError, SpecError
from castkeep.models.specs import (
    CameraSpec,
    LightingSpec,
    camera_from_mapping,
    lighting_from_mapping,
    parse_camera,
    parse_lighting,
)

MAX_VARIANTS = 200
# Engine options are a few settings (steps, a prompt, LoRA names), never data.
MAX_ENGINE_OPTIONS_BYTES = 16 * 1024
MAX_ENGINE_OPTIONS_DEPTH = 6
_TERRITORY = re.compile(r"^(?:[A-Z]{2}|WORLD)$")
_WORD = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")


class Thresholds(BaseModel):
    """The quality bar a variant must clear; a variant below any of them is retried, then rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # None: the encoder's own same-person threshold (EncoderInfo.threshold).
    identity_distance: float | None = Field(None, gt=0.0)
    lighting_azimuth_deg: float = Field(35.0, gt=0.0, le=180.0)
    camera_roll_deg: float = Field(5.0, gt=0.0, le=90.0)
    # Basic quality: the smallest face (shorter box side, px) and sharpness an output may have.
    min_face_px: int = Field(24, ge=1)
    min_sharpness: float = Field(5.0, ge=0.0)
    # Seams and halos: new-edge strength around a head relative to the face's own texture
    # (models/scoring/artefacts.py); the classical 1.0 engine's relight seam measured ~0.8-2.
    max_seam_ratio: float = Field(0.6, gt=0.0)
    # New seeds tried for a variant that fails a threshold before it is recorded as rejected.
    max_retries: int = Field(2, ge=0, le=10)


class RequestSpec(BaseModel):
    """A validated request. Built by `load_request` / `request_from_mapping`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign: str = Field(min_length=1, max_length=300)
    requester: str = Field(min_length=1, max_length=300)
    talents: tuple[str, ...] = Field(min_length=1, max_length=8)
    brief: str | None = Field(None, max_length=4000)
    scene: str | None = Field(None, max_length=2000)
    lighting: LightingSpec | None = None
    camera: CameraSpec | None = None
    engine: str = Field(min_length=1, max_length=100)
    engine_options: dict[str, Any] = Field(default_factory=dict)
    variants: int = Field(1, ge=1, le=MAX_VARIANTS)
    seeds: tuple[int, ...] | None = None
    channel: str
    territory: str
    purpose: str
    publish_date: dt.date
    thresholds: Thresholds = Field(default_factory=Thresholds)
    approval_required: bool = False
    allow_extra_faces: bool = False

    @field_validator("talents")
    @classmethod
    def _talents(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(v.strip() for v in value)
        if any(not v for v in cleaned):
            raise ValueError("a talent reference is empty")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("a talent is listed twice")
        return cleaned

    @field_validator("engine_options")
    @classmethod
    def _bounded_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _depth(value) > MAX_ENGINE_OPTIONS_DEPTH:
            raise ValueError(
                f"engine options are nested more than {MAX_ENGINE_OPTIONS_DEPTH} levels deep"
            )
        try:
            size = len(json.dumps(value, allow_nan=False).encode())
        except (TypeError, ValueError):
            raise ValueError(
                "engine options must be plain values (text, numbers, true/false, lists, "
                "mappings)"
            ) from None
        if size > MAX_ENGINE_OPTIONS_BYTES:
            raise ValueError(
                f"engine options take {size} bytes as JSON, more than the "
                f"{MAX_ENGINE_OPTIONS_BYTES} allowed: give settings, not data"
            )
        return value

    @field_validator("scene", "brief")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("channel", "purpose")
    @classmethod
    def _word(cls, value: str) -> str:
        norm = value.strip().lower()
        if not _WORD.match(norm):
            raise ValueError("use one lower-case word such as 'social' or 'advertising'")
        return norm

    @field_validator("territory")
    @classmethod
    def _territory(cls, value: str) -> str:
        norm = value.strip().upper()
        if not _TERRITORY.match(norm):
            raise ValueError("use an ISO 3166-1 alpha-2 code (e.g. FR) or WORLD")
        return norm

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and any(s < 0 or s >= 2**63 for s in value):
            raise ValueError("seeds must be between 0 and 2**63-1")
        return value

    @model_validator(mode="after")
    def _seed_count(self) -> RequestSpec:
        if self.seeds is not None and len(self.seeds) != self.variants:
            raise ValueError(
                f"seeds: {len(self.seeds)} given for {self.variants} variants; give one per variant "
                "or leave seeds out"
            )
        return self

    # ---- derived values -------------------------------------------------------------------

    @property
    def is_group(self) -> bool:
        return len(self.talents) > 1

    def edit_kinds(self) -> tuple[str, ...]:
        """The edit kinds (consent vocabulary) this request needs, in a stable order."""
        kinds = []
        if self.lighting is not None:
            kinds.append("lighting")
        if self.camera is not None:
            kinds.append("camera")
        if self.scene is not None:
            kinds.append("background")
        if self.is_group:
            kinds.append("group_composite")
        return tuple(kinds)

    def seed_for(self, variant: int, attempt: int) -> int:
        """Deterministic seed per (variant, attempt): re-runs give the same pixels, retries new ones."""
        base = self.seeds[variant] if self.seeds is not None else _derived_seed(self, variant)
        if attempt == 0:
            return base
        digest = hashlib.sha256(f"{base}:{attempt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") >> 1

    def canonical(self) -> dict[str, Any]:
        """JSON-ready form (what the catalogue stores as the request's spec)."""
        return self.model_dump(mode="json")

    def sha256(self) -> str:
        data = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(data.encode()).hexdigest()


def _depth(value: Any) -> int:
    """Nesting depth of lists/mappings (a scalar is 0); iterative, so no depth can crash it."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, level + 1) for v in item)
        else:
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
    return deepest


def _derived_seed(spec: RequestSpec, variant: int) -> int:
    payload = json.dumps(
        {k: v for k, v in spec.canonical().items() if k != "seeds"}, sort_keys=True
    )
    digest = hashlib.sha256(f"{payload}#{variant}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _spec_field(raw: Any, field: str, source: str, text_parser, mapping_parser):
    if raw is None:
        return None
    try:
        if isinstance(raw, str):
            return text_parser(raw)
        if isinstance(raw, Mapping):
            return mapping_parser(dict(raw))
    except SpecError as exc:
        raise ManifestError(f"{source}: field {field!r}: {exc}") from None
    raise ManifestError(
        f"{source}: field {field!r} must be a mapping or 'key=value,...' text, not "
        f"{type(raw).__name__}"
    )


def request_from_mapping(
    data: Any,
    *,
    source: str = "request",
    default_engine: str = "classical",
    default_thresholds: Mapping[str, Any] | None = None,
) -> RequestSpec:
    """Validate a parsed request document. `source` names it in errors (usually the file path)."""
    if not isinstance(data, Mapping):
        raise ManifestError(
            f"{source}: a request must be a mapping of fields (campaign, talents, ...), "
            f"not {type(data).__name__}"
        )
    doc = dict(data)
    if isinstance(doc.get("talents"), str):
        doc["talents"] = [doc["talents"]]
    doc["lighting"] = _spec_field(
        doc.get("lighting"), "lighting", source, parse_lighting, lighting_from_mapping
    )
    doc["camera"] = _spec_field(
        doc.get("camera"), "camera", source, parse_camera, camera_from_mapping
    )
    doc.setdefault("engine", default_engine)
    if doc.get("engine_options") is None:
        doc["engine_options"] = {}
    thresholds = dict(default_thresholds or {})
    given = doc.get("thresholds")
    if given is not None and not isinstance(given, Mapping):
        raise ManifestError(f"{source}: field 'thresholds' must be a mapping")
    # Only the defaults the Thresholds model knows are carried over (settings may hold more).
    thresholds = {k: v for k, v in thresholds.items() if k in Thresholds.model_fields}
    thresholds.update(given or {})
    doc["thresholds"] = thresholds
    try:
        return RequestSpec.model_validate(doc)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field; known fields: " + ", ".join(RequestSpec.model_fields)
                if len(err["loc"]) > 1 and err["loc"][0] == "thresholds":
                    msg = "unknown threshold; known: " + ", ".join(Thresholds.model_fields)
            problems.append(f"field {_field_path(err['loc'])!r}: {msg}")
        raise ManifestError(f"{source}: " + "; ".join(problems)) from None


def load_request(
    path: Path | str,
    *,
    default_engine: str = "classical",
    default_thresholds: Mapping[str, Any] | None = None,
) -> RequestSpec:
    """Read and validate a request file (YAML or JSON)."""
    path = Path(path)
    data = parse_document(read_document(path, what="request file"), str(path), what="request file")
    return request_from_mapping(
        data,
        source=str(path),
        default_engine=default_engine,
        default_thresholds=default_thresholds,
    )
