"""Consent manifests: what a talent agreed to, as a validated, typed record.

A manifest (YAML or JSON) covers one talent and one or more portraits named relative to the
manifest's own folder. A batch file holds many under ``consents:``. Validation errors raise
ManifestError naming the file and the field, so whoever prepared the file can fix it.

``ConsentTerms`` is the plain, frozen view the policy evaluates; it is built from a manifest
(before anything is catalogued) or from a catalogue row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from castkeep.documents import parse_document, read_document
from castkeep.errors import ManifestError
from castkeep.vocab import EditKind as EditKinds
from castkeep.vocab import values

# ISO 3166-1 alpha-2, officially assigned codes (as listed in tzdata's iso3166.tab).
ISO_3166_ALPHA2: frozenset[str] = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO
    DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU
    GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW
    KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU
    MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
    PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA
    ZM ZW""".split()
)
WORLD = "WORLD"

Channel = Literal["web", "social", "print", "ooh", "broadcast", "email", "in_store", "video"]
Purpose = Literal["advertising", "editorial", "internal", "packaging", "corporate", "ecommerce"]
EditKind = Literal[values(EditKinds)]  # the words of castkeep.vocab.EditKind
CHANNELS: tuple[str, ...] = Channel.__args__  # type: ignore[attr-defined]
PURPOSES: tuple[str, ...] = Purpose.__args__  # type: ignore[attr-defined]
EDIT_KINDS: tuple[str, ...] = EditKind.__args__  # type: ignore[attr-defined]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_NOTES_CHARS = 4000  # free text for people; the release document holds the terms


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TalentRef(_Strict):
    """Who the consent is from: a castkeep talent id, or the agency's own reference."""

    id: uuid.UUID | None = None
    external_ref: str | None = Field(default=None, min_length=1, max_length=200)
    display_name: str = Field(min_length=1, max_length=300)

    @model_validator(mode="after")
    def _one_identifier(self) -> TalentRef:
        if self.id is None and self.external_ref is None:
            raise ValueError("give the talent's castkeep `id` or its `external_ref`")
        return self

    @property
    def key(self) -> str:
        """Stable identity of the talent within one ingest (id wins over external_ref)."""
        return f"id:{self.id}" if self.id is not None else f"ref:{self.external_ref}"


class Scope(_Strict):
    channels: list[Channel] = Field(min_length=1)
    territories: list[str] = Field(min_length=1)
    purposes: list[Purpose] = Field(min_length=1)
    edits: list[EditKind] = Field(default_factory=list)

    @field_validator("territories")
    @classmethod
    def _iso_codes(cls, value: list[str]) -> list[str]:
        codes = [code.strip().upper() for code in value]
        unknown = [c for c in codes if c != WORLD and c not in ISO_3166_ALPHA2]
        if unknown:
            raise ValueError(
                f"unknown territory code(s) {unknown}: use ISO 3166-1 alpha-2 codes "
                f"(e.g. FR, DE, US) or {WORLD}"
            )
        return sorted(set(codes))

    @field_validator("channels", "purposes", "edits")
    @classmethod
    def _dedupe(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class Lookalike(_Strict):
    """Another talent this one is known to resemble (an identical twin, a lookalike): ingest lets
    this manifest's portraits match that talent's references, and records the justification in
    the audit log (so write it without names: who checked what, and when)."""

    talent: str = Field(min_length=1, max_length=200)  # external_ref or castkeep talent id
    justification: str = Field(min_length=10, max_length=2000)


# Identity declarations: not consent terms (they stay out of terms_digest).
RELATIONSHIP_FIELDS = frozenset({"same_person_as", "lookalike_of"})


def _as_utc(value: Any, *, end_of_day: bool) -> Any:
    """Dates become UTC datetimes (valid_until covers the whole day); naive times are UTC."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        t = dt.time(23, 59, 59) if end_of_day else dt.time(0, 0)
        return dt.datetime.combine(value, t, tzinfo=dt.timezone.utc)
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return _as_utc(dt.date.fromisoformat(value.strip()), end_of_day=end_of_day)
        except ValueError:
            return value
    return value


class ConsentManifest(_Strict):
    """One talent's consent, covering the listed portraits (relative to the manifest's folder)."""

    talent: TalentRef
    portraits: list[str] = Field(min_length=1)
    # The agency's own id for this consent record (optional, unique in the catalogue).
    consent_ref: str | None = Field(default=None, min_length=1, max_length=200)
    release_document: str = Field(min_length=1)
    valid_from: dt.datetime
    valid_until: dt.datetime
    scope: Scope
    synthetic_likeness: bool = False
    ai_training: bool = False
    minor: bool = False
    guardian: str | None = Field(default=None, min_length=1, max_length=300)
    signed_by: str = Field(min_length=1, max_length=300)
    # This record and an already catalogued talent (external_ref or id) are one person (e.g. a
    # merged agency record): the portraits join that talent.
    same_person_as: str | None = Field(default=None, min_length=1, max_length=200)
    # Different people whose faces the encoder may confuse with this talent's.
    lookalike_of: list[Lookalike] = Field(default_factory=list, max_length=20)
    notes: str | None = Field(default=None, max_length=MAX_NOTES_CHARS)

    @field_validator("valid_from", mode="before")
    @classmethod
    def _from_utc(cls, value: Any) -> Any:
        return _as_utc(value, end_of_day=False)

    @field_validator("valid_until", mode="before")
    @classmethod
    def _until_utc(cls, value: Any) -> Any:
        return _as_utc(value, end_of_day=True)

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)

    @field_validator("portraits")
    @classmethod
    def _unique_portraits(cls, value: list[str]) -> list[str]:
        if any(not name.strip() for name in value):
            raise ValueError("portrait names must not be empty")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _consistent(self) -> ConsentManifest:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if self.minor and not self.guardian:
            raise ValueError(
                "`guardian` is required when `minor` is true (the parent or legal guardian "
                "who signed the release)"
            )
        self._check_relationships()
        return self

    def _check_relationships(self) -> None:
        own = {str(self.talent.id) if self.talent.id else None, self.talent.external_ref} - {None}
        if self.same_person_as is not None:
            if self.talent.id is not None:
                raise ValueError("`same_person_as` joins a record kept under another reference to "
                                 "a catalogued talent; a talent given by castkeep `id` already is one")
            if self.same_person_as in own:
                raise ValueError("`same_person_as` names this manifest's own talent")
        seen: set[str] = set()
        for item in self.lookalike_of:
            if item.talent in own or item.talent == self.same_person_as:
                raise ValueError(f"`lookalike_of` names {item.talent!r}, which is this person; a "
                                 "lookalike is another person")
            if item.talent in seen:
                raise ValueError(f"`lookalike_of` names {item.talent!r} twice")
            seen.add(item.talent)

    @property
    def relationships_declared(self) -> bool:
        return self.same_person_as is not None or bool(self.lookalike_of)

    def terms_digest(self) -> str:
        """sha256 of the consent's terms (everything but the portrait list and the identity
        declarations), so a re-run or a second manifest with the same terms reuses one consent
        record."""
        data = self.model_dump(mode="json", exclude={"portraits", *RELATIONSHIP_FIELDS})
        return hashlib.sha256(
            json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()


class ConsentBatch(_Strict):
    consents: list[ConsentManifest] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedManifest:
    """A validated manifest and where it came from (``index`` within a batch file)."""

    source: str
    index: int | None
    manifest: ConsentManifest

    @property
    def label(self) -> str:
        return self.source if self.index is None else f"{self.source}[consents.{self.index}]"


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _format_errors(source: str, exc: ValidationError, prefix: tuple[Any, ...] = ()) -> str:
    parts = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see the manifest format)"
        parts.append(f"field `{_field_path(prefix + tuple(err['loc']))}`: {msg}")
    return f"{source}: invalid consent manifest: " + "; ".join(parts)


def parse_manifest_bytes(data: bytes, source: str) -> list[LoadedManifest]:
    """Parse a manifest file's bytes (YAML or JSON; a single manifest or a `consents:` batch).

    `source` names the file in error messages.
    """
    doc = parse_document(data, source, what="consent manifest")
    if not isinstance(doc, dict):
        raise ManifestError(
            f"{source}: a consent manifest must be a mapping (talent, portraits, ...) or a batch "
            "with a `consents:` list"
        )
    if "consents" in doc:
        try:
            batch = ConsentBatch.model_validate(doc)
        except ValidationError as exc:
            raise ManifestError(_format_errors(source, exc)) from exc
        return [LoadedManifest(source, i, m) for i, m in enumerate(batch.consents)]
    try:
        return [LoadedManifest(source, None, ConsentManifest.model_validate(doc))]
    except ValidationError as exc:
        raise ManifestError(_format_errors(source, exc)) from exc


def load_manifests(path: Path) -> list[LoadedManifest]:
    """Load one manifest file from disk; errors name the file and field."""
    return parse_manifest_bytes(read_document(path, what="consent manifest"), str(path))


def is_manifest_name(name: str) -> bool:
    return name.lower().endswith(MANIFEST_SUFFIXES)


@dataclass(frozen=True)
class ConsentTerms:
    """What a consent allows, as the policy evaluates it. Times are aware UTC."""

    id: str
    talent_id: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    channels: tuple[str, ...]
    territories: tuple[str, ...]
    purposes: tuple[str, ...]
    edits: tuple[str, ...]
    synthetic_likeness: bool
    ai_training: bool
    status: str = "active"  # active | revoked | expired
    minor: bool = False
    release_doc_sha256: str | None = None

    @classmethod
    def from_manifest(
        cls, manifest: ConsentManifest, *, consent_id: str = "(new)", talent_id: str = ""
    ) -> ConsentTerms:
        scope = manifest.scope
        return cls(
            id=consent_id,
            talent_id=talent_id or manifest.talent.key,
            valid_from=manifest.valid_from,
            valid_until=manifest.valid_until,
            channels=tuple(scope.channels),
            territories=tuple(scope.territories),
            purposes=tuple(scope.purposes),
            edits=tuple(scope.edits),
            synthetic_likeness=manifest.synthetic_likeness,
            ai_training=manifest.ai_training,
            minor=manifest.minor,
        )

    @classmethod
    def from_row(cls, row: Any) -> ConsentTerms:
        """From a catalogue ``schema.Consent`` row (or anything with the same attributes)."""
        scope = row.scope or {}
        return cls(
            id=str(row.id),
            talent_id=str(row.talent_id),
            valid_from=_aware_utc(row.valid_from),
            valid_until=_aware_utc(row.valid_until),
            channels=tuple(scope.get("channels", ())),
            territories=tuple(scope.get("territories", ())),
            purposes=tuple(scope.get("purposes", ())),
            edits=tuple(scope.get("edits", ())),
            synthetic_likeness=bool(row.synthetic_likeness),
            ai_training=bool(row.ai_training),
            status=row.status,
            minor=bool(row.minor),
            release_doc_sha256=row.release_doc_sha256,
        )

    def scope_summary(self) -> dict[str, list[str]]:
        return {
            "channels": list(self.channels),
            "territories": list(self.territories),
            "purposes": list(self.purposes),
            "edits": list(self.edits),
        }


def _aware_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)
