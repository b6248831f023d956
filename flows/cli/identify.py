"""`castkeep identify FILE`: which catalogued asset a file found in the wild is, or is a copy of.

Found by the file's own Content Credentials, else by the invisible watermark every castkeep
output carries (it survives stripped metadata, recompression, resizing and cropping). Prints the
asset's status now (a copy of a quarantined asset says so), its talents and their consents.
Exit 0 found, 1 not found (an image castkeep did not produce, or one too degraded to read).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def identify(
    file: Path = typer.Argument(..., help="Image to identify (JPEG, PNG, WebP, TIFF)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Find the catalogued asset behind an image: by its manifest, else its watermark. Exit 0
    found, 1 not found."""
    from castkeep.flows.components import build_components
    from castkeep.flows.runtime import load_settings, open_runtime
    from castkeep.tasks.identify import identify_bytes, read_candidate

    data = read_candidate(file)
    settings = load_settings()
    anchors = build_components(settings).trust_anchors
    with open_runtime(settings) as runtime, runtime.sessions() as session:
        found = identify_bytes(session, data, trust_anchors=anchors)
    out = found.as_dict()
    if as_json:
        typer.echo(json.dumps(out))
    else:
        _print_human(file, out)
    raise typer.Exit(0 if found.found else 1)


def _print_human(file: Path, out: dict) -> None:
    echo = typer.echo
    if out["asset_id"] is None:
        echo(f"{file}: not a castkeep asset (no catalogued manifest or watermark found)")
        return
    echo(f"{file}: asset {out['asset_id']} (by {out['method']}, confidence "
         f"{out['confidence']:.2f})")
    from castkeep.vocab import WITHDRAWN_ASSET_STATUSES

    withdrawn = out["status"] in WITHDRAWN_ASSET_STATUSES
    echo(f"  status: {out['status']}" + (" - WITHDRAWN, do not use" if withdrawn else ""))
    for talent in out["talents"]:
        echo(f"  talent: {talent['display_name']} ({talent['id']})")
    echo(f"  consent: {out['consent_status']}")
    for consent in out["consents"]:
        echo(f"    {consent['id']}: {consent['status']}, valid until {consent['valid_until']}")
