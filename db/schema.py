"""Catalogue schema (SQLAlchemy 2, typed). The database schema itself is created only by the
Alembic migrations in db/migrations; this module must agree with them (a test checks).

Conventions: ids are UUIDs, times are timezone-aware UTC, content hashes are sha256 hex.
Flexible, evolving detail (scopes, params, quality) lives in JSONB so later features rarely
need a migration.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from castkeep.vocab import WITHDRAWN_ASSET_STATUSES as WITHDRAWN
from castkeep.vocab import AssetStatus, ConsentStatus, Relationship, RequestStatus, Role, values

ASSET_STATUSES = values(AssetStatus)
# Assets that must not be used: `verify` exits 4 for them and `asset export` needs --force.
WITHDRAWN_ASSET_STATUSES = tuple(s.value for s in WITHDRAWN)
CONSENT_STATUSES = values(ConsentStatus)
REQUEST_STATUSES = values(RequestStatus)
LINEAGE_RELATIONSHIPS = values(Relationship)
ROLES = values(Role)

# Deterministic constraint/index names, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _sha256_check(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} ~ '^[0-9a-f]{{64}}$'", name=f"{column}_hex")


def _in_check(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ",".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
        uuid.UUID: UUID(as_uuid=True),
        dt.datetime: DateTime(timezone=True),
    }


class Talent(Base):
    __tablename__ = "talent"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The agency's own reference for the person (unique when given).
    external_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    # PII: stays in the catalogue, never in a manifest or a log line.
    display_name: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class Consent(Base):
    __tablename__ = "consent"
    __table_args__ = (
        _in_check("status", CONSENT_STATUSES, "status"),
        _sha256_check("release_doc_sha256"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    talent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("talent.id"), index=True)
    external_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    release_doc_sha256: Mapped[str] = mapped_column(String(64))
    release_doc_key: Mapped[str] = mapped_column(String(500))
    valid_from: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime] = mapped_column(index=True)
    # {"channels": [...], "territories": [...], "purposes": [...], "edits": [...]}
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    synthetic_likeness: Mapped[bool] = mapped_column(Boolean, default=False)
    ai_training: Mapped[bool] = mapped_column(Boolean, default=False)
    minor: Mapped[bool] = mapped_column(Boolean, default=False)
    guardian: Mapped[str | None] = mapped_column(String(300))
    signed_by: Mapped[str | None] = mapped_column(String(300))
    notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)
    # sha256 of the canonical manifest record this row came from (idempotent re-ingest).
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class ConsentEvent(Base):
    """Append-only history of a consent (granted, revoked, expired, ...)."""

    __tablename__ = "consent_event"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ReferencePortrait(Base):
    __tablename__ = "reference_portrait"
    __table_args__ = (_sha256_check("sha256"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    talent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("talent.id"), index=True)
    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    object_key: Mapped[str] = mapped_column(String(500))
    media_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    source_name: Mapped[str | None] = mapped_column(String(500))
    # {"face_px": ..., "sharpness": ..., "det_score": ..., "yaw": ..., "roll": ...}
    quality: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class AssetRequest(Base):
    __tablename__ = "asset_request"
    __table_args__ = (_in_check("status", REQUEST_STATUSES, "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign: Mapped[str] = mapped_column(String(300))
    requester: Mapped[str] = mapped_column(String(300))
    channel: Mapped[str] = mapped_column(String(50))
    territory: Mapped[str] = mapped_column(String(10))
    purpose: Mapped[str] = mapped_column(String(50))
    publish_date: Mapped[dt.date] = mapped_column(Date)
    # The validated request document, as submitted.
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    spec_sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(30), default="received", index=True)
    refusals: Mapped[list[Any]] = mapped_column(default=list)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    # Who submitted it: the signed-in user (web/API) or the OS user (CLI); `requester` is a
    # contact field of the document.
    submitted_by: Mapped[str | None] = mapped_column(String(200), index=True)
    # The submitter's team when submitted through the API (requesters see their team's requests).
    team: Mapped[str | None] = mapped_column(String(100), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now(), onupdate=utcnow
    )


class Generation(Base):
    """One engine call: what ran, with which weights, seed and parameters, on what device."""

    __tablename__ = "generation"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("asset_request.id"), index=True)
    variant: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    seed: Mapped[int] = mapped_column(BigInteger)
    engine: Mapped[str] = mapped_column(String(100))
    engine_version: Mapped[str] = mapped_column(String(100))
    model_hashes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    device: Mapped[str] = mapped_column(String(100))
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    licence_id: Mapped[str | None] = mapped_column(String(200))
    passed: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class Asset(Base):
    __tablename__ = "asset"
    __table_args__ = (
        _in_check("status", ASSET_STATUSES, "status"),
        _sha256_check("sha256"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("asset_request.id"), index=True)
    generation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("generation.id"))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    object_key: Mapped[str] = mapped_column(String(500))
    media_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="candidate", index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The recorded use this asset was made for: {"channel","territory","purpose","edits","publish_date"}
    use: Mapped[dict[str, Any]] = mapped_column(default=dict)
    manifest_label: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now(), onupdate=utcnow
    )


class Face(Base):
    """A detected face with its embedding. Exactly one owner: a reference portrait or an asset.
    Embeddings carry their encoder; vectors of different encoders are never compared.

    Nearest-neighbour search uses partial HNSW (cosine) indexes on a cast expression, created by
    the migrations (not declared here, see FACE_HNSW_INDEXES and FACE_HNSW_TYPE). To use one, a
    query must filter on the index's predicate and order by the same cast, e.g. for dlib::

        dist = Face.embedding.cast(HALFVEC(128)).cosine_distance(query)
        select(Face).where(Face.encoder == "dlib-resnet-v1", Face.dim == 128).order_by(dist)

    (db/face_search.search does this, and returns exact distances on the stored vector.)

    and for 512-d ArcFace encoders filter ``Face.dim == 512`` (plus the encoder name).
    """

    __tablename__ = "face"
    __table_args__ = (
        CheckConstraint("(reference_portrait_id IS NULL) <> (asset_id IS NULL)", name="one_owner"),
        CheckConstraint("vector_dims(embedding) = dim", name="dim_matches"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reference_portrait_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reference_portrait.id"), index=True
    )
    asset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("asset.id"), index=True)
    face_index: Mapped[int] = mapped_column(Integer, default=0)
    encoder: Mapped[str] = mapped_column(String(100), index=True)
    encoder_version: Mapped[str] = mapped_column(String(100))
    dim: Mapped[int] = mapped_column(Integer)
    # Dimension-free column; per-encoder HNSW indexes cast to vector(dim) (see migrations).
    embedding: Mapped[Any] = mapped_column(Vector())
    box: Mapped[list[Any]] = mapped_column(default=list)  # [x0, y0, x1, y1] in original pixels
    landmarks: Mapped[list[Any]] = mapped_column(default=list)  # 5 x [x, y]
    quality: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class Lineage(Base):
    """What an asset was derived from: reference portraits (under which consent) or parent assets."""

    __tablename__ = "lineage"
    __table_args__ = (
        _in_check("relationship", LINEAGE_RELATIONSHIPS, "relationship"),
        CheckConstraint(
            "reference_portrait_id IS NOT NULL OR parent_asset_id IS NOT NULL", name="has_source"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("asset.id"), index=True)
    reference_portrait_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reference_portrait.id"), index=True
    )
    parent_asset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("asset.id"))
    talent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("talent.id"), index=True)
    consent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consent.id"), index=True)
    relationship: Mapped[str] = mapped_column(String(30))  # parentOf | componentOf


class Score(Base):
    __tablename__ = "score"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    generation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("generation.id"), index=True)
    asset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("asset.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # identity | lighting | camera | quality
    talent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("talent.id"))
    face_index: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AuditEvent(Base):
    """Append-only, hash-chained: hash = sha256(prev_hash + canonical payload). An edited or
    deleted row breaks the chain at that row (db/audit_log.py verifies)."""

    __tablename__ = "audit_event"
    __table_args__ = (_sha256_check("prev_hash"), _sha256_check("hash"))

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(unique=True, default=new_id)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(60), index=True)
    entity_type: Mapped[str | None] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AppUser(Base):
    """A local account: roles from castkeep.vocab.Role, an argon2 password hash (never the
    password), and a disabled flag (accounts are disabled, not deleted: audit events name them)."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(
            "roles <@ ARRAY[" + ",".join(f"'{r}'" for r in ROLES) + "]::varchar[]",
            name="roles_known",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    team: Mapped[str] = mapped_column(String(100), default="default")
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    password_hash: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class ApiToken(Base):
    """An API token: only its sha256 is stored; it acts as its user with the user's roles."""

    __tablename__ = "api_token"
    __table_args__ = (_sha256_check("token_sha256"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("app_user.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime | None]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


# (index name, dim, predicate): partial HNSW cosine indexes on (embedding::FACE_HNSW_TYPE(dim)).
FACE_HNSW_INDEXES = (
    ("ix_face_embedding_dlib_hnsw", 128, "encoder = 'dlib-resnet-v1'"),
    ("ix_face_embedding_512_hnsw", 512, "dim = 512"),
)
# Their cast/opclass ((embedding::{type}(dim)) {type}_cosine_ops) and build options, as the
# newest migration touching them (0005) sets them; face_search orders by the same cast.
FACE_HNSW_TYPE = "halfvec"
FACE_HNSW_OPTIONS = {"m": 32, "ef_construction": 64}


# ---- publication register and takedowns (0003) ----------------------------------------------

TAKEDOWN_STATUSES = ("open", "done")


class Placement(Base):
    """Where a published asset went live: channel, URL, territory and, optionally, until when."""

    __tablename__ = "placement"
    __table_args__ = (
        CheckConstraint("url ~ '^https?://'", name="url_http"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("asset.id"), index=True)
    channel: Mapped[str] = mapped_column(String(50))
    url: Mapped[str] = mapped_column(String(2000))
    territory: Mapped[str] = mapped_column(String(10))
    until: Mapped[dt.date | None] = mapped_column(Date)
    published_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class Takedown(Base):
    """A placement to take down because its asset was quarantined (revocation, expiry); open
    until someone records it done. One per placement: a repeated cascade opens none again."""

    __tablename__ = "takedown"
    __table_args__ = (_in_check("status", TAKEDOWN_STATUSES, "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    placement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("placement.id"), unique=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("asset.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="open", index=True)
    reason: Mapped[str] = mapped_column(Text)
    opened_by: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    done_by: Mapped[str | None] = mapped_column(String(200))
    done_at: Mapped[dt.datetime | None]
    note: Mapped[str | None] = mapped_column(Text)


# ---- soft bindings (0004) -------------------------------------------------------------------


class SoftBinding(Base):
    """The key an asset's invisible watermark carries (provenance/watermark.py), declared in its
    manifest's c2pa.soft-binding assertion: it leads a stripped or recompressed copy back here.
    The key is random and unique per algorithm, so a copy names one asset only."""

    __tablename__ = "soft_binding"
    __table_args__ = (
        UniqueConstraint("alg", "value", name="uq_soft_binding_alg_value"),
        CheckConstraint("value >= 0", name="value_unsigned"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("asset.id"), index=True)
    alg: Mapped[str] = mapped_column(String(100))
    value: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
