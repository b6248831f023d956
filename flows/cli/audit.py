"""`castkeep audit` (the compliance audit) and `castkeep audit verify-log`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

audit_app = typer.Typer(
    help="Compliance audit: signatures, hashes, consent validity, untracked faces, audit log.",
    invoke_without_command=True,
)


@audit_app.callback()
def audit(
    ctx: typer.Context,
    talent: str = typer.Option(None, "--talent", help="Only this talent (id or external reference)."),
    out: Path = typer.Option(None, "--out", help="Also write the report (JSON, Markdown, CSV) into this directory."),
    expiring_days: int = typer.Option(30, "--expiring-days", min=0, help="Report consents expiring within N days."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    inventory: bool = typer.Option(
        False, "--inventory",
        help="Also list every catalogued asset: status, talents, consents, expiry, placements, "
        "verification (in the report and an inventory CSV)."),
) -> None:
    """Audit every approved/published asset. Exit 0 when clean, 1 when violations are found."""
    if ctx.invoked_subcommand is not None:
        return
    from castkeep.flows.audit import audit as audit_flow
    from castkeep.flows.prefect_server import local_prefect
    from castkeep.flows.progress_display import showing_progress

    with local_prefect(), showing_progress(as_json):
        report = audit_flow(talent=talent, expiring_within_days=expiring_days,
                            out_dir=str(out) if out else None, inventory=inventory)
    if as_json:
        typer.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print_human(report)
    raise typer.Exit(0 if report["clean"] else 1)


def _print_human(report: dict) -> None:
    typer.echo(
        f"checked {report['checked']} asset(s), {report['audit_events_checked']} audit event(s): "
        + ("clean" if report["clean"] else f"{len(report['violations'])} violation(s)")
    )
    for v in report["violations"]:
        typer.echo(f"  {v['kind']}: asset {v['asset_id'] or '-'}: {v['detail']}")
    for e in report["expiring"]:
        typer.echo(
            f"  expiring: consent {e['consent_id']} (talent {e['talent_id']}) on {e['valid_until']}, "
            f"{len(e['asset_ids'])} asset(s)"
        )
    if report.get("inventory") is not None:
        typer.echo(f"inventory: {len(report['inventory'])} asset(s) "
                   f"({report['report_keys']['inventory_csv']})")
    typer.echo(f"report: {report['report_keys']['json']}")
    for path in (report.get("report_files") or {}).values():
        typer.echo(f"written: {path}")


@audit_app.command("verify-log")
def verify_log(
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check the audit log: its hash chain, and the log against every signed checkpoint in the
    object store (cut tail, deleted rows, rewritten history, forged checkpoints). When intact, the
    verified head is checkpointed. Exit 0 when intact, 1 otherwise."""
    from castkeep.flows.audit import verify_audit_log

    result = verify_audit_log()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        state = "chain intact" if result["intact"] else f"{len(result['breaks'])} break(s)"
        typer.echo(f"{result['events']} audit event(s), {result['checkpoints']} checkpoint(s): {state}")
        for b in result["breaks"]:
            where = f"seq {b['seq']} id {b['id']}" if b["id"] else f"seq {b['seq']}" if b["seq"] else "checkpoint"
            typer.echo(f"  {where}: {b['detail']}")
        if result["checkpoint_written"]:
            typer.echo(f"checkpoint written: seq {result['checkpoint_written']['seq']}")
    raise typer.Exit(0 if result["intact"] else 1)
