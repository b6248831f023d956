"""Catalogue reads in plain SQL on a psycopg connection: the talent register's counts, recent
requests, a request's document, assets, the asset a file is.

One implementation serves both callers: the API and pages pass their session's own connection
(`driver_connection(session)`, inside its transaction), short CLI commands a connection opened
without SQLAlchemy (db/read_connection.py), so `castkeep talent list` does not pay for importing
the ORM. Nothing here imports SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from castkeep.db.ids import parse_id, where_listed
from castkeep.errors import NotFoundError
from castkeep.vocab import WITHDRAWN_ASSET_STATUSES

if TYPE_CHECKING:
    from castkeep.provenance.consent import ConsentTerms


def driver_connection(session: Any) -> Any:
    """The psycopg connection under a SQLAlchemy session, in the session's transaction."""
    return session.connection().connection.driver_connection


# ---- talent ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TalentSummary:
    id: uuid.UUID
    external_ref: str | None
    display_name: str
    references: int
    consents: int
    active_consents: int
    created_at: dt.datetime


@dataclass(frozen=True)
class ReferenceSummary:
    id: uuid.UUID
    consent_id: uuid.UUID
    sha256: str
    object_key: str
    media_type: str
    width: int
    height: int
    source_name: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class TalentDetail:
    talent: TalentSummary
    consents: list[ConsentTerms]
    references: list[ReferenceSummary]


_TALENT_SUMMARIES = """
    SELECT t.id, t.external_ref, t.display_name,
           (SELECT count(*) FROM reference_portrait r WHERE r.talent_id = t.id),
           count(c.id), count(c.id) FILTER (WHERE c.status = 'active'), t.created_at
    FROM talent t LEFT JOIN consent c ON c.talent_id = t.id
    {where}
    GROUP BY t.id
    ORDER BY t.created_at, t.id
"""


def talent_summaries(conn: Any, talent_id: uuid.UUID | None = None) -> list[TalentSummary]:
    """Every talent (or the one with `talent_id`), oldest first, with counts of its reference
    portraits, its consents and its active consents."""
    where, params = ("WHERE t.id = %s", (talent_id,)) if talent_id is not None else ("", ())
    return [TalentSummary(*r) for r in conn.execute(_TALENT_SUMMARIES.format(where=where), params)]


def talent_detail(conn: Any, ident: str | uuid.UUID) -> TalentDetail:
    """A talent by castkeep id or external reference, with its consents' terms and its reference
    portraits (oldest first); NotFoundError naming the listing command otherwise."""
    from types import SimpleNamespace

    from castkeep.provenance.consent import ConsentTerms

    row = None
    try:
        tid = ident if isinstance(ident, uuid.UUID) else uuid.UUID(str(ident))
        row = conn.execute("SELECT id FROM talent WHERE id = %s", (tid,)).fetchone()
    except ValueError:
        pass
    if row is None:
        row = conn.execute("SELECT id FROM talent WHERE external_ref = %s", (str(ident),)).fetchone()
    if row is None:
        raise NotFoundError(f"no talent {ident!r} in the catalogue: give a talent id or external "
                            f"reference ({where_listed('talent')})")
    cur = conn.cursor()
    cur.execute("SELECT * FROM consent WHERE talent_id = %s ORDER BY created_at, id", (row[0],))
    names = [d.name for d in cur.description]
    consents = [ConsentTerms.from_row(SimpleNamespace(**dict(zip(names, c)))) for c in cur]
    references = [ReferenceSummary(*r) for r in conn.execute(
        "SELECT id, consent_id, sha256, object_key, media_type, width, height, source_name,"
        " created_at FROM reference_portrait WHERE talent_id = %s ORDER BY created_at, id",
        (row[0],))]
    return TalentDetail(talent_summaries(conn, row[0])[0], consents, references)


# ---- requests ----------------------------------------------------------------------------------


def recent_requests(conn: Any, *, limit: int = 50, username: str | None = None,
                    team: str | None = None) -> list[dict[str, Any]]:
    """The most recent requests, newest first: [{"id", "campaign", "status", "created_at"}].
    With `team`, only those `username` submitted or `team` owns (what a requester may see)."""
    where, params = "", {"limit": int(limit)}
    if team is not None:
        where = "WHERE submitted_by = %(user)s OR team = %(team)s"
        params.update(user=username, team=team)
    rows = conn.execute(
        f"SELECT id, campaign, status, created_at FROM asset_request {where}"
        " ORDER BY created_at DESC, id DESC LIMIT %(limit)s", params).fetchall()
    return [{"id": str(r[0]), "campaign": r[1], "status": r[2], "created_at": r[3].isoformat()}
            for r in rows]


@dataclass(frozen=True)
class ScoreView:
    """One score of an asset (identity per talent or face, lighting, camera, quality, ...)."""

    kind: str
    value: float
    threshold: float | None
    passed: bool
    talent_id: str | None
    face_index: int | None
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "value": self.value,
            "threshold": self.threshold,
            "passed": self.passed,
            "talent_id": self.talent_id,
            "face_index": self.face_index,
            "detail": self.detail,
        }


def _score(r: Any) -> ScoreView:
    kind, value, threshold, passed, talent_id, face_index, detail = r
    return ScoreView(kind, value, threshold, passed, str(talent_id) if talent_id else None,
                     face_index, dict(detail or {}))


def scores_summary(scores: Iterable[Any]) -> dict[str, Any]:
    """{"identity": {talent or faceN: {...}}, "lighting": {...}, "camera": {...}, ...} from
    score records (anything with kind, value, threshold, passed, talent_id, face_index)."""
    out: dict[str, Any] = {}
    for s in scores:
        entry = {"value": s.value, "threshold": s.threshold, "passed": s.passed}
        if s.kind == "identity":
            out.setdefault("identity", {})[s.talent_id or f"face{s.face_index}"] = entry
        else:
            out[s.kind] = entry
    return out


@dataclass(frozen=True)
class RequestDocument:
    """What the API answers for a request, plus where its files are (never sent by the API)."""

    document: dict[str, Any]
    object_keys: tuple[str, ...]  # one per document["assets"] entry
    contact_sheet_key: str | None

    def with_locations(self, store: Any) -> dict[str, Any]:
        """The document with each asset's `path` and the `contact_sheet`'s (None before the
        request's report) in the object `store`: for the CLI, which runs where the objects are."""
        from castkeep.db.object_store import object_location

        for doc, key in zip(self.document["assets"], self.object_keys):
            doc["path"] = object_location(store, key)
        sheet = self.contact_sheet_key
        self.document["contact_sheet"] = object_location(store, sheet) if sheet else None
        return self.document


def request_document(conn: Any, request_id: uuid.UUID | str) -> RequestDocument:
    """{"id", "status", "campaign", "requester", "submitted_by", "team", "flow_run_id",
    "progress": {"done", "total"}, "assets": [{"id", "variant", "status", "passed", "scores",
    "reasons"}], "refusals"}. NotFoundError for an unknown id."""
    rid = parse_id(request_id, "request")
    req = conn.execute(
        "SELECT id, status, campaign, requester, submitted_by, team, flow_run_id, spec, refusals"
        " FROM asset_request WHERE id = %s", (rid,)).fetchone()
    if req is None:
        raise NotFoundError(f"no request {request_id}; {where_listed('request')}")
    assets = conn.execute(
        "SELECT a.id, a.status, a.status_reason, a.object_key, coalesce(g.variant, 0),"
        " coalesce(g.passed, false) FROM asset a LEFT JOIN generation g ON g.id = a.generation_id"
        " WHERE a.request_id = %s ORDER BY coalesce(g.variant, 0), coalesce(g.attempt, 0), a.id",
        (rid,)).fetchall()
    scores: dict[uuid.UUID, list[ScoreView]] = {}
    if assets:
        for r in conn.execute(
                "SELECT asset_id, kind, value, threshold, passed, talent_id, face_index, detail"
                " FROM score WHERE asset_id = ANY(%s) ORDER BY kind, id",
                ([a[0] for a in assets],)):
            scores.setdefault(r[0], []).append(_score(r[1:]))
    done = conn.execute(
        "SELECT count(DISTINCT g.variant) FROM asset a JOIN generation g ON g.id = a.generation_id"
        " WHERE a.request_id = %s", (rid,)).fetchone()[0]
    report = conn.execute(
        "SELECT payload FROM audit_event WHERE kind = 'request.report' AND entity_id = %s"
        " ORDER BY seq DESC LIMIT 1", (str(rid),)).fetchone()
    spec = req[7] or {}
    document = {
        "id": str(req[0]),
        "status": req[1],
        "campaign": req[2],
        "requester": req[3],
        "submitted_by": req[4],
        "team": req[5],
        "flow_run_id": req[6],
        "progress": {"done": int(done), "total": int(spec.get("variants") or 0)},
        "assets": [
            {"id": str(a[0]), "variant": a[4], "status": a[1], "passed": bool(a[5]),
             "scores": scores_summary(scores.get(a[0], ())),
             "reasons": [a[2]] if a[2] else []}
            for a in assets
        ],
        "refusals": list(req[8] or ()),
    }
    sheet = (report[0] or {}).get("contact_sheet") if report else None
    return RequestDocument(document, tuple(a[3] for a in assets), sheet)


# ---- assets ----------------------------------------------------------------------------------


def asset_rows(conn: Any, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Assets newest first, of one `status` when given: [{"id", "request_id", "variant",
    "attempt", "status", "reason", "sha256", "media_type", "width", "height", "created_at",
    "object_key"}]."""
    where = "WHERE a.status = %(status)s" if status is not None else ""
    return [
        {"id": str(r[0]), "request_id": str(r[1]) if r[1] else None, "variant": r[2],
         "attempt": r[3], "status": r[4], "reason": r[5], "sha256": r[6], "media_type": r[7],
         "width": r[8], "height": r[9], "created_at": r[10].isoformat(), "object_key": r[11]}
        for r in conn.execute(
            "SELECT a.id, a.request_id, g.variant, g.attempt, a.status, a.status_reason,"
            " a.sha256, a.media_type, a.width, a.height, a.created_at, a.object_key FROM asset a"
            f" LEFT JOIN generation g ON g.id = a.generation_id {where}"
            " ORDER BY a.created_at DESC, a.id LIMIT %(limit)s",
            {"status": status, "limit": int(limit)})
    ]


def asset_record(conn: Any, asset_id: uuid.UUID | str) -> dict[str, Any]:
    """One asset with its generation, scores and lineage: {"id", "request_id", "variant",
    "attempt", "seed", "status", "reason", "passed", "sha256", "media_type", "width", "height",
    "engine", "licence_id", "talents", "consents", "references", "use", "scores", "object_key"}.
    NotFoundError for an unknown id."""
    aid = parse_id(asset_id, "asset")
    r = conn.execute(
        "SELECT a.id, a.request_id, g.variant, g.attempt, g.seed, a.status, a.status_reason,"
        " g.passed, a.sha256, a.media_type, a.width, a.height, g.engine, g.engine_version,"
        " g.licence_id, a.use, a.object_key, g.id FROM asset a"
        " LEFT JOIN generation g ON g.id = a.generation_id WHERE a.id = %s", (aid,)).fetchone()
    if r is None:
        raise NotFoundError(f"no asset {asset_id}; {where_listed('asset')}")
    scores = [_score(r) for r in conn.execute(
        "SELECT kind, value, threshold, passed, talent_id, face_index, detail FROM score"
        " WHERE asset_id = %s ORDER BY kind, id", (aid,))]
    links = conn.execute("SELECT talent_id, consent_id, reference_portrait_id FROM lineage"
                         " WHERE asset_id = %s", (aid,)).fetchall()
    has_gen = r[17] is not None
    return {
        "id": str(r[0]), "request_id": str(r[1]) if r[1] else None,
        "variant": r[2] if has_gen else 0, "attempt": r[3] if has_gen else 0,
        "seed": r[4] if has_gen else 0, "status": r[5], "reason": r[6], "passed": bool(r[7]),
        "sha256": r[8], "media_type": r[9], "width": r[10], "height": r[11],
        "engine": f"{r[12]} {r[13]}" if has_gen else "", "licence_id": r[14],
        "talents": _sorted_ids(link[0] for link in links),
        "consents": _sorted_ids(link[1] for link in links),
        "references": _sorted_ids(link[2] for link in links),
        "use": dict(r[15] or {}), "scores": scores_summary(scores), "object_key": r[16],
    }


def _sorted_ids(ids: Iterable[Any]) -> list[str]:
    return sorted({str(i) for i in ids if i})


# ---- files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueMatch:
    """The catalogue's entry for a file: found by asset id when one was given, else by sha256."""

    asset_id: str
    status: str
    catalogue_sha256: str
    sha256_matches: bool
    withdrawn: bool


def catalogued_file(conn: Any, sha256: str, asset_id: str | None = None) -> CatalogueMatch | None:
    """The asset a file is (by `asset_id`, which must exist, else by the file's sha256), or None
    when no asset has that content. A tampered file has a new sha256 and is not found by it;
    the asset id catches that case."""
    if asset_id is not None:
        row = conn.execute("SELECT id, status, sha256 FROM asset WHERE id = %s",
                           (parse_id(asset_id, "asset"),)).fetchone()
        if row is None:
            raise NotFoundError(f"no asset {asset_id}; {where_listed('asset')}")
    else:
        row = conn.execute("SELECT id, status, sha256 FROM asset WHERE sha256 = %s",
                           (sha256,)).fetchone()
    if row is None:
        return None
    return CatalogueMatch(asset_id=str(row[0]), status=row[1], catalogue_sha256=row[2],
                          sha256_matches=row[2] == sha256,
                          withdrawn=row[1] in WITHDRAWN_ASSET_STATUSES)


def server_versions(conn: Any) -> tuple[str, str | None]:
    """(PostgreSQL version, pgvector version or None when the extension is not created)."""
    version = conn.execute("SHOW server_version").fetchone()[0]
    vector = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    return str(version).split()[0], vector[0] if vector else None
