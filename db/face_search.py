"""Face embeddings in pgvector: storing faces and nearest-neighbour search.

Search uses the per-encoder partial HNSW cosine index created by the migrations
(schema.FACE_HNSW_INDEXES): the query filters on the encoder name and dimension as literals (so the
planner can prove the index predicate) and orders by the index's own cast, `embedding::halfvec(dim)`
(schema.FACE_HNSW_TYPE; half precision halves the index and kept recall, see
benchmarks/results/faces_search.md). Ranking is by cosine distance; each hit reports its distances
computed exactly on the stored vector, cosine and the encoder's own metric (dlib: euclidean
between raw descriptors, what its 0.6 threshold means).
Vectors of different encoders are never compared: the encoder filter is mandatory.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from castkeep.db import schema
from castkeep.errors import CastkeepError, EncoderMismatchError
from castkeep.models.faces.face_types import DetectedFace

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,99}$")
# Candidate list size for HNSW (pgvector's default is 40); larger = better recall, slower. 64 on
# the 0005 index: recall@10 0.966 at p50 7.7 ms with 1M faces on 2 cores (results/faces_search.md).
DEFAULT_EF_SEARCH = 64


@dataclass(frozen=True)
class FaceHit:
    face_id: uuid.UUID
    distance: float  # in the encoder's metric (euclidean for dlib, cosine distance otherwise)
    reference_portrait_id: uuid.UUID | None
    asset_id: uuid.UUID | None
    talent_id: uuid.UUID | None  # through the reference portrait; None for asset faces
    similarity: float = 0.0  # cosine similarity
    face_index: int = 0
    encoder_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "face_id": str(self.face_id),
            "distance": round(self.distance, 6),
            "similarity": round(self.similarity, 6),
            "reference_portrait_id": _s(self.reference_portrait_id),
            "asset_id": _s(self.asset_id),
            "talent_id": _s(self.talent_id),
            "face_index": self.face_index,
            "encoder_version": self.encoder_version,
        }


def metric_for(encoder: str) -> str:
    """The distance a stored encoder name is compared by (dlib: euclidean; ArcFace: cosine)."""
    return "euclidean" if encoder.startswith("dlib-") else "cosine"


def add_face(
    session: Session,
    face: DetectedFace,
    *,
    reference_portrait_id: uuid.UUID | None = None,
    asset_id: uuid.UUID | None = None,
    face_index: int = 0,
) -> schema.Face:
    """Store one face of a reference portrait or an asset. Idempotent: the same owner, face index
    and encoder give back the row already stored."""
    if (reference_portrait_id is None) == (asset_id is None):
        raise CastkeepError("a face belongs to exactly one owner: give reference_portrait_id or asset_id")
    if face.embedding is None:
        raise EncoderMismatchError("the face has no embedding; detect it with embed=True before storing")
    vec = np.asarray(face.embedding, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(vec)):
        raise EncoderMismatchError("the face embedding holds NaN or infinite values")
    _check_index_range(vec, "the face embedding")
    existing = session.scalars(
        sa.select(schema.Face).where(
            schema.Face.reference_portrait_id == reference_portrait_id
            if reference_portrait_id is not None
            else schema.Face.asset_id == asset_id,
            schema.Face.face_index == face_index,
            schema.Face.encoder == face.encoder,
            schema.Face.encoder_version == face.encoder_version,
        )
    ).first()
    if existing is not None:
        return existing
    row = schema.Face(
        reference_portrait_id=reference_portrait_id,
        asset_id=asset_id,
        face_index=face_index,
        encoder=face.encoder,
        encoder_version=face.encoder_version,
        dim=int(vec.shape[0]),
        embedding=vec,
        box=[round(float(v), 2) for v in face.box],
        landmarks=[[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks],
        quality=face.quality.as_dict(),
    )
    session.add(row)
    session.flush()
    return row


def search(
    session: Session,
    embedding: np.ndarray | DetectedFace,
    *,
    encoder: str | None = None,
    k: int = 10,
    encoder_version: str | None = None,
    metric: str | None = None,
    exact: bool = False,
    ef_search: int = DEFAULT_EF_SEARCH,
    index_type: str | None = None,
) -> list[FaceHit]:
    """The k stored faces nearest to `embedding` among faces of the same encoder, nearest first.

    A DetectedFace supplies its own encoder and version. `exact=True` scans every row instead of
    the HNSW index (ground truth; slow on large catalogues). `index_type` is for benchmarks
    comparing index casts (default: the migrated one)."""
    if isinstance(embedding, DetectedFace):
        face = embedding
        if encoder is not None and encoder != face.encoder:
            raise EncoderMismatchError(f"face was encoded by {face.encoder}, not {encoder}")
        encoder, encoder_version = face.encoder, encoder_version or face.encoder_version
        if face.embedding is None:
            raise EncoderMismatchError("the face has no embedding; detect it with embed=True")
        embedding = face.embedding
    if not encoder:
        raise EncoderMismatchError("search needs the encoder name: vectors of different encoders are never compared")
    if not _SAFE_NAME.match(encoder):
        raise CastkeepError(f"invalid encoder name {encoder!r}")
    if k < 1:
        raise CastkeepError("k must be at least 1")
    q = np.asarray(embedding, dtype=np.float32).reshape(-1)
    dim = int(q.shape[0])
    metric = metric or metric_for(encoder)
    if not exact:
        _check_index_range(q, "the query embedding")
    qtext = "[" + ",".join(repr(float(v)) for v in q) + "]"

    sql = search_sql(encoder, dim, exact=exact, with_version=bool(encoder_version), index_type=index_type)
    params: dict[str, Any] = {"q": qtext, "k": int(k)}
    if encoder_version:
        params["ver"] = encoder_version
    if not exact:
        # Transaction-local: the candidate list must hold at least k rows; iterative scans
        # (pgvector >= 0.8) keep filling it when the version filter drops candidates.
        session.execute(sa.text("SELECT set_config('hnsw.ef_search', :v, true)"), {"v": str(max(ef_search, k))})
        if encoder_version and _has_iterative_scan(session):
            session.execute(sa.text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)"))
    rows = session.execute(sa.text(sql), params).all()
    hits = []
    for r in rows:
        cos_dist, l2 = float(r.cos_dist), float(r.l2_dist)
        hits.append(
            FaceHit(
                face_id=r.id,
                distance=l2 if metric == "euclidean" else cos_dist,
                reference_portrait_id=r.reference_portrait_id,
                asset_id=r.asset_id,
                talent_id=r.talent_id,
                similarity=1.0 - cos_dist,
                face_index=r.face_index,
                encoder_version=r.encoder_version,
            )
        )
    return hits


@dataclass(frozen=True)
class TalentMatch:
    """A talent whose reference face is near a query face (its nearest reference)."""

    talent_id: uuid.UUID
    external_ref: str | None
    reference_portrait_id: uuid.UUID
    distance: float  # in the encoder's metric

    @property
    def label(self) -> str:
        return self.external_ref or str(self.talent_id)


def nearest_talents(
    session: Session,
    embedding: np.ndarray,
    *,
    encoder: str,
    metric: str | None = None,
    within: float | None = None,
    exclude_talents: tuple[uuid.UUID, ...] = (),
    only_talents: tuple[uuid.UUID, ...] | None = None,
    limit: int = 10,
) -> list[TalentMatch]:
    """Talents ranked by their reference face nearest to `embedding` (faces of `encoder` only),
    nearest first, one row per talent; only those at most `within` away when given, none of
    `exclude_talents` and, when given, only `only_talents`. Every
    reference counts, whatever its consent's state (revoked and expired included). An exact scan
    of the reference faces: no index recall to miss a match."""
    vec = np.asarray(embedding, dtype=np.float32).reshape(-1)
    metric = metric or metric_for(encoder)
    rp = schema.ReferencePortrait
    dist = (schema.Face.embedding.l2_distance(vec) if metric == "euclidean"
            else schema.Face.embedding.cosine_distance(vec))
    per_talent = (
        sa.select(rp.talent_id, rp.id.label("reference_portrait_id"), dist.label("distance"))
        .join(rp, schema.Face.reference_portrait_id == rp.id)
        .where(schema.Face.encoder == encoder, schema.Face.dim == int(vec.shape[0]))
        .distinct(rp.talent_id)
        .order_by(rp.talent_id, dist)
    )
    if exclude_talents:
        per_talent = per_talent.where(rp.talent_id.not_in(list(exclude_talents)))
    if only_talents is not None:
        per_talent = per_talent.where(rp.talent_id.in_(list(only_talents)))
    sub = per_talent.subquery()
    query = (sa.select(sub.c.talent_id, schema.Talent.external_ref, sub.c.reference_portrait_id,
                       sub.c.distance)
             .join(schema.Talent, schema.Talent.id == sub.c.talent_id)
             .order_by(sub.c.distance, sub.c.talent_id).limit(int(limit)))
    if within is not None:
        query = query.where(sub.c.distance <= float(within))
    return [TalentMatch(r.talent_id, r.external_ref, r.reference_portrait_id, float(r.distance))
            for r in session.execute(query)]


def lock_identities(session: Session, encoder: str) -> None:
    """Serialise, until the transaction ends, every transaction that checks a new reference face
    of `encoder` against the other talents and inserts it: two concurrent ingests cannot both
    accept one face as two people."""
    session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                    {"k": f"identity:{encoder}"})


def search_sql(encoder: str, dim: int, *, exact: bool = False, with_version: bool = False,
               index_type: str | None = None) -> str:
    """The search statement (parameters :q, :k and, with_version, :ver). Encoder and dim are
    literals (the encoder name validated), not parameters, so the planner can prove the partial
    index predicate. The approximate path orders by the index's own cast (`index_type`: the
    migrated schema.FACE_HNSW_TYPE unless a benchmark compares another); the distances returned
    are always exact, computed on the stored vector for the hits only."""
    if not _SAFE_NAME.match(encoder):
        raise CastkeepError(f"invalid encoder name {encoder!r}")
    index_type = index_type or schema.FACE_HNSW_TYPE
    if index_type not in ("vector", "halfvec"):
        raise CastkeepError(f"unknown index type {index_type!r}: vector or halfvec")
    dim = int(dim)
    vec = f"(f.embedding::vector({dim}))"
    if exact:
        order = "f.embedding <=> CAST(:q AS vector)"
    else:
        order = f"(f.embedding::{index_type}({dim})) <=> CAST(:q AS {index_type}({dim}))"
    version_filter = "AND f.encoder_version = :ver" if with_version else ""
    return f"""
        SELECT h.id, h.reference_portrait_id, h.asset_id, rp.talent_id, h.face_index,
               h.encoder_version, h.cos_dist, h.l2_dist
        FROM (
            SELECT f.id, f.reference_portrait_id, f.asset_id, f.face_index, f.encoder_version,
                   {vec} <=> CAST(:q AS vector({dim})) AS cos_dist,
                   {vec} <-> CAST(:q AS vector({dim})) AS l2_dist
            FROM face f
            WHERE f.encoder = '{encoder}' AND f.dim = {dim} {version_filter}
            ORDER BY {order}
            LIMIT :k
        ) h
        LEFT JOIN reference_portrait rp ON rp.id = h.reference_portrait_id
        ORDER BY h.cos_dist, h.id
    """


_HALF_MAX = 65504.0  # the largest finite half-precision value


def _check_index_range(vec: np.ndarray, what: str) -> None:
    """The index casts embeddings to half precision: a value beyond its range would fail the insert
    or the search with a database error."""
    if schema.FACE_HNSW_TYPE == "halfvec" and vec.size and float(np.max(np.abs(vec))) > _HALF_MAX:
        raise EncoderMismatchError(
            f"{what} holds values beyond half precision (|x| > {_HALF_MAX:g}), which the search "
            "index stores; normalise the encoder's output"
        )


_ITERATIVE: dict[int, bool] = {}


def _has_iterative_scan(session: Session) -> bool:
    key = id(session.get_bind())
    if key not in _ITERATIVE:
        v = session.execute(sa.text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
        parts = tuple(int(p) for p in re.findall(r"\d+", v or "0")[:2])
        _ITERATIVE[key] = parts >= (0, 8)
    return _ITERATIVE[key]


def _s(v: uuid.UUID | None) -> str | None:
    return None if v is None else str(v)
