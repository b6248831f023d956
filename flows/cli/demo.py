"""`castkeep demo [--json]`."""

from __future__ import annotations

import json

import typer


def demo(
    as_json: bool = typer.Option(
        False, "--json",
        help='Print only JSON: {"assets": [{"id", "path", "state", "passed"}], '
        '"contact_sheets": [...], "refusals": [...]} (and more).',
    ),
) -> None:
    """Run the whole product on the embedded default: dev keys, sample portraits, a single and a
    group request with the classical engine, verification of every output, and a request that
    consent refuses. Safe to re-run."""
    from castkeep.flows.demo import demo as demo_flow
    from castkeep.flows.prefect_server import local_prefect
    from castkeep.flows.progress_display import showing_progress
    from castkeep.flows.runtime import load_settings

    load_settings()  # a bad CASTKEEP_ variable fails here with its name
    with local_prefect(), showing_progress(as_json):
        result = demo_flow()
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    typer.echo(f"castkeep demo (data dir {result['home']}, signing keys {result['keys']})")
    ing = result["ingest"]
    typer.echo(f"ingested sample portraits: {ing['accepted']} new, {ing['duplicates']} already "
               f"catalogued, {len(ing['rejected'])} rejected")
    for req in result["requests"]:
        typer.echo(f"\n{req['label']} request {req['request_id']}: {req['status']}")
        if req.get("variety") is not None:
            typer.echo(f"  variants differ by {req['variety']:.1f} grey levels on average "
                       "(mean pairwise, 256x320)")
        for r in req["refusals"]:
            typer.echo(f"  refused: {r}")
        for a in (x for x in result["assets"] if x["request"] == req["label"]):
            verdict = "PASS" if a["passed"] else "REJECTED"
            typer.echo(f"  variant {a['variant']}: {verdict}, {a['status']}, C2PA {a['state']}")
            typer.echo(f"    {a['path']}")
            scores = a["scores"]
            parts = [f"identity {s['value']:.3f}/{s['threshold']:.2f}"
                     for s in (scores.get("identity") or {}).values()]
            for kind in ("lighting", "camera"):
                if kind in scores:
                    s = scores[kind]
                    parts.append(f"{kind} error {s['value']:.1f}/{s['threshold']:g} deg")
            typer.echo(f"    {', '.join(parts)}")
            if a.get("reason") and not a["passed"]:
                typer.echo(f"    reason: {a['reason']}")
    if result["contact_sheets"]:
        typer.echo("\ncontact sheets:")
        for path in result["contact_sheets"]:
            typer.echo(f"  {path}")
    untrusted = [a for a in result["assets"] if a["state"] != "Trusted"]
    typer.echo(
        f"\n{len(result['assets'])} asset(s), {len(untrusted)} not Trusted; verify any file with "
        "`castkeep verify FILE`; inspect requests with `castkeep request show ID`"
    )
