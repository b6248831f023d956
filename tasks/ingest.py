"""Ingest steps: list a source, plan portraits against their consent manifests, and ingest each
portrait (decode, dedup, face check, embed, mislabel guard, store, catalogue) exactly once.

The plain functions do the work; the Prefect tasks at the bottom are thin wrappers that add
retries. Work is chunked: one task run covers many portraits, not one each.

Safety rules: file names come only from the source's own listing. A name written in a manifest is
looked up in that listing, never joined onto a path, so `../`, absolute paths and odd characters
cannot reach outside the source. Every portrait is one database transaction (talent, consent,
reference, face and audit rows together); objects are content addressed and stored first, so a
crash leaves at most an unreferenced object that a re-run reuses or `castkeep gc` removes.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import logging
import mimetypes
import posixpath
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from castkeep.db import catalogue
from castkeep.db.catalogue import REFERENCES_PREFIX, RELEASE_DOCS_PREFIX, STORED_AT_META
from castkeep.errors import (
    CastkeepError,
    ConsentError,
    DatabaseError,
    ManifestError,
    ObjectStoreError,
)
from castkeep.models.faces.face_types import DetectedFace
from castkeep.models.imaging import DEFAULT_MAX_PIXELS, decode_image
from castkeep.provenance.consent import (
    ConsentManifest,
    ConsentTerms,
    LoadedManifest,
    is_manifest_name,
    parse_manifest_bytes,
)
from castkeep.provenance.policy import validity_reasons
from castkeep.tasks.ingest_sources import Source
from castkeep.tasks.identity_collisions import (
    check_identity,
    existing_talent,
    lock_identities,
    mislabel_guard,
    record_declarations,
)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")
_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tif"}

Status = Literal["accepted", "duplicate", "rejected"]

# Set by a caller (the CLI) to follow progress: called with (done, total, outcome or None).
PROGRESS: contextvars.ContextVar[Callable[[int, int, Outcome | None], None] | None] = (
    contextvars.ContextVar("castkeep_ingest_progress", default=None)
)


# ---------------------------------------------------------------- plan


@dataclass(frozen=True)
class Rejection:
    file: str
    reason: str


@dataclass(frozen=True)
class PortraitJob:
    file: str  # relative path in the source, from its listing
    manifest: ConsentManifest
    manifest_label: str
    release_doc: str  # relative path in the source, from its listing


@dataclass
class IngestPlan:
    jobs: list[PortraitJob] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def resolve_name(folder: str, entry: str, listing: dict[str, str]) -> tuple[str | None, str]:
    """Look a manifest's file entry up in the source listing: (relative path, "") or
    (None, reason). The entry is never used as a path itself."""
    raw = entry.replace("\\", "/")
    parts = raw.split("/")
    if raw.startswith("/") or ".." in parts or (len(raw) > 1 and raw[1] == ":"):
        return None, (
            f"{entry!r} escapes the manifest's folder; name files relative to the manifest's "
            "folder, without '..' or absolute paths"
        )
    parts = [p for p in parts if p not in ("", ".")]
    if not parts:
        return None, f"{entry!r} is not a file name"
    rel = _nfc(posixpath.join(folder, *parts) if folder else posixpath.join(*parts))
    found = listing.get(rel)
    if found is None:
        return None, f"{entry!r} does not exist in the manifest's folder"
    return found, ""


def plan_ingest(source: Source, *, at: dt.datetime) -> IngestPlan:
    """Match portraits to manifests. Manifest errors, missing or escaping names, consent not in
    force at `at`, portraits named by two manifests (which consent applies would be a guess)
    and portraits no manifest names become rejections; the rest become jobs."""
    files = source.list()
    listing = {_nfc(f): f for f in files}
    plan = IngestPlan()
    # portrait -> (manifest label, job or rejection) for every manifest naming it
    claims: dict[str, list[tuple[str, PortraitJob | Rejection]]] = {}
    named_docs: set[str] = set()
    for name in files:
        if not is_manifest_name(name):
            continue
        try:
            loaded = parse_manifest_bytes(source.read(name), name)
        except ManifestError as exc:
            plan.rejected.append(Rejection(name, str(exc)))
            continue
        for item in loaded:
            _plan_manifest(item, listing, plan, claims, named_docs, at)
    for rel, entries in claims.items():
        labels = list(dict.fromkeys(label for label, _ in entries))
        if len(labels) > 1:
            plan.rejected.append(Rejection(
                rel, f"named by {' and '.join(labels)}; a portrait needs exactly one consent "
                "manifest"))
            continue
        outcome = entries[0][1]
        if isinstance(outcome, PortraitJob):
            plan.jobs.append(outcome)
        else:
            plan.rejected.append(outcome)
    # Manifests that declare an identity relationship go last, so the talents they name can be
    # catalogued earlier in the same run.
    plan.jobs.sort(key=lambda job: job.manifest.relationships_declared)
    for name in files:
        if name.lower().endswith(IMAGE_SUFFIXES) and name not in claims and name not in named_docs:
            plan.rejected.append(
                Rejection(name, "no valid consent manifest names this portrait; add it to one")
            )
    return plan


def _plan_manifest(
    item: LoadedManifest,
    listing: dict[str, str],
    plan: IngestPlan,
    claims: dict[str, list[tuple[str, PortraitJob | Rejection]]],
    named_docs: set[str],
    at: dt.datetime,
) -> None:
    m = item.manifest
    folder = posixpath.dirname(item.source)
    doc, doc_reason = resolve_name(folder, m.release_document, listing)
    if doc is not None:
        named_docs.add(doc)
    terms = ConsentTerms.from_manifest(m, consent_id=m.consent_ref or item.label)
    not_in_force = validity_reasons(terms, at)
    for entry in m.portraits:
        rel, reason = resolve_name(folder, entry, listing)
        if rel is None:
            shown = posixpath.join(folder, entry) if folder else entry
            plan.rejected.append(Rejection(shown, f"named by {item.label}: {reason}"))
            continue
        claim: PortraitJob | Rejection
        if doc is None:
            claim = Rejection(rel, f"release document of {item.label}: {doc_reason}")
        elif not_in_force:
            claim = Rejection(
                rel, f"consent of {item.label} is not in force: " + "; ".join(not_in_force))
        else:
            claim = PortraitJob(rel, m, item.label, doc)
        claims.setdefault(rel, []).append((item.label, claim))


# ---------------------------------------------------------------- one portrait


@dataclass(frozen=True)
class IngestOptions:
    actor: str
    run_started: dt.datetime
    # Recorded with each reference this run adds: a retried chunk reports its own commits as
    # accepted, and another run's (a concurrent ingest of the same folder) as duplicates.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_face_px: int = 80
    min_sharpness: float = 25.0


@dataclass(frozen=True)
class Outcome:
    file: str
    status: Status
    reason: str | None = None
    sha256: str | None = None
    reference_id: str | None = None
    talent_id: str | None = None


@dataclass
class IngestContext:
    """What ingesting needs, passed to every chunk (plain objects, no settings)."""

    source: Source
    sessions: sessionmaker[Session]
    store: Any  # ObjectStore (routes restricted/ prefixes to its restricted bucket)
    encoder: Any  # FaceEncoder, loaded
    options: IngestOptions
    _docs: dict[str, Any] = field(default_factory=dict)  # release doc rel -> StoredObject


class _Reject(Exception):
    """A portrait is rejected (internal control flow; becomes an Outcome)."""


def ingest_portrait(job: PortraitJob, ctx: IngestContext) -> Outcome:
    """Ingest one portrait; expected failures are returned as rejections, never raised."""
    prepared = _guarded(job, _prepare, job, ctx)
    if isinstance(prepared, Outcome):
        return prepared
    return _guarded(job, _commit, job, prepared, ctx)


def _guarded(job: PortraitJob, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (ObjectStoreError, DatabaseError):
        raise  # infrastructure, not the portrait: the chunk task retries
    except (_Reject, CastkeepError) as exc:
        return Outcome(job.file, "rejected", str(exc))


@dataclass(frozen=True)
class _Prepared:
    """A portrait that passed the checks that need no catalogue writes."""

    data: bytes
    sha256: str
    width: int
    height: int
    media_type: str
    ext: str
    face: DetectedFace


def _prepare(job: PortraitJob, ctx: IngestContext) -> _Prepared | Outcome:
    """Read, hash, skip known bytes, decode, find exactly one good face and embed it. Touches no
    shared state, so the next portrait can be prepared while the previous one is committed."""
    data = ctx.source.read(job.file)
    sha = hashlib.sha256(data).hexdigest()
    with ctx.sessions() as session:
        existing = catalogue.reference_by_sha256(session, sha)
        if existing is not None:
            return _already(job, existing, ctx)
    decoded = decode_image(data, max_pixels=ctx.options.max_pixels)
    face = _one_good_face(ctx, decoded.rgb)
    return _Prepared(data, sha, decoded.width, decoded.height, decoded.media_type,
                     _EXT.get(decoded.format, "bin"), face)


def _commit(job: PortraitJob, prep: _Prepared, ctx: IngestContext) -> Outcome:
    """Mislabel guard and identity pre-check, then objects, then every row in one transaction
    (where the identity check that decides runs again, under a lock)."""
    opts = ctx.options
    info = ctx.encoder.info
    with ctx.sessions() as session:
        # Again: the same bytes may have been committed under another name since _prepare.
        existing = catalogue.reference_by_sha256(session, prep.sha256)
        if existing is not None:
            return _already(job, existing, ctx)
        joined = mislabel_guard(session, job.manifest, prep.face, info)
        check_identity(session, job.manifest, prep.face, info, joined.id if joined else None)

    doc = _store_release_doc(job, ctx)
    stored = ctx.store.put_bytes(prep.data, prefix=REFERENCES_PREFIX, ext=prep.ext,
                                 media_type=prep.media_type, metadata=_stamp())
    try:
        with ctx.sessions.begin() as session:
            m = job.manifest
            lock_identities(session, prep.face.encoder)
            existing = catalogue.reference_by_sha256(session, prep.sha256)
            if existing is not None:  # committed by a concurrent run while we waited
                return _already(job, existing, ctx)
            talent = existing_talent(session, m) if m.same_person_as else None
            if talent is None:
                talent = catalogue.upsert_talent(
                    session, display_name=m.talent.display_name,
                    external_ref=m.talent.external_ref, talent_id=m.talent.id, actor=opts.actor)
            declarations = check_identity(session, m, prep.face, info, talent.id)
            consent = catalogue.get_or_create_consent(
                session, talent_id=talent.id, manifest=m, release_doc_sha256=doc.sha256,
                release_doc_key=doc.key, actor=opts.actor)
            if consent.status != "active":
                raise ConsentError(
                    f"consent {consent.id} of {job.manifest_label} is {consent.status}; "
                    "a new release is needed")
            ref = catalogue.add_reference(
                session, talent_id=talent.id, consent_id=consent.id, sha256=prep.sha256,
                object_key=stored.key, media_type=prep.media_type, width=prep.width,
                height=prep.height, face=prep.face, source_name=job.file, actor=opts.actor,
                ingest_run=opts.run_id)
            record_declarations(session, declarations, reference_id=ref.id, talent_id=talent.id,
                                manifest=m, actor=opts.actor)
            ref_id, talent_id = str(ref.id), str(talent.id)
    except IntegrityError:
        # Another ingest committed the same bytes between our check and our insert.
        with ctx.sessions() as session:
            existing = catalogue.reference_by_sha256(session, prep.sha256)
        if existing is None:
            raise
        return _already(job, existing, ctx)
    # `castkeep gc` may have removed an orphan with these bytes after our put (a re-used object
    # keeps its first, old stamp): put it back so the new row never points at nothing.
    if not ctx.store.exists(stored.key):
        ctx.store.put_bytes(prep.data, prefix=REFERENCES_PREFIX, ext=prep.ext,
                            media_type=prep.media_type, metadata=_stamp())
    if not ctx.store.exists(doc.key):
        ctx._docs.pop(job.release_doc, None)
        _store_release_doc(job, ctx)
    return Outcome(job.file, "accepted", None, prep.sha256, ref_id, talent_id)


def _stamp() -> dict[str, str]:
    return {STORED_AT_META: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def _already(job: PortraitJob, existing: Any, ctx: IngestContext) -> Outcome:
    """Same bytes are already catalogued: a duplicate, unless this same run wrote them under this
    name (a retried chunk), which is this run's acceptance. The catalogue says which run added
    them; a concurrent run of the same folder reports them as duplicates."""
    if existing.source_name == job.file:
        with ctx.sessions() as session:
            mine = catalogue.added_by_ingest_run(session, existing.id, ctx.options.run_id)
        if mine:
            return Outcome(job.file, "accepted", None, existing.sha256, str(existing.id),
                           str(existing.talent_id))
    return Outcome(
        job.file, "duplicate",
        f"same bytes as reference {existing.id} ({existing.source_name or 'unnamed'})",
        existing.sha256, str(existing.id), str(existing.talent_id))


def _one_good_face(ctx: IngestContext, rgb: Any) -> DetectedFace:
    opts = ctx.options
    faces = ctx.encoder.detect(rgb, embed=True)
    if not faces:
        raise _Reject("no face found; a reference portrait must show one clear, frontal face")
    if len(faces) > 1:
        raise _Reject(
            f"{len(faces)} faces found; a reference portrait must show exactly one person")
    face = faces[0]
    q = face.quality
    if q.face_px < opts.min_face_px:
        raise _Reject(
            f"face is {q.face_px} px, below the minimum of {opts.min_face_px} px; use a larger "
            "or closer portrait")
    if q.sharpness < opts.min_sharpness:
        raise _Reject(
            f"face is too blurred (sharpness {q.sharpness:.1f} < {opts.min_sharpness:.1f}); use "
            "a sharper portrait")
    if face.embedding is None:
        raise _Reject("the encoder returned no embedding for the face")
    return face


def _store_release_doc(job: PortraitJob, ctx: IngestContext) -> Any:
    doc = ctx._docs.get(job.release_doc)
    if doc is None:
        data = ctx.source.read(job.release_doc)
        ext = posixpath.splitext(job.release_doc)[1].lstrip(".").lower() or "bin"
        if not ext.isalnum() or len(ext) > 8:
            ext = "bin"
        media_type = mimetypes.guess_type(f"x.{ext}")[0] or "application/octet-stream"
        doc = ctx.store.put_bytes(data, prefix=RELEASE_DOCS_PREFIX, ext=ext,
                                  media_type=media_type, metadata=_stamp())
        ctx._docs[job.release_doc] = doc
    return doc


def ingest_jobs(jobs: Sequence[PortraitJob], ctx: IngestContext, *, done: int = 0,
                total: int = 0) -> list[Outcome]:
    """Ingest portraits in order, reporting progress after each. The next portrait is decoded
    and embedded on a helper thread while the current one is checked and committed (commits
    stay in order, so the mislabel guard sees every earlier acceptance)."""
    progress = PROGRESS.get()
    out: list[Outcome] = []
    if not jobs:
        return out
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="castkeep-prepare") as pool:
        pending = pool.submit(_guarded, jobs[0], _prepare, jobs[0], ctx)
        for i, job in enumerate(jobs):
            prepared = pending.result()
            if i + 1 < len(jobs):
                pending = pool.submit(_guarded, jobs[i + 1], _prepare, jobs[i + 1], ctx)
            if isinstance(prepared, Outcome):
                outcome = prepared
            else:
                outcome = _guarded(job, _commit, job, prepared, ctx)
            log.debug("%s: %s %s", job.file, outcome.status, outcome.reason or "")
            out.append(outcome)
            if progress is not None:
                progress(done + i + 1, total, outcome)
    return out


def chunks(items: Sequence[PortraitJob], size: int) -> Iterator[list[PortraitJob]]:
    for start in range(0, len(items), max(1, size)):
        yield list(items[start:start + size])


# ---------------------------------------------------------------- result


@dataclass(frozen=True)
class IngestResult:
    accepted: list[Outcome]
    duplicates: list[Outcome]
    rejected: list[Outcome]

    @classmethod
    def collect(cls, outcomes: Sequence[Outcome], rejections: Sequence[Rejection]) -> IngestResult:
        rejected = [o for o in outcomes if o.status == "rejected"]
        rejected += [Outcome(r.file, "rejected", r.reason) for r in rejections]
        return cls(
            accepted=[o for o in outcomes if o.status == "accepted"],
            duplicates=[o for o in outcomes if o.status == "duplicate"],
            rejected=sorted(rejected, key=lambda o: o.file),
        )

    def summary(self) -> dict[str, Any]:
        """The CLI's --json shape."""
        return {
            "accepted": len(self.accepted),
            "duplicates": len(self.duplicates),
            "rejected": [{"file": o.file, "reason": o.reason or ""} for o in self.rejected],
        }

    def table(self) -> list[dict[str, str]]:
        rows = [{"file": o.file, "status": o.status, "reason": o.reason or "",
                 "reference": o.reference_id or ""}
                for o in [*self.accepted, *self.duplicates, *self.rejected]]
        return sorted(rows, key=lambda r: r["file"])
