"""C2PA manifests for castkeep outputs: typed input -> manifest definition -> signed image.

An edit of one reference portrait is ``c2pa.opened`` (the reference as parentOf ingredient)
followed by ``c2pa.edited``; a group composite is ``c2pa.created`` plus one ``c2pa.placed`` per
reference (componentOf). Both disclose AI involvement through digitalSourceType.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading
from pathlib import Path
from typing import Annotated, Literal

import c2pa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from castkeep import __version__ as castkeep_version
from castkeep.errors import SigningError, UnsupportedImageError
from castkeep.provenance.assertions import (
    EDIT_KINDS,
    IPTC_SOURCE,
    AdherenceEntry,
    ConsentAssertion,
    IdentityScore,
    ScopeSummary,
    ScoresAssertion,
    SoftBinding,
    consent_assertion,
    model_release_assertion,
    scores_assertion,
    short_source_type,
    soft_binding_assertion,
    training_mining_assertion,
)
from castkeep.provenance.signing import Signer
from castkeep.provenance.xmp import RightsMetadata, embed_rights

__all__ = [
    "AdherenceEntry",
    "ConsentAssertion",
    "IdentityScore",
    "IngredientRef",
    "ManifestInput",
    "RightsMetadata",
    "ScopeSummary",
    "ScoresAssertion",
    "SoftBinding",
    "SUPPORTED_MEDIA_TYPES",
    "build_manifest_json",
    "sign_image",
]

SUPPORTED_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp")


def _supported_media(value: str) -> str:
    if value not in SUPPORTED_MEDIA_TYPES:
        raise ValueError(f"media_type must be one of {SUPPORTED_MEDIA_TYPES}")
    return value


MediaType = Annotated[str, AfterValidator(_supported_media)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngredientRef(_Spec):
    """A reference portrait the output was made from: its bytes or a path to them."""

    media_type: MediaType
    title: str = Field(min_length=1, max_length=200)
    data: bytes | None = Field(default=None, repr=False)
    path: Path | None = None
    sha256: str | None = None  # when given, the bytes must match it

    @model_validator(mode="after")
    def _one_source(self) -> IngredientRef:
        if (self.data is None) == (self.path is None):
            raise ValueError("give exactly one of data or path")
        return self

    def read(self) -> bytes:
        if self.data is not None:
            data = self.data
        else:
            try:
                data = Path(self.path).read_bytes()
            except OSError as exc:
                raise SigningError(f"cannot read ingredient {self.path}: {exc.strerror}") from exc
        if self.sha256 is not None and hashlib.sha256(data).hexdigest() != self.sha256:
            raise SigningError(
                f"ingredient {self.title!r} does not match its sha256 {self.sha256[:12]}...; "
                "the reference portrait changed since it was catalogued"
            )
        return data


class ManifestInput(_Spec):
    title: str = Field(min_length=1, max_length=200)
    media_type: MediaType
    kind: Literal["edit", "composite"]
    engine_name: str = Field(min_length=1)
    engine_version: str = Field(min_length=1)
    description: str = Field(min_length=1, max_length=2000)
    digital_source_type: str = "compositeWithTrainedAlgorithmicMedia"
    ingredients: tuple[IngredientRef, ...] = Field(min_length=1)
    consent: ConsentAssertion
    scores: ScoresAssertion | None = None
    ai_training_allowed: bool = False
    forbidden_edits: tuple[str, ...] = ()
    # Thumbnails cost ~95 % of signing time and copy a likeness into the manifest.
    thumbnails: bool = False
    created_at: dt.datetime | None = None
    # XMP/IPTC rights metadata embedded before signing (None: the image's own metadata only).
    rights: RightsMetadata | None = None
    # The watermark (or fingerprint) in the pixels that leads a stripped copy back here.
    soft_binding: SoftBinding | None = None

    @field_validator("digital_source_type")
    @classmethod
    def _source(cls, value: str) -> str:
        return short_source_type(value)

    @field_validator("forbidden_edits")
    @classmethod
    def _edits(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in value if v not in EDIT_KINDS]
        if unknown:
            raise ValueError(f"unknown edit kinds {unknown}; known: {EDIT_KINDS}")
        return value

    @model_validator(mode="after")
    def _shape(self) -> ManifestInput:
        if self.kind == "edit" and len(self.ingredients) != 1:
            raise ValueError("an edit has exactly one reference ingredient; use kind='composite'")
        if self.rights is not None and self.rights.digital_source_type != self.digital_source_type:
            raise ValueError("the rights metadata and the manifest must give the same "
                             "digital_source_type")
        return self


def _ingredient_label(index: int) -> str:
    return f"castkeep-reference-{index}"


def _actions(m: ManifestInput) -> dict:
    source = IPTC_SOURCE + m.digital_source_type
    agent = {"name": m.engine_name, "version": m.engine_version}
    when = (m.created_at or dt.datetime.now(dt.timezone.utc)).isoformat()
    if m.kind == "edit":
        actions = [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": [_ingredient_label(0)]},
             "when": when},
            {"action": "c2pa.edited", "digitalSourceType": source, "softwareAgent": agent,
             "description": m.description, "when": when},
        ]
    else:
        actions = [{"action": "c2pa.created", "digitalSourceType": source, "softwareAgent": agent,
                    "description": m.description, "when": when}]
        actions += [
            {"action": "c2pa.placed", "parameters": {"ingredientIds": [_ingredient_label(i)]},
             "when": when}
            for i in range(len(m.ingredients))
        ]
    return {"label": "c2pa.actions.v2", "data": {"actions": actions}}


def build_manifest_json(m: ManifestInput) -> dict:
    """The manifest definition handed to c2pa (ingredients are added from their bytes)."""
    assertions = [
        _actions(m),
        training_mining_assertion(m.ai_training_allowed),
        consent_assertion(m.consent, m.forbidden_edits),
        model_release_assertion(m.consent, m.forbidden_edits),
    ]
    if m.scores is not None:
        assertions.append(scores_assertion(m.scores))
    if m.soft_binding is not None:
        assertions.append(soft_binding_assertion(m.soft_binding))
    return {
        "claim_generator_info": [{"name": "castkeep", "version": castkeep_version}],
        "title": m.title,
        "format": m.media_type,
        "assertions": assertions,
    }


def ingredient_json(m: ManifestInput, index: int) -> dict:
    ref = m.ingredients[index]
    return {
        "title": ref.title,
        "format": ref.media_type,
        "relationship": "parentOf" if m.kind == "edit" else "componentOf",
        "label": _ingredient_label(index),
    }


_contexts: dict[bool, c2pa.Context] = {}
_contexts_lock = threading.Lock()


def _builder_context(thumbnails: bool) -> c2pa.Context:
    # Created on first use, not at import; shared across calls (c2pa contexts are reusable).
    with _contexts_lock:
        ctx = _contexts.get(thumbnails)
        if ctx is None or not ctx.is_valid:
            ctx = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": thumbnails}}})
            _contexts[thumbnails] = ctx
        return ctx


def sign_image(image_bytes: bytes, media_type: str, manifest: ManifestInput, signer: Signer) -> bytes:
    """Embed a signed C2PA manifest in a JPEG/PNG/WebP image and return the new bytes."""
    if media_type not in SUPPORTED_MEDIA_TYPES:
        raise UnsupportedImageError(
            f"cannot sign {media_type}; castkeep signs {', '.join(SUPPORTED_MEDIA_TYPES)}"
        )
    if media_type != manifest.media_type:
        raise SigningError(
            f"image is {media_type} but the manifest says {manifest.media_type}; build the "
            "ManifestInput with the output's media type"
        )
    ingredients = [ref.read() for ref in manifest.ingredients]
    if manifest.rights is not None:
        # Before signing: the hard binding then covers the XMP and the ICC profile.
        image_bytes = embed_rights(image_bytes, manifest.rights)
    definition = build_manifest_json(manifest)
    native = signer.native()
    out = io.BytesIO()
    try:
        builder = c2pa.Builder(definition, context=_builder_context(manifest.thumbnails))
        try:
            for index, data in enumerate(ingredients):
                builder.add_ingredient(ingredient_json(manifest, index),
                                       manifest.ingredients[index].media_type, io.BytesIO(data))
            builder.sign(native, media_type, io.BytesIO(image_bytes), out)
        finally:
            builder.close()
    except c2pa.C2paError as exc:
        if signer.tsa_url and signer.tsa_url.rstrip("/") in str(exc):
            raise SigningError(
                f"the timestamp authority {signer.tsa_url} did not answer ({exc}); fix or unset "
                "CASTKEEP_SIGNING__TSA_URL"
            ) from exc
        raise SigningError(
            f"c2pa could not sign the {media_type} image: {exc}; check that the bytes are a "
            "complete image of that type and that the signing settings (CASTKEEP_SIGNING__*) "
            "are valid"
        ) from exc
    return out.getvalue()
