"""Signing and cataloguing a finished variant.

The manifest carries only pseudonymous ids (talent and consent UUIDs, release-document hashes):
never a name, a file name of a portrait, or the scene text a requester typed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass


from castkeep.db import compliance
from castkeep.errors import SigningError
from castkeep.db.soft_bindings import add_soft_binding, soft_binding_in_use
from castkeep.db.catalogue import ASSETS_PREFIX, stored_at_stamp
from castkeep.db.assets_repo import (
    AssetRecord,
    GenerationRecord,
    LineageRecord,
    record_variant,
)
from castkeep.models.faces.face_types import DetectedFace
from castkeep.models.imaging import encode_image
from castkeep.models.scoring.records import ScoreRecord
from castkeep.models.specs import describe_camera, describe_lighting
from castkeep.provenance.assertions import EDIT_KINDS, ConsentValidity
from castkeep.provenance.consent import WORLD, ConsentTerms
from castkeep.provenance.manifest import (
    SUPPORTED_MEDIA_TYPES,
    ConsentAssertion,
    IngredientRef,
    ManifestInput,
    RightsMetadata,
    ScopeSummary,
    ScoresAssertion,
    SoftBinding,
    sign_image,
)
from castkeep.provenance.policy import PHOTOGRAPHIC_ENGINES
from castkeep.tasks.references import Reference

OUTPUT_MEDIA_TYPE = "image/jpeg"


def _common(values: Sequence[Sequence[str]]) -> tuple[str, ...]:
    sets = [set(v) for v in values]
    return tuple(sorted(set.intersection(*sets))) if sets else ()


def _territories(terms: Sequence[ConsentTerms]) -> tuple[str, ...]:
    # WORLD covers every code, so it drops out of an intersection with a narrower scope.
    narrow = [set(t.territories) for t in terms if WORLD not in t.territories]
    if not narrow:
        return (WORLD,)
    return tuple(sorted(set.intersection(*narrow)))


def combined_scope(terms: Sequence[ConsentTerms]) -> ScopeSummary:
    """What every depicted talent's consent allows at once (the asset's usable scope)."""
    return ScopeSummary(
        channels=_common([t.channels for t in terms]),
        territories=_territories(terms),
        purposes=_common([t.purposes for t in terms]),
        edits=_common([t.edits for t in terms]),
        synthetic_likeness=all(t.synthetic_likeness for t in terms),
        ai_training=all(t.ai_training for t in terms),
    )


def edit_description(
    engine: str, lighting, camera, scene_given: bool, group: bool, licence_id: str | None = None
) -> str:
    parts = []
    if group:
        parts.append("group composite")
    if lighting is not None:
        parts.append(f"relight ({describe_lighting(lighting)})")
    if camera is not None:
        parts.append(f"camera ({describe_camera(camera)})")
    if scene_given:
        parts.append("scene changed")
    licence = f" (licence {licence_id})" if licence_id else ""
    return f"{engine}{licence}: " + ("; ".join(parts) or "edit")


def _ingredient(i: int, ref: Reference) -> IngredientRef:
    if ref.media_type in SUPPORTED_MEDIA_TYPES:
        return IngredientRef(
            media_type=ref.media_type, title=f"reference-{i}", data=ref.data, sha256=ref.sha256
        )
    # A TIFF reference is embedded as a lossless PNG copy of its pixels.
    return IngredientRef(
        media_type="image/png", title=f"reference-{i}", data=encode_image(ref.rgb, fmt="PNG")
    )


@dataclass(frozen=True)
class RightsConfig:
    """The signing settings that shape what a public file says (plain values from the edge:
    CASTKEEP_SIGNING__CONSENT_DETAIL, __CREATOR, __CREDIT, __RIGHTS_URL)."""

    consent_detail: str = "minimal"
    creator: str | None = None
    credit: str | None = None
    rights_url: str | None = None

    def __post_init__(self) -> None:
        # Checked where settings become values, so a bad setting fails before any model runs.
        import re

        from castkeep.errors import ConfigurationError
        from castkeep.provenance.assertions import CONSENT_DETAILS

        if self.consent_detail not in CONSENT_DETAILS:
            raise ConfigurationError(f"CASTKEEP_SIGNING__CONSENT_DETAIL must be one of "
                                     f"{', '.join(CONSENT_DETAILS)}, not {self.consent_detail!r}")
        for name in ("creator", "credit"):
            value = getattr(self, name)
            if value is not None and not re.fullmatch(r"[^\x00-\x1f\x7f]{1,2000}", value):
                raise ConfigurationError(f"CASTKEEP_SIGNING__{name.upper()} must be one line of "
                                         "text (1-2000 characters)")
        if self.rights_url is not None and not re.fullmatch(
                r"https?://[^\s\x00-\x1f\x7f<>\"]{1,2000}", self.rights_url):
            raise ConfigurationError("CASTKEEP_SIGNING__RIGHTS_URL must be an http(s) URL "
                                     "without spaces")


def digital_source_type(engine: str) -> str:
    """A photographic engine edits the photograph (a composite with algorithmic media); any other
    engine synthesises the image with a trained model."""
    if engine in PHOTOGRAPHIC_ENGINES:
        return "compositeWithTrainedAlgorithmicMedia"
    return "trainedAlgorithmicMedia"


def usage_terms(use: dict, until: dt.date) -> str:
    """The asset's recorded use in words (not the consents' whole scope)."""
    start = use.get("publish_date") or "signing"
    return (f"Licensed use only: channel {use.get('channel', '?')}, territory "
            f"{use.get('territory', '?')}, purpose {use.get('purpose', '?')}; publish from {start} "
            f"until {until.isoformat()}. Any other use needs a new consent check.")


def restrictions(forbidden_edits: Sequence[str], ai_training: bool, minor: bool) -> str:
    parts = []
    if forbidden_edits:
        parts.append("Do not alter " + ", ".join(forbidden_edits) + " (not covered by the model "
                     "release).")
    if not ai_training:
        parts.append("Not for AI training or data mining.")
    if minor:
        parts.append("Depicts a minor: use only as licensed under the guardian's release.")
    parts.append("The model release can be withdrawn: remove on notice.")
    return " ".join(parts)


def build_manifest(
    *,
    title: str,
    references: Sequence[Reference],
    consents: Sequence[ConsentTerms],
    engine_name: str,
    engine_version: str,
    description: str,
    scores: ScoresAssertion | None,
    use: dict,
    rights: RightsConfig = RightsConfig(),
) -> ManifestInput:
    """The C2PA manifest and the XMP rights metadata of one output. `use` is the asset's
    recorded use (provenance.policy.use_record)."""
    scope = combined_scope(consents)
    valid_until = min(c.valid_until for c in consents)
    forbidden = tuple(k for k in EDIT_KINDS if k not in scope.edits)
    source = digital_source_type(engine_name)
    consent_ids = tuple(c.id for c in consents)
    return ManifestInput(
        title=title,
        media_type=OUTPUT_MEDIA_TYPE,
        kind="edit" if len(references) == 1 else "composite",
        engine_name=engine_name,
        engine_version=engine_version,
        description=description,
        digital_source_type=source,
        ingredients=tuple(_ingredient(i, r) for i, r in enumerate(references)),
        consent=ConsentAssertion(
            talents=tuple(r.talent_id for r in references),
            consents=consent_ids,
            scope=scope,
            valid_until=valid_until,
            release_doc_sha256s=tuple(
                sorted({c.release_doc_sha256 for c in consents if c.release_doc_sha256})
            ),
            validity=tuple(
                ConsentValidity(consent=c.id, status=c.status, valid_from=c.valid_from,
                                valid_until=c.valid_until)
                for c in consents
            ),
            edits_used=tuple(k for k in EDIT_KINDS if k in set(use.get("edits") or ())),
            detail=rights.consent_detail,
        ),
        scores=scores,
        ai_training_allowed=scope.ai_training,
        forbidden_edits=forbidden,
        rights=RightsMetadata(
            digital_source_type=source,
            consent_ids=tuple(dict.fromkeys(consent_ids)),
            minor=any(c.minor for c in consents),
            usage_terms=usage_terms(use, valid_until.date()),
            license_end=valid_until.date(),
            web_statement=rights.rights_url,
            creator=rights.creator,
            credit=rights.credit,
            instructions=restrictions(forbidden, scope.ai_training, any(c.minor for c in consents)),
        ),
    )


@dataclass(frozen=True)
class SignedAsset:
    data: bytes
    sha256: str
    object_key: str
    media_type: str
    width: int
    height: int
    sign_seconds: float
    store_seconds: float
    watermark_key: int | None = None  # the soft binding in the pixels (provenance/watermark.py)


def new_watermark_key() -> int:
    import secrets

    from castkeep.provenance.watermark import KEY_BITS

    return secrets.randbits(KEY_BITS)


def unused_watermark_key(sessions, attempts: int = 16) -> int:
    """A random key no catalogued asset carries (the soft_binding unique constraint still
    guards the race between two signers drawing the same key)."""
    with sessions() as session:
        return unused_watermark_key_in(session, attempts)


def unused_watermark_key_in(session, attempts: int = 16) -> int:
    """unused_watermark_key, read in an open session (a caller that has one saves a round trip)."""
    from castkeep.provenance.watermark import ALG

    for _ in range(attempts):
        key = new_watermark_key()
        if not soft_binding_in_use(session, alg=ALG, value=key):
            return key
    raise SigningError("could not draw an unused watermark key; the soft_binding table is "
                       "nearly full for this algorithm")


def sign_and_store(rgb, manifest: ManifestInput, signer, store, *,
                   watermark_key: int | None = None) -> SignedAsset:
    """Watermark (a fresh random key unless given), encode, embed XMP, sign, store. The mark goes
    in first so the XMP and the C2PA hard binding cover the marked pixels."""
    import time

    from castkeep.provenance import watermark

    t0 = time.perf_counter()
    key = new_watermark_key() if watermark_key is None else watermark_key
    rgb = watermark.embed(rgb, key)
    manifest = manifest.model_copy(update={"soft_binding": SoftBinding(
        alg=watermark.ALG, value=f"{key:0{watermark.KEY_BITS // 4}x}")})
    image = encode_image(rgb, fmt="JPEG", quality=92)
    signed = sign_image(image, OUTPUT_MEDIA_TYPE, manifest, signer)
    t1 = time.perf_counter()
    # The stamp starts gc's grace period: the object is an orphan until its rows commit.
    stored = store.put_bytes(signed, prefix=ASSETS_PREFIX, ext="jpg", media_type=OUTPUT_MEDIA_TYPE,
                             metadata=stored_at_stamp())
    t2 = time.perf_counter()
    return SignedAsset(
        data=signed,
        sha256=hashlib.sha256(signed).hexdigest(),
        object_key=stored.key,
        media_type=OUTPUT_MEDIA_TYPE,
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
        sign_seconds=t1 - t0,
        store_seconds=t2 - t1,
        watermark_key=key,
    )


@dataclass(frozen=True)
class CataloguedVariant:
    asset_id: uuid.UUID
    status: str


def catalogue_variant(
    sessions,
    request_id: uuid.UUID,
    *,
    generation: GenerationRecord,
    scores: Sequence[ScoreRecord],
    signed: SignedAsset,
    status: str,
    status_reason: str | None,
    use: dict,
    references: Sequence[Reference],
    faces: Sequence[DetectedFace],
    actor: str,
) -> CataloguedVariant:
    """Asset + generation + scores + lineage + faces + audit event, in one transaction."""
    relationship = "parentOf" if len(references) == 1 else "componentOf"
    lineage = [
        LineageRecord(
            reference_portrait_id=r.reference_portrait_id,
            talent_id=uuid.UUID(r.talent_id),
            consent_id=uuid.UUID(r.consent_id),
            relationship=relationship,
        )
        for r in references
    ]
    with sessions.begin() as session:
        # The consents this asset is derived under, locked like a publish locks them: a
        # revocation that committed first makes the new asset quarantined from birth; one that
        # comes later waits for this transaction and its cascade then reaches the new asset.
        locked = compliance.lock_consents(session, [link.consent_id for link in lineage])
        withdrawn = compliance.withdrawn_consents(locked, now=dt.datetime.now(dt.timezone.utc))
        if withdrawn:
            status = "quarantined"
            status_reason = "; ".join(
                f"consent {c.id} {c.status if c.status != 'active' else 'past its end'} "
                "before this variant was catalogued" for c in withdrawn
            )
        asset_id = record_variant(
            session,
            request_id,
            generation=generation,
            scores=scores,
            asset=AssetRecord(
                sha256=signed.sha256,
                object_key=signed.object_key,
                media_type=signed.media_type,
                width=signed.width,
                height=signed.height,
                status=status,
                status_reason=status_reason,
                use=use,
                manifest_label=None,
            ),
            lineage=lineage,
            faces=faces,
            actor=actor,
        )
        if signed.watermark_key is not None:
            from castkeep.provenance.watermark import ALG

            add_soft_binding(session, asset_id, alg=ALG, value=signed.watermark_key)
    return CataloguedVariant(asset_id=asset_id, status=status)


@dataclass(frozen=True)
class FinishedVariant:
    asset_id: uuid.UUID
    signed: SignedAsset
    db_seconds: float


def finish_variant(rgb, manifest: ManifestInput, signer, store, sessions, request_id: uuid.UUID,
                   *, watermark_key: int | None = None, **catalogue_kwargs) -> FinishedVariant:
    """Sign and store the image, then catalogue it (the object first: an object without rows is
    an orphan for gc; rows without their signed object never exist). `watermark_key`: one drawn
    by unused_watermark_key(_in) (default: drawn here)."""
    import time

    if watermark_key is None:
        watermark_key = unused_watermark_key(sessions)
    signed = sign_and_store(rgb, manifest, signer, store, watermark_key=watermark_key)
    t0 = time.perf_counter()
    done = catalogue_variant(sessions, request_id, signed=signed, **catalogue_kwargs)
    if done.status == "quarantined" and not store.legal_hold(signed.object_key):
        store.set_legal_hold(signed.object_key, True)
    return FinishedVariant(asset_id=done.asset_id, signed=signed,
                           db_seconds=time.perf_counter() - t0)
