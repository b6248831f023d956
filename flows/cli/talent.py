"""`castkeep talent list|show` and `castkeep gc` (orphan objects from interrupted ingests and
request runs)."""

from __future__ import annotations

import datetime as dt
import json

import typer

talent_app = typer.Typer(help="Talent in the catalogue: list them, show one.",
                         no_args_is_help=True)


def _summary_dict(t) -> dict:  # noqa: ANN001
    return {"id": str(t.id), "external_ref": t.external_ref, "display_name": t.display_name,
            "references": t.references, "consents": t.consents,
            "active_consents": t.active_consents, "created_at": t.created_at.isoformat()}


@talent_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """Every talent with counts of reference portraits and consents."""
    from castkeep.tasks.quick_reads import talent_summaries
    from castkeep.flows.read_catalogue import catalogue_connection

    with catalogue_connection() as conn:
        rows = [_summary_dict(t) for t in talent_summaries(conn)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no talent yet: castkeep ingest PATH adds portraits with their consent")
        return
    typer.echo(f"{'id':<36}  {'external ref':<20}  {'refs':>4}  {'consents':>8}  name")
    for r in rows:
        typer.echo(f"{r['id']:<36}  {(r['external_ref'] or '-'):<20}  {r['references']:>4}  "
                   f"{r['active_consents']:>3}/{r['consents']:<4}  {r['display_name']}")


@talent_app.command("show")
def show(
    talent: str = typer.Argument(..., help="Talent id or external reference."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """A talent's consents and reference portraits."""
    from castkeep.flows.read_catalogue import catalogue_connection
    from castkeep.tasks.quick_reads import talent_detail

    with catalogue_connection() as conn:
        detail = talent_detail(conn, talent)
    info = _summary_dict(detail.talent)
    info["consents"] = [
        {"id": c.id, "status": c.status, "valid_from": c.valid_from.isoformat(),
         "valid_until": c.valid_until.isoformat(), "scope": c.scope_summary(),
         "synthetic_likeness": c.synthetic_likeness, "ai_training": c.ai_training}
        for c in detail.consents
    ]
    info["reference_portraits"] = [
        {"id": str(r.id), "consent_id": str(r.consent_id), "sha256": r.sha256,
         "object_key": r.object_key, "media_type": r.media_type, "width": r.width,
         "height": r.height, "source_name": r.source_name}
        for r in detail.references
    ]
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"talent {info['id']}: {info['display_name']} ({info['external_ref'] or '-'})")
    typer.echo(f"  consents: {len(info['consents'])}")
    for c in info["consents"]:
        s = c["scope"]
        typer.echo(f"    {c['id']}  {c['status']}  until {c['valid_until'][:10]}  "
                   f"{','.join(s['channels'])} / {','.join(s['territories'])} / "
                   f"{','.join(s['purposes'])} / edits {','.join(s['edits']) or '-'}")
    typer.echo(f"  reference portraits: {len(info['reference_portraits'])}")
    for r in info["reference_portraits"]:
        typer.echo(f"    {r['id']}  {r['width']}x{r['height']}  {r['source_name'] or ''}")


def gc(
    grace_hours: float = typer.Option(24.0, "--grace-hours", min=0.0,
                                      help="Keep unreferenced objects younger than this (an "
                                           "ingest or request run may still be writing their "
                                           "rows)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List, do not delete."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Remove reference portraits, release documents and assets that no catalogue row points at
    (left by an interrupted ingest or request run). Reports under reports/ are kept."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.catalogue_admin import collect_orphans

    with open_runtime() as runtime, runtime.sessions() as session:
        removed = collect_orphans(session, runtime.store,
                                  older_than=dt.timedelta(hours=grace_hours), dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps({"removed": removed, "dry_run": dry_run}))
        return
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{verb} {len(removed)} unreferenced object(s)")
    for key in removed:
        typer.echo(f"  {key}")
