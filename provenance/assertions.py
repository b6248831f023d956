"""Typed inputs for castkeep's own C2PA assertions, and their JSON form.

Nothing here may identify a person: talents appear only by pseudonymous id, release documents
only by sha256. The validators refuse values that look like names or e-mail addresses.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from castkeep.vocab import EditKind, values

CONSENT_LABEL = "com.castkeep.consent"
CONSENT_SCHEMA = "https://castkeep.dev/schemas/consent/v2"
SCORES_LABEL = "com.castkeep.scores"
SCORES_SCHEMA = "https://castkeep.dev/schemas/scores/v1"
TRAINING_MINING_LABEL = "cawg.training-mining"
METADATA_LABEL = "c2pa.metadata"
SOFT_BINDING_LABEL = "c2pa.soft-binding"

TRAINING_MINING_USES = (
    "cawg.ai_generative_training",
    "cawg.ai_inference",
    "cawg.ai_training",
    "cawg.data_mining",
)

EDIT_KINDS = values(EditKind)

# IPTC digital source types castkeep outputs carry (C2PA actions and XMP alike).
IPTC_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/"
DIGITAL_SOURCE_TYPES = ("compositeWithTrainedAlgorithmicMedia", "trainedAlgorithmicMedia")


def short_source_type(value: str) -> str:
    """A digital source type by its short name (the IPTC URL prefix dropped); one of
    DIGITAL_SOURCE_TYPES or ValueError (used as a pydantic validator)."""
    short = value.removeprefix(IPTC_SOURCE)
    if short not in DIGITAL_SOURCE_TYPES:
        raise ValueError(f"digital_source_type must be one of {DIGITAL_SOURCE_TYPES}")
    return short

# How much of the consent a public file carries (CASTKEEP_SIGNING__CONSENT_DETAIL): `minimal`
# (ids, status at signing, validity window, edit kinds used) or `full` (also the scope terms and
# the release documents' sha256s).
CONSENT_DETAILS = ("minimal", "full")

# PLUS (useplus.org) vocabulary. Model releases with scopes are "limited".
PLUS_NS = "http://ns.useplus.org/ldf/xmp/1.0/"
PLUS_VOCAB = "http://ns.useplus.org/ldf/vocab/"
MODEL_RELEASE_STATUSES = ("MR-NON", "MR-NAP", "MR-UMR", "MR-LMR")
# Closest PLUS ImageAlterationConstraints term for each forbidden castkeep edit kind.
_ALTERATION = {
    "lighting": "IMAL-NRET",  # no retouching
    "expression": "IMAL-NRET",
    "wardrobe": "IMAL-NRET",
    "camera": "IMAL-NRET",
    "background": "IMAL-NMER",  # no merging
    "group_composite": "IMAL-NMER",
}

# Pseudonymous identifiers: opaque tokens (uuid, slug with digits, prefix:id), no spaces or '@'.
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
PseudonymousId = Annotated[str, StringConstraints(pattern=_ID)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScopeSummary(_Spec):
    """What the consents allow, as vocabulary terms (never free text about the person)."""

    channels: tuple[str, ...] = ()
    territories: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    edits: tuple[str, ...] = ()
    synthetic_likeness: bool = False
    ai_training: bool = False

    @field_validator("channels", "territories", "purposes", "edits")
    @classmethod
    def _terms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for term in value:
            if not re.fullmatch(r"[A-Za-z0-9*][A-Za-z0-9_*.-]{0,63}", term):
                raise ValueError(f"scope term {term!r} must be a short vocabulary token")
        return value


class ConsentValidity(_Spec):
    """One consent as it stood when the asset was signed."""

    consent: PseudonymousId
    status: Literal["active", "revoked", "expired"] = "active"
    valid_from: dt.date | dt.datetime | None = None
    valid_until: dt.date | dt.datetime | None = None


class ConsentAssertion(_Spec):
    talents: tuple[PseudonymousId, ...] = Field(min_length=1)
    consents: tuple[PseudonymousId, ...] = Field(min_length=1)
    scope: ScopeSummary = ScopeSummary()
    valid_until: dt.date | dt.datetime | None = None
    release_doc_sha256s: tuple[Sha256Hex, ...] = ()
    model_release_status: str = "MR-LMR"
    validity: tuple[ConsentValidity, ...] = ()
    edits_used: tuple[str, ...] = ()
    detail: Literal["minimal", "full"] = "minimal"

    @field_validator("edits_used")
    @classmethod
    def _edits_used(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in value if v not in EDIT_KINDS]
        if unknown:
            raise ValueError(f"unknown edit kinds {unknown}; known: {EDIT_KINDS}")
        return value

    @field_validator("model_release_status")
    @classmethod
    def _status(cls, value: str) -> str:
        if value not in MODEL_RELEASE_STATUSES:
            raise ValueError(f"model_release_status must be one of {MODEL_RELEASE_STATUSES}")
        return value


class IdentityScore(_Spec):
    talent_id: PseudonymousId
    distance: float
    threshold: float
    passed: bool
    similarity: float | None = None
    face_index: int | None = None


class AdherenceEntry(_Spec):
    error: float
    threshold: float
    passed: bool
    unit: str = ""


class ScoresAssertion(_Spec):
    encoder: str = Field(min_length=1)  # name + version of the identity encoder
    identity: tuple[IdentityScore, ...] = ()
    lighting: AdherenceEntry | None = None
    camera: AdherenceEntry | None = None


class SoftBinding(_Spec):
    """A soft binding of the signed pixels: the algorithm and its value (for castkeep's
    watermark, the asset key as 12 hex digits; the key leads to the catalogue, not to a person)."""

    alg: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{2,99}$")
    value: str = Field(pattern=r"^[0-9a-f]{1,256}$")


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat()


def consent_assertion(consent: ConsentAssertion, forbidden_edits: tuple[str, ...]) -> dict:
    """The public consent assertion. `minimal` (the default) says which consents, in what state
    and for how long, and which edits were made; the scope terms and the release documents'
    hashes describe a person's contract beyond this asset and go in only at `full`."""
    data: dict = {
        "schema": CONSENT_SCHEMA,
        "detail": consent.detail,
        "talents": list(consent.talents),
        "consents": list(consent.consents),
        "validity": [
            {"consent": v.consent, "status": v.status, "valid_from": _iso(v.valid_from),
             "valid_until": _iso(v.valid_until)}
            for v in consent.validity
        ],
        "valid_until": _iso(consent.valid_until),
        "edits_used": list(consent.edits_used),
    }
    if consent.detail == "full":
        data["scope"] = consent.scope.model_dump(mode="json")
        data["release_document_sha256"] = list(consent.release_doc_sha256s)
        data["forbidden_edits"] = list(forbidden_edits)
    return {"label": CONSENT_LABEL, "data": data}


def scores_assertion(scores: ScoresAssertion) -> dict:
    data = scores.model_dump(mode="json", exclude_none=True)
    return {"label": SCORES_LABEL, "data": {"schema": SCORES_SCHEMA, **data}}


def training_mining_assertion(allowed: bool) -> dict:
    use = "allowed" if allowed else "notAllowed"
    return {
        "label": TRAINING_MINING_LABEL,
        "data": {"entries": {name: {"use": use} for name in TRAINING_MINING_USES}},
    }


def alteration_constraints(forbidden_edits: tuple[str, ...]) -> list[str]:
    terms = sorted({_ALTERATION[kind] for kind in forbidden_edits if kind in _ALTERATION})
    return [PLUS_VOCAB + term for term in terms]


def model_release_assertion(consent: ConsentAssertion, forbidden_edits: tuple[str, ...]) -> dict:
    """PLUS model-release fields as a C2PA metadata (JSON-LD) assertion."""
    data: dict = {
        "@context": {"plus": PLUS_NS},
        "plus:ModelReleaseStatus": PLUS_VOCAB + consent.model_release_status,
        "plus:ModelReleaseID": list(consent.consents),
    }
    if consent.valid_until is not None:
        data["plus:LicenseEndDate"] = _iso(consent.valid_until)
    constraints = alteration_constraints(forbidden_edits)
    if constraints:
        data["plus:ImageAlterationConstraints"] = constraints
    return {"label": METADATA_LABEL, "data": data}


def soft_binding_assertion(binding: SoftBinding) -> dict:
    """C2PA 2.x soft-binding assertion: `alg` and one block over the whole image (an empty
    scope); `pad` is the spec's (empty) filler."""
    return {
        "label": SOFT_BINDING_LABEL,
        "data": {"alg": binding.alg, "blocks": [{"scope": {}, "value": binding.value}],
                 "pad": []},
    }
