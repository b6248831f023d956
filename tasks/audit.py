"""Audit checks: plain functions over a session / object store, and thin Prefect tasks over them.

Each check returns Violations (kind, asset id or None, detail); the flow gathers them into one
report. Nothing here changes the catalogue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable


from castkeep.db import compliance
from castkeep.errors import ObjectNotFoundError
from castkeep.models.faces.face_types import EncoderInfo

# Violation kinds (stable names: reports and alerting key on them).
OBJECT_MISSING = "object_missing"
HASH_MISMATCH = "hash_mismatch"
MANIFEST_UNTRUSTED = "manifest_untrusted"
CONSENT_INVALID = "consent_invalid"
NO_CONSENT_LINK = "no_consent_link"
UNTRACKED_FACE = "untracked_face"
AUDIT_CHAIN_BROKEN = "audit_chain_broken"
AUDIT_LOG_ROWS_MISSING = "audit_log_rows_missing"
AUDIT_LOG_REWRITTEN = "audit_log_rewritten"
AUDIT_CHECKPOINT_INVALID = "audit_checkpoint_invalid"
CONSENT_TAMPERED = "consent_tampered"
TAKEDOWN_OVERDUE = "takedown_overdue"


def encoder_profile(name: str, **options: Any) -> EncoderInfo:
    """Name, version, metric and same-person threshold (with dim and licence) of encoder `name`
    built with `options` (from settings at the edge: flows/components.encoder_profile). dlib loads
    no weights for this; insightface reads them from its pack, so it needs its `root`."""
    from castkeep.models.faces.encoders import shared_encoder

    info = shared_encoder(name, **options).info
    return replace(info, threshold=float(info.threshold))


@dataclass(frozen=True)
class Violation:
    kind: str
    asset_id: str | None
    detail: str
    talent_id: str | None = None
    consent_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_integrity(store, asset: compliance.AssetUnderAudit, trust_anchors: list[Path]) -> list[Violation]:
    """The object exists, its sha256 is the catalogue's, and its C2PA manifest is Trusted."""
    from castkeep.provenance.verify import verify_bytes

    try:
        data = store.get_bytes(asset.object_key)
    except ObjectNotFoundError:
        return [Violation(OBJECT_MISSING, asset.id, f"object {asset.object_key} is missing from the store")]
    out = []
    digest = hashlib.sha256(data).hexdigest()
    if digest != asset.sha256:
        out.append(
            Violation(HASH_MISMATCH, asset.id, f"object {asset.object_key} has sha256 {digest}, catalogue says {asset.sha256}")
        )
    report = verify_bytes(data, asset.media_type, trust_anchors=trust_anchors)
    if report.state != "Trusted":
        failures = ", ".join(report.failures) or report.error or "no trusted signer"
        out.append(Violation(MANIFEST_UNTRUSTED, asset.id, f"C2PA manifest is {report.state}: {failures}"))
    return out


def use_of(asset: compliance.AssetUnderAudit):
    from castkeep.provenance.policy import Use

    u = asset.use
    return Use(
        channel=str(u.get("channel", "")),
        territory=str(u.get("territory", "")),
        purpose=str(u.get("purpose", "")),
        edits=tuple(u.get("edits") or ()),
        synthetic_likeness=bool(u.get("synthetic_likeness", False)),
    )


def check_consents(session, assets: list[compliance.AssetUnderAudit], at: dt.datetime) -> list[Violation]:
    """Each depicted talent's consent (the one the asset was made under) covers the asset's
    recorded use now."""
    from castkeep.provenance.consent import ConsentTerms
    from castkeep.provenance.policy import evaluate

    rows = compliance.consents_by_id(
        session, {link.consent_id for a in assets for link in a.links if link.consent_id}
    )
    out = []
    for asset in assets:
        if not asset.links:
            out.append(Violation(NO_CONSENT_LINK, asset.id, "asset has no lineage to any talent's consent"))
            continue
        use = use_of(asset)
        seen = set()
        for link in asset.links:
            if (link.talent_id, link.consent_id) in seen:
                continue
            seen.add((link.talent_id, link.consent_id))
            row = rows.get(link.consent_id) if link.consent_id else None
            if row is None:
                out.append(
                    Violation(NO_CONSENT_LINK, asset.id, f"talent {link.talent_id} has no consent recorded for this asset", link.talent_id)
                )
                continue
            decision = evaluate(ConsentTerms.from_row(row), use, at)
            if not decision.allowed:
                out.append(
                    Violation(CONSENT_INVALID, asset.id, "; ".join(decision.reasons), link.talent_id, link.consent_id)
                )
    return out


def identity_sweep(
    session,
    *,
    encoder: str,
    metric: str,
    threshold: float,
    talent_id: str | None = None,
) -> tuple[list[Violation], int]:
    """Faces in catalogued assets that match a talent's reference faces without a lineage link
    to that talent. Returns (violations, matches examined)."""
    matches = compliance.asset_faces_matching(
        session, encoder=encoder, metric=metric, threshold=threshold, talent_id=talent_id
    )
    linked = compliance.linked_talents(session, sorted({m.asset_id for m in matches}))
    out = [
        Violation(
            UNTRACKED_FACE,
            m.asset_id,
            f"face {m.face_index} matches talent {m.talent_id} (distance {m.distance:.3f} <= {threshold}) "
            "but the asset has no consent link for that talent",
            m.talent_id,
        )
        for m in matches
        if m.talent_id not in linked.get(m.asset_id, set())
    ]
    return out, len(matches)


def _one_snapshot(session) -> None:
    """Run the session's next transaction as REPEATABLE READ (one snapshot for every query);
    a transaction already under way is used as it is."""
    if not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


@dataclass(frozen=True)
class LogCheck:
    breaks: list[Any]  # db.audit_log.ChainBreak, oldest first
    events: int
    head: Any  # db.audit_log.ChainHead | None: the newest row seen
    checkpoints: int  # checkpoint objects found (valid or not)


def check_log(session, store, key_path: Path) -> LogCheck:
    """The audit_event hash chain, and the log against every signed checkpoint in `store` (a cut
    tail, deleted rows, rewritten history, a forged checkpoint). One snapshot: start it on a fresh
    session so rows committed meanwhile are not half seen."""
    from sqlalchemy import func, select

    from castkeep.db import audit_anchor, schema
    from castkeep.db.audit_log import chain_head, verify_chain

    _one_snapshot(session)
    key = audit_anchor.load_key(key_path, create=False)
    breaks = verify_chain(session)
    checkpoints, invalid = audit_anchor.read_checkpoints(store, key)
    breaks += invalid + audit_anchor.verify_against_checkpoints(session, checkpoints)
    count = session.scalar(select(func.count()).select_from(schema.AuditEvent)) or 0
    return LogCheck(breaks, int(count), chain_head(session), len(checkpoints) + len(invalid))


_ANCHOR_KINDS = {
    "tail_truncated": AUDIT_LOG_ROWS_MISSING,
    "rows_missing": AUDIT_LOG_ROWS_MISSING,
    "rewritten": AUDIT_LOG_REWRITTEN,
    "checkpoint_invalid": AUDIT_CHECKPOINT_INVALID,
}


def check_chain(session, store, key_path: Path) -> tuple[list[Violation], int]:
    """`check_log` as violations: an edited or deleted row with its seq and id
    (audit_chain_broken), and what the checkpoints show."""
    result = check_log(session, store, key_path)
    out = []
    for b in result.breaks:
        kind = _ANCHOR_KINDS.get(b.kind)
        if kind is None:
            out.append(Violation(AUDIT_CHAIN_BROKEN, None, f"audit_event seq {b.seq} id {b.id}: {b.detail}"))
        else:
            out.append(Violation(kind, None, b.detail))
    return out, result.events


def check_consent_rows(session, talent_id: str | None) -> list[Violation]:
    """Consent rows whose terms or status differ from their audit events (edited outside
    castkeep). One snapshot, so a revocation committing meanwhile is seen whole or not at all."""
    from castkeep.db.consent_history import consent_drift

    _one_snapshot(session)
    return [
        Violation(CONSENT_TAMPERED, None, f"consent {d.consent_id}: {d.detail}", d.talent_id, d.consent_id)
        for d in consent_drift(session, talent_id=talent_id)
    ]


def check_takedowns(session, at: dt.datetime, hours: int) -> list[Violation]:
    """Takedowns still open more than `hours` after a revocation or expiry opened them."""
    from castkeep.db.placements import list_takedowns

    overdue = list_takedowns(session, older_than=at - dt.timedelta(hours=hours))
    return [
        Violation(TAKEDOWN_OVERDUE, t.asset_id,
                  f"takedown {t.id} of {t.url} ({t.channel}, {t.territory}) open since "
                  f"{t.opened_at} (more than {hours} h): {t.reason}")
        for t in overdue
    ]


def inventory(session, talent_id: str | None = None) -> list[dict[str, Any]]:
    """Every catalogued asset (any status) with its talents, consents, expiry (the earliest end
    of its consents), placements and open takedowns."""
    from castkeep.db.placements import list_takedowns
    from castkeep.db.schema import ASSET_STATUSES
    from castkeep.tasks.placements import placements_by_asset

    assets = compliance.assets_for_audit(session, statuses=ASSET_STATUSES, talent_id=talent_id)
    rows = compliance.consents_by_id(
        session, {link.consent_id for a in assets for link in a.links if link.consent_id})
    placed = placements_by_asset(session, [uuid.UUID(a.id) for a in assets])
    open_takedowns = Counter(t.asset_id for t in list_takedowns(session, open_only=True))
    out = []
    for a in assets:
        consents = sorted({link.consent_id for link in a.links if link.consent_id})
        ends = [rows[c].valid_until for c in consents if c in rows]
        out.append({
            "asset_id": a.id,
            "status": a.status,
            "talents": sorted(set(a.talent_ids)),
            "consents": [{"id": c, "status": rows[c].status if c in rows else None,
                          "valid_until": _iso(rows[c].valid_until) if c in rows else None}
                         for c in consents],
            "expiry": _iso(min(ends)) if ends else None,
            "use": a.use,
            "placements": placed.get(a.id, []),
            "open_takedowns": open_takedowns.get(a.id, 0),
        })
    return out


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat()


# --- Units of the audit flow (it wraps them as Prefect tasks, never cached) ---------------------


def integrity_chunk(
    store_factory: Callable[[], Any], assets: list[compliance.AssetUnderAudit], trust_anchors: list[Path]
) -> list[Violation]:
    """One chunk of the fan-out. Takes a picklable store factory, not a store, so the chunk can
    run in another process (a Dask worker) with its own connections."""
    store = store_factory()
    return [v for a in assets for v in check_integrity(store, a, trust_anchors)]


# Every task takes picklable factories rather than open connections, so any of them can run in
# another process (a Dask worker) and open its own.


def consents_check(runtime_factory: Callable[[], Any], assets: list[compliance.AssetUnderAudit], at: dt.datetime) -> list[Violation]:
    with runtime_factory() as runtime, runtime.sessions() as session:
        return check_consents(session, assets, at)


def expiring_check(
    runtime_factory: Callable[[], Any], at: dt.datetime, within_days: int, talent_id: str | None
) -> list[compliance.CoveredConsent]:
    with runtime_factory() as runtime, runtime.sessions() as session:
        return compliance.expiring_consents(
            session, now=at, within=dt.timedelta(days=within_days), talent_id=talent_id
        )


def identity_check(runtime_factory: Callable[[], Any], encoder: str, metric: str, threshold: float, talent_id: str | None):
    with runtime_factory() as runtime, runtime.sessions() as session:
        return identity_sweep(session, encoder=encoder, metric=metric, threshold=threshold, talent_id=talent_id)


def chain_check(runtime_factory: Callable[[], Any], key_path: Path) -> tuple[list[Violation], int]:
    """Takes the anchor key's path, never the key: task arguments may be recorded."""
    with runtime_factory() as runtime, runtime.sessions() as session:
        return check_chain(session, runtime.store, key_path)


def takedowns_check(runtime_factory: Callable[[], Any], at: dt.datetime,
                    hours: int) -> list[Violation]:
    with runtime_factory() as runtime, runtime.sessions() as session:
        return check_takedowns(session, at, hours)


def inventory_check(runtime_factory: Callable[[], Any], talent_id: str | None) -> list[dict[str, Any]]:
    with runtime_factory() as runtime, runtime.sessions() as session:
        return inventory(session, talent_id)


def consent_rows_check(runtime_factory: Callable[[], Any], talent_id: str | None) -> list[Violation]:
    with runtime_factory() as runtime, runtime.sessions() as session:
        return check_consent_rows(session, talent_id)
