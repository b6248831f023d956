"""`castkeep verify FILE`: Content Credentials state, failures, consent and scores.

Exit codes: 0 Trusted, 1 Valid but not trusted here, 2 Invalid or no manifest (or the file
differs from the catalogued asset it claims to be), 4 the catalogue withdrew the asset
(quarantined or rejected: it must not be used, whatever its signature says; the state is still
printed). 4 comes first: the catalogue's word on an asset outranks its signature.

The catalogue is found by the file's sha256 (or `--asset-id`); the manifest carries no asset id,
since ids are given after signing. When the catalogue cannot be reached, the signature is still
verified and the output says the catalogue was not checked; the exit code then reflects the
signature alone (`--asset-id` needs the catalogue and fails instead).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer

from castkeep.errors import WithdrawnError

EXIT = {"Trusted": 0, "Valid": 1, "Invalid": 2}
CATALOGUE_MISMATCH = "castkeep.catalogue.sha256Mismatch"


def _catalogue_check(sha256: str, asset_id: str | None) -> dict:
    """Compare with the catalogue: by asset id when given, else by the file's sha256.

    A tampered file has a new sha256 and is not found by it; --asset-id catches that case.
    """
    from castkeep.tasks.quick_reads import catalogued_file
    from castkeep.errors import CastkeepError
    from castkeep.flows.read_catalogue import catalogue_connection

    try:
        with catalogue_connection() as conn:
            match = catalogued_file(conn, sha256, asset_id)
    except CastkeepError as exc:
        if asset_id is not None:
            raise
        # The signature check stands on its own; say why the catalogue part is missing.
        return {"catalogued": None, "error": str(exc)}
    if match is None:
        return {"catalogued": False}
    return {
        "catalogued": True,
        "asset_id": match.asset_id,
        "status": match.status,
        "sha256_matches": match.sha256_matches,
        "catalogue_sha256": match.catalogue_sha256,
    }


def _trust_anchors() -> list[Path]:
    """The configured anchors plus the data dir's development root (flows/components' rule),
    read without building Settings when the environment allows."""
    from castkeep.flows.read_settings import read_settings
    from castkeep.provenance.signing import resolve_trust_anchors

    light = read_settings()
    if light is not None:
        return resolve_trust_anchors(keys_dir=light.home / "keys", configured=light.trust_anchors)
    from castkeep.flows.components import build_components
    from castkeep.flows.runtime import load_settings

    return build_components(load_settings()).trust_anchors


def verify(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="Image to verify (JPEG, PNG, WebP)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
    asset_id: str = typer.Option(None, "--asset-id",
                                 help="Catalogued asset this file should be (checks its sha256)."),
    catalogue: bool = typer.Option(True, "--catalogue/--no-catalogue",
                                   help="Look the file up in the catalogue."),
) -> None:
    """Verify a file's Content Credentials against the configured trust anchors, and look it up
    in the catalogue. Exit 0 Trusted, 1 Valid, 2 Invalid, 4 withdrawn (the catalogue marks the
    asset quarantined or rejected: do not use it)."""
    from castkeep.provenance.verify import verify_file
    from castkeep.vocab import WITHDRAWN_ASSET_STATUSES

    report = verify_file(file, trust_anchors=_trust_anchors())
    cat = _catalogue_check(report.sha256, asset_id) if (catalogue or asset_id) else None
    state = report.state
    if cat and cat.get("catalogued") and not cat["sha256_matches"]:
        report = replace(report, failures=[*report.failures, CATALOGUE_MISMATCH])
        state = "Invalid"
    status = cat.get("status") if cat and cat.get("catalogued") else None
    withdrawn = status in WITHDRAWN_ASSET_STATUSES
    out = {**report.to_dict(), "state": state, "catalogue": cat, "catalogue_status": status,
           "withdrawn": withdrawn}
    if as_json:
        typer.echo(json.dumps(out, default=str))
    else:
        _print_human(file, out)
    raise typer.Exit(WithdrawnError.exit_code if withdrawn else EXIT.get(state, 2))


def _print_human(file: Path, out: dict) -> None:
    echo = typer.echo
    echo(f"{file}: {out['state']}")
    if out.get("withdrawn"):
        cat = out["catalogue"]
        echo(f"  WITHDRAWN: the catalogue marks asset {cat['asset_id']} {cat['status']}; "
             "do not use this file")
    if not out["has_manifest"]:
        echo("  no readable Content Credentials")
    signer = out.get("signer") or {}
    if signer:
        echo(f"  signer: {signer.get('common_name')} ({signer.get('issuer')}), {signer.get('alg')}")
    if out["has_manifest"]:
        echo(f"  signed at: {out.get('signed_at') or 'no timestamp'}"
             + (f" (claimed {out['claimed_at']})" if out.get("claimed_at") else ""))
    for failure in out.get("failure_details") or []:
        echo(f"  failure: {failure['code']}: {failure.get('explanation') or ''}")
    for extra in out["failures"][len(out.get("failure_details") or []):]:
        echo(f"  failure: {extra}")
    for action in out["actions"]:
        agent = action.get("softwareAgent") or {}
        agent_s = f" by {agent.get('name')} {agent.get('version')}" if agent else ""
        echo(f"  action: {action.get('action')}{agent_s}"
             + (f": {action['description']}" if action.get("description") else ""))
    for ing in out["ingredients"]:
        echo(f"  ingredient: {ing.get('title')} ({ing.get('relationship')})")
    consent = out.get("consent")
    if consent:
        echo(f"  consent: talents {', '.join(consent.get('talents', []))}; consents "
             f"{', '.join(consent.get('consents', []))}; valid until {consent.get('valid_until')}")
    scores = out.get("scores")
    if scores:
        ident = ", ".join(f"{s['talent_id']} {s['distance']:.3f}/{s['threshold']}"
                          f"{'' if s['passed'] else ' FAIL'}" for s in scores.get("identity", []))
        echo(f"  scores ({scores.get('encoder')}): identity {ident or '-'}")
    training = out.get("training_mining")
    if training:
        echo("  AI training/mining: " + ", ".join(f"{k.split('.')[-1]}={v}" for k, v in training.items()))
    cat = out.get("catalogue")
    if cat is not None:
        if cat.get("error"):
            echo(f"  catalogue: not checked, signature verified offline only ({cat['error']})")
        elif not cat.get("catalogued"):
            echo("  catalogue: not a catalogued asset")
        else:
            ok = "matches" if cat["sha256_matches"] else "DIFFERS FROM"
            echo(f"  catalogue: asset {cat['asset_id']} ({cat.get('status')}); file {ok} the catalogued sha256")
