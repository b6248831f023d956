"""`castkeep consent ...`: consent records. `consent show ID` lives here; other consent
commands add themselves to `consent_app`."""

from __future__ import annotations

import json

import typer

consent_app = typer.Typer(help="Consent records: show the terms, history and portraits of one.",
                          no_args_is_help=True)


@consent_app.command("show")
def show(
    consent_id: str = typer.Argument(..., help="Consent id, or the agency's consent reference."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Show a consent's terms, status history and the portraits it covers."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.catalogue_views import consent_details

    with open_runtime() as runtime:
        with runtime.sessions() as session:
            info = consent_details(session, consent_id)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    scope = info["scope"]
    talent = info["talent"]
    typer.echo(f"consent {info['id']}" + (f" ({info['consent_ref']})" if info["consent_ref"] else ""))
    typer.echo(f"  talent:      {talent['display_name']} ({talent['external_ref'] or talent['id']})")
    typer.echo(f"  status:      {info['status']}")
    typer.echo(f"  valid:       {info['valid_from']} .. {info['valid_until']}")
    for key in ("channels", "territories", "purposes", "edits"):
        typer.echo(f"  {key + ':':<12} {', '.join(scope[key]) or '-'}")
    typer.echo(f"  synthetic likeness: {'yes' if info['synthetic_likeness'] else 'no'}; "
               f"AI training: {'yes' if info['ai_training'] else 'no'}; "
               f"minor: {'yes (guardian ' + str(info['guardian']) + ')' if info['minor'] else 'no'}")
    typer.echo(f"  release document sha256: {info['release_doc_sha256']}")
    for e in info["events"]:
        typer.echo(f"  event {e['at']} {e['kind']} by {e['actor']}"
                   + (f": {e['reason']}" if e["reason"] else ""))
    typer.echo(f"  portraits: {len(info['references'])}")
    for r in info["references"]:
        typer.echo(f"    {r['id']}  {r['source_name'] or ''}")


@consent_app.command("revoke")
def revoke(
    consent_id: str = typer.Argument(..., help="Consent id, or the agency's consent reference."),
    reason: str = typer.Option(..., "--reason", help="Why the consent ends (kept in the consent history)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
    dry_run: bool = typer.Option(
        False, "--dry-run",
        help="List what would be quarantined and which takedowns would open; change nothing."),
) -> None:
    """Revoke a consent and quarantine every asset made under it or showing the talent's face
    without other cover (status quarantined + legal hold; nothing is deleted), opening a takedown
    for every placement of those assets. Safe to repeat."""
    if dry_run:
        _revoke_dry_run(consent_id, as_json)
        return
    from castkeep.flows.prefect_server import local_prefect
    from castkeep.flows.progress_display import showing_progress
    from castkeep.flows.revoke import revoke_consent

    with local_prefect(), showing_progress(as_json):
        result = revoke_consent(consent_id, reason)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    state = "revoked" if result["changed"] else f"already {result['status']}"
    typer.echo(f"consent {result['consent_id']} {state}; {len(result['quarantined'])} asset(s) quarantined "
               f"({len(result['derived'])} by lineage, {len(result['face_matched'])} by face match)")
    for asset_id in result["quarantined"]:
        typer.echo(f"  quarantined {asset_id}")
    for t in result.get("takedowns", []):
        typer.echo(f"  takedown {t['id']}: asset {t['asset_id']} on {t['channel']} at {t['url']}")


def _revoke_dry_run(consent_id: str, as_json: bool) -> None:
    from castkeep.flows.components import encoder_profile
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.revoke import dry_run

    with open_runtime() as runtime:
        result = dry_run(runtime, consent_id=consent_id, face=encoder_profile(runtime.settings.faces))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"dry run: revoking consent {result['consent_id']} (now {result['status']}) would "
               f"quarantine {len(result['quarantined'])} asset(s) and open "
               f"{len(result['takedowns'])} takedown(s); nothing was changed")
    for asset_id in result["quarantined"]:
        typer.echo(f"  would quarantine {asset_id}")
    for t in result["takedowns"]:
        typer.echo(f"  would take down asset {t['asset_id']} on {t['channel']} at {t['url']}")
