"""The compliance audit flow: integrity and provenance of every approved/published asset, consent
validity now, consents about to expire, consent rows edited outside castkeep, untracked faces, and
the audit log (its hash chain and signed checkpoints; each run writes a new checkpoint).

The report is written as JSON, Markdown and CSV to the object store (reports/), optionally to a
directory, and published as Prefect artifacts.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE

from castkeep.flows.flow_type import flow
from castkeep.flows.anchor import anchor_key_path, checkpoint
from castkeep.flows.components import build_components, encoder_profile
from castkeep.tasks import audit as checks
from castkeep.tasks.retry import retry_unless_user_error

# The audit's units as Prefect tasks (never cached: they read live state). Each takes picklable
# factories, so it can run in another process (a Dask worker) with its own connections.
integrity_task = task(name="audit-integrity", cache_policy=NO_CACHE, retries=1,
                      retry_delay_seconds=5,
                      retry_condition_fn=retry_unless_user_error)(checks.integrity_chunk)
consents_task = task(name="audit-consents", cache_policy=NO_CACHE)(checks.consents_check)
expiring_task = task(name="audit-expiring", cache_policy=NO_CACHE)(checks.expiring_check)
identity_task = task(name="audit-identity-sweep", cache_policy=NO_CACHE)(checks.identity_check)
chain_task = task(name="audit-chain", cache_policy=NO_CACHE)(checks.chain_check)
consent_rows_task = task(name="audit-consent-rows",
                         cache_policy=NO_CACHE)(checks.consent_rows_check)
takedowns_task = task(name="audit-takedowns", cache_policy=NO_CACHE)(checks.takedowns_check)
inventory_task = task(name="audit-inventory", cache_policy=NO_CACHE)(checks.inventory_check)

REPORTS_PREFIX = "reports"
INTEGRITY_CHUNK = 25  # assets per integrity task


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat()


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# castkeep compliance audit",
        "",
        f"- generated: {report['generated_at']} by {report['actor']}",
        f"- scope: {'talent ' + report['talent_id'] if report['talent_id'] else 'whole catalogue'}",
        f"- assets checked: {report['checked']}; audit events checked: {report['audit_events_checked']}",
        f"- result: {'clean' if report['clean'] else str(len(report['violations'])) + ' violation(s)'}",
        "",
        "## Violations",
        "",
    ]
    if report["violations"]:
        lines += ["| kind | asset | talent | detail |", "|---|---|---|---|"]
        for v in report["violations"]:
            detail = v["detail"].replace("|", "\\|")
            lines.append(f"| {v['kind']} | {v['asset_id'] or '-'} | {v['talent_id'] or '-'} | {detail} |")
    else:
        lines.append("None.")
    lines += ["", f"## Consents expiring within {report['expiring_within_days']} days", ""]
    if report["expiring"]:
        lines += ["| consent | talent | valid until | assets covered |", "|---|---|---|---|"]
        for e in report["expiring"]:
            lines.append(
                f"| {e['consent_id']} | {e['talent_id']} | {e['valid_until']} | {len(e['asset_ids'])} |"
            )
    else:
        lines.append("None.")
    if report.get("inventory") is not None:
        lines += ["", f"## Inventory ({len(report['inventory'])} asset(s))", "",
                  "| asset | status | talents | consents | expiry | placements | open takedowns | verified |",
                  "|---|---|---|---|---|---|---|---|"]
        for a in report["inventory"]:
            consents = ", ".join(f"{c['id']} ({c['status']})" for c in a["consents"]) or "-"
            places = ", ".join(f"{p['channel']} {p['url']}" for p in a["placements"]).replace("|", "%7C")
            lines.append(f"| {a['asset_id']} | {a['status']} | {', '.join(a['talents']) or '-'} | "
                         f"{consents} | {a['expiry'] or '-'} | {places or '-'} | "
                         f"{a['open_takedowns']} | {_verified_text(a['verified'])} |")
    return "\n".join(lines) + "\n"


def _verified_text(verified: dict[str, Any] | None) -> str:
    if verified is None:
        return "not checked (not approved/published)"
    return ("ok" if verified["ok"] else ", ".join(verified["problems"])) + f" at {verified['at']}"


INVENTORY_COLUMNS = ["asset_id", "status", "talents", "consents", "expiry", "placements",
                     "open_takedowns", "verified_at", "verified_ok"]


def render_inventory_csv(report: dict[str, Any]) -> str:
    """One row per catalogued asset; lists joined with ';'."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(INVENTORY_COLUMNS)
    for a in report["inventory"]:
        verified = a["verified"] or {}
        writer.writerow([
            a["asset_id"], a["status"], ";".join(a["talents"]),
            ";".join(f"{c['id']}:{c['status']}" for c in a["consents"]), a["expiry"] or "",
            ";".join(f"{p['channel']}:{p['territory']}:{p['url']}" for p in a["placements"]),
            a["open_takedowns"], verified.get("at", ""),
            "" if not verified else str(verified["ok"]).lower(),
        ])
    return buf.getvalue()


def render_csv(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["kind", "asset_id", "talent_id", "consent_id", "detail"])
    for v in report["violations"]:
        writer.writerow([v["kind"], v["asset_id"] or "", v["talent_id"] or "", v["consent_id"] or "", v["detail"]])
    return buf.getvalue()


def _store_report(store, report: dict[str, Any]) -> dict[str, str]:
    payload = json.dumps(report, indent=2, sort_keys=True).encode()
    keys = {}
    files = [
        ("json", "json", "application/json", payload),
        ("md", "md", "text/markdown", render_markdown(report).encode()),
        ("csv", "csv", "text/csv", render_csv(report).encode()),
    ]
    if report.get("inventory") is not None:
        files.append(("inventory_csv", "csv", "text/csv", render_inventory_csv(report).encode()))
    for name, ext, media_type, data in files:
        keys[name] = store.put_bytes(data, prefix=REPORTS_PREFIX, ext=ext, media_type=media_type).key
    return keys


def write_report_files(report: dict[str, Any], out_dir: Path) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = report["generated_at"].replace(":", "").replace("-", "").split(".")[0].replace("+0000", "")
    paths = {}
    files = [
        ("json", "json", json.dumps(report, indent=2, sort_keys=True) + "\n"),
        ("md", "md", render_markdown(report)),
        ("csv", "csv", render_csv(report)),
    ]
    if report.get("inventory") is not None:
        files.append(("inventory_csv", "inventory.csv", render_inventory_csv(report)))
    for name, suffix, text in files:
        path = out_dir / f"audit-{stamp}.{suffix}"
        path.write_text(text)
        paths[name] = str(path)
    return paths


def _publish_artifacts(report: dict[str, Any]) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(
        key="castkeep-audit-report", markdown=render_markdown(report), description="compliance audit"
    )
    create_table_artifact(
        key="castkeep-audit-violations",
        table=[{k: v[k] or "" for k in ("kind", "asset_id", "talent_id", "detail")} for v in report["violations"]]
        or [{"kind": "none", "asset_id": "", "talent_id": "", "detail": "clean"}],
        description="audit violations",
    )


def _follow_integrity(futures, sizes: list[int], total: int) -> None:
    """Report assets checked as the integrity chunks finish (in order; they run in parallel)."""
    from castkeep.progress import report

    report("assets checked", 0, total)
    done = 0
    for future, size in zip(futures, sizes):
        future.wait()
        done += size
        report("assets checked", done, total)


def run_audit(runtime, *, talent: str | None, expiring_within_days: int, at: dt.datetime,
              inventory: bool = False, takedown_hours: int | None = None) -> dict[str, Any]:
    """The checks, as tasks, and the report dict (not yet stored). `inventory`: also every
    catalogued asset with its status, talents, consents, expiry, placements and this run's
    verification."""
    from castkeep.db import compliance
    from castkeep.flows.runtime import build_store, open_runtime
    settings = runtime.settings
    talent_id = None
    if talent:
        from castkeep.db.catalogue import resolve_talent

        with runtime.sessions() as session:
            talent_id = str(resolve_talent(session, talent).id)
    with runtime.sessions() as session:
        assets = compliance.assets_for_audit(session, talent_id=talent_id)
    anchors = build_components(settings).trust_anchors
    encoder = encoder_profile(settings.faces)

    # The signature/hash checks are the heavy part: fanned out in chunks over the task runner
    # (threads by default; a Dask cluster through audit_checks when CASTKEEP_PREFECT__DASK_ADDRESS
    # is set).
    store_factory = functools.partial(build_store, settings)
    chunks = [assets[i : i + INTEGRITY_CHUNK] for i in range(0, len(assets), INTEGRITY_CHUNK)]
    integrity = integrity_task.map(unmapped(store_factory), chunks, unmapped(anchors))
    runtime_factory = functools.partial(open_runtime, settings, migrate=False)
    consents = consents_task.submit(runtime_factory, assets, at)
    consent_rows = consent_rows_task.submit(runtime_factory, talent_id)
    expiring = expiring_task.submit(runtime_factory, at, expiring_within_days, talent_id)
    identity = identity_task.submit(
        runtime_factory, encoder.name, encoder.metric, encoder.threshold, talent_id
    )
    chain = chain_task.submit(runtime_factory, anchor_key_path(settings))
    hours = settings.audit.takedown_hours if takedown_hours is None else takedown_hours
    takedowns = takedowns_task.submit(runtime_factory, at, hours)
    listed = inventory_task.submit(runtime_factory, talent_id) if inventory else None

    _follow_integrity(integrity, [len(c) for c in chunks], len(assets))
    identity_violations, identity_matches = identity.result()
    chain_violations, events_checked = chain.result()
    integrity_violations = [v for chunk in integrity.result() for v in chunk]
    violations = (
        integrity_violations + consents.result() + consent_rows.result() + identity_violations + chain_violations
        + takedowns.result()
    )
    counts = Counter(v.kind for v in violations)
    return {
        "generated_at": _iso(at),
        "actor": settings.acting_user,
        "talent_id": talent_id,
        "checked": len(assets),
        "clean": not violations,
        "violations": [v.as_dict() for v in violations],
        "counts": dict(sorted(counts.items())),
        "expiring_within_days": expiring_within_days,
        "expiring": [
            {
                "consent_id": e.consent_id,
                "talent_id": e.talent_id,
                "valid_until": _iso(e.valid_until),
                "asset_ids": list(e.asset_ids),
            }
            for e in expiring.result()
        ],
        "identity_matches": identity_matches,
        "audit_events_checked": events_checked,
        "encoder": {"name": encoder.name, "version": encoder.version, "metric": encoder.metric,
                    "threshold": encoder.threshold},
        "trust_anchors": len(anchors),
        "takedown_hours": hours,
        "inventory": None if listed is None else _with_verification(
            listed.result(), {a.id for a in assets}, integrity_violations, _iso(at)),
    }


def _with_verification(rows: list[dict[str, Any]], checked: set[str], integrity: list,
                       at: str) -> list[dict[str, Any]]:
    """Each inventory row with this run's integrity/signature result (None: not audited)."""
    problems: dict[str, list[str]] = {}
    for v in integrity:
        problems.setdefault(v.asset_id, []).append(v.kind)
    return [{**r, "verified": {"at": at, "ok": not problems.get(r["asset_id"]),
                               "problems": sorted(set(problems.get(r["asset_id"], [])))}
             if r["asset_id"] in checked else None} for r in rows]


def verify_audit_log(*, anchor: bool = True) -> dict[str, Any]:
    """`castkeep audit verify-log`: the hash chain and every signed checkpoint. When the log is
    intact (and `anchor`), the head just verified is checkpointed too."""
    from castkeep.flows.runtime import open_runtime

    with open_runtime() as runtime:
        key_path = anchor_key_path(runtime.settings)
        with runtime.sessions() as session:
            result = checks.check_log(session, runtime.store, key_path)
        written = checkpoint(runtime, result.head) if anchor and not result.breaks and result.head else None
    return {
        "intact": not result.breaks,
        "events": result.events,
        "checkpoints": result.checkpoints,
        "breaks": [
            {"seq": b.seq, "id": None if b.id is None else str(b.id), "kind": b.kind, "detail": b.detail}
            for b in result.breaks
        ],
        "checkpoint_written": {"seq": written.seq, "key": written.object_key} if written else None,
    }


@flow(name="audit-checks", log_prints=False)
def audit_checks(talent: str | None, expiring_within_days: int, at: dt.datetime,
                 inventory: bool = False, takedown_hours: int | None = None) -> dict[str, Any]:
    """The checks as a subflow of their own, so they can take a Dask task runner whichever way
    the audit was started (CLI, `castkeep serve`, a worker)."""
    from castkeep.flows.runtime import open_runtime

    with open_runtime(migrate=False) as runtime:
        return run_audit(runtime, talent=talent, expiring_within_days=expiring_within_days, at=at,
                         inventory=inventory, takedown_hours=takedown_hours)


@flow(name="audit", log_prints=False)
def audit(
    talent: str | None = None,
    expiring_within_days: int = 30,
    out_dir: str | None = None,
    actor: str | None = None,
    inventory: bool = False,
    takedown_hours: int | None = None,
) -> dict[str, Any]:
    """Audit the catalogue (or one talent's assets); returns the report with where it was stored.
    `actor`: who started it (the API's signed-in user); default the settings' acting user."""
    from castkeep.db.audit_log import append_event
    from castkeep.flows.runtime import load_settings, open_runtime

    logger = get_run_logger()
    at = dt.datetime.now(dt.timezone.utc)
    settings = load_settings()
    if actor:
        settings = settings.model_copy(update={"actor": actor})
    with open_runtime(settings) as runtime:
        dask_address = runtime.settings.prefect.dask_address
        if dask_address:
            from castkeep.flows.serve import scale_out

            logger.info("audit checks fan out on the Dask cluster at %s", dask_address)
            report = scale_out(audit_checks, dask_address)(talent, expiring_within_days, at,
                                                           inventory, takedown_hours)
        else:
            report = run_audit(runtime, talent=talent, expiring_within_days=expiring_within_days,
                               at=at, inventory=inventory, takedown_hours=takedown_hours)
        report_keys = _store_report(runtime.store, report)
        with runtime.sessions.begin() as session:
            # That the audit ran, and what it found, is itself part of the evidence trail.
            append_event(
                session,
                actor=runtime.settings.acting_user,
                kind="audit.completed",
                entity_type="report",
                entity_id=report_keys["json"].rsplit("/", 1)[-1][:64],
                payload={"checked": report["checked"], "counts": report["counts"], "report_key": report_keys["json"]},
            )
        # Every audit run anchors the log (this run's event included) outside the database.
        anchored = checkpoint(runtime)
        report["checkpoint"] = {"seq": anchored.seq, "key": anchored.object_key} if anchored else None
    report["report_keys"] = report_keys
    if out_dir:
        report["report_files"] = write_report_files(report, Path(out_dir))
    _publish_artifacts(report)
    logger.info(
        "audit checked %d asset(s): %d violation(s), %d consent(s) expiring within %d days; report %s",
        report["checked"], len(report["violations"]), len(report["expiring"]), expiring_within_days, report_keys["json"],
    )
    return report
