"""`castkeep request submit FILE` (shorthand `castkeep request FILE`), `castkeep request
show|resume ID`, `castkeep request list`, `castkeep approve`, `castkeep asset show|export`, and
the publication register: `castkeep asset publish|placements`."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

EXIT_ALL_PASSED, EXIT_SOME_REJECTED, EXIT_REFUSED = 0, 1, 3


class _RequestGroup(TyperGroup):
    """`castkeep request submit FILE` submits, and `castkeep request FILE` is its shorthand (a
    first word that is not a command is a file); `show|resume ID` act on a catalogued one."""

    def parse_args(self, ctx, args):  # noqa: ANN001
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["submit", *args]
        return super().parse_args(ctx, args)


request_app = typer.Typer(
    cls=_RequestGroup,
    no_args_is_help=True,
    help="Fulfil a marketing request: `castkeep request submit FILE [--json]` (or "
    "`castkeep request FILE`); then `castkeep request show ID` or `castkeep request resume ID`; "
    "`castkeep request list` lists request ids.",
)
asset_app = typer.Typer(no_args_is_help=True, help="Catalogued assets: list them, show one, "
                        "export its file, record where it went live (publish, placements).")


def exit_code_for(result: dict[str, Any]) -> int:
    if result["status"] == "refused":
        return EXIT_REFUSED
    if any(not a["passed"] for a in result["assets"]):
        return EXIT_SOME_REJECTED
    return EXIT_ALL_PASSED


def _public(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "stats"}


def _document(request_id: str) -> dict[str, Any]:
    """The request document the web API answers with (tasks/quick_reads.request_document), with
    each asset's local `path` and the `contact_sheet`."""
    from castkeep.flows.read_catalogue import catalogue_and_store
    from castkeep.tasks.quick_reads import parse_id, request_document

    rid = parse_id(request_id, "request")
    with catalogue_and_store() as (conn, store):
        found = request_document(conn, rid)
    return found.with_locations(store)


def _print(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(doc, default=str))
        return
    progress = doc["progress"]
    typer.echo(f"request {doc['id']}: {doc['status']} ({progress['done']}/{progress['total']} "
               "variants done)")
    for r in doc["refusals"]:
        typer.echo(f"  refused: {r}")
    for a in doc["assets"]:
        verdict = "PASS" if a["passed"] else "REJECTED"
        typer.echo(f"  variant {a['variant']}: {verdict} {a['status']}  asset {a['id']}")
        typer.echo(f"    file: {a['path']}")
        typer.echo(f"    scores: {_compact(a['scores'])}")
        for reason in a["reasons"] if not a["passed"] else ():
            typer.echo(f"    reason: {reason}")
    if doc.get("contact_sheet"):
        typer.echo(f"  contact sheet: {doc['contact_sheet']}")
    if doc["status"] == "awaiting_approval":
        typer.echo(
            f"  approve with: castkeep approve {doc['id']} --assets ID[,ID...] "
            "--reviewer NAME"
        )


def _compact(scores: dict[str, Any]) -> str:
    parts = []
    for talent, s in (scores.get("identity") or {}).items():
        parts.append(f"identity[{talent[:8]}]={s['value']:.3f}{'' if s['passed'] else '!'}")
    for kind in ("extra_faces", "lighting", "camera", "quality"):
        s = scores.get(kind)
        if s is not None:
            parts.append(f"{kind}={s['value']:.2f}{'' if s['passed'] else '!'}")
    return " ".join(parts) or "-"


@request_app.command("submit")
def submit(
    file: Path = typer.Argument(..., help="Request file (YAML or JSON)."),
    as_json: bool = typer.Option(
        False, "--json",
        help='Print only JSON, the document of `castkeep request show ID --json`: {"id", '
        '"status", "progress", "assets": [{"id", "variant", "status", "passed", "scores", '
        '"reasons", "path"}], "refusals", ...}.',
    ),
    detach: bool = typer.Option(
        False, "--detach",
        help="Catalogue the request, start a run of the fulfil-request deployment and return "
        "(`castkeep web` or a worker runs it); exit 5 when nothing serves that deployment.",
    ),
) -> None:
    """Validate a request file, catalogue it and fulfil it. Exit 0 when every variant passed,
    1 when some were rejected, 3 when refused (consent or licence)."""
    from castkeep.flows.components import load_request_file
    from castkeep.flows.prefect_server import local_prefect
    from castkeep.flows.runtime import load_settings, open_runtime

    settings = load_settings()
    spec = load_request_file(file, settings)  # a bad file fails before anything starts
    from castkeep.flows.fulfil_request import fulfil_request, submit_request

    if detach:
        _submit_detached(settings, spec, as_json)
        return
    with open_runtime(settings) as runtime:
        request_id = submit_request(runtime, spec, actor=settings.acting_user)
    if not as_json:
        typer.echo(f"request {request_id} submitted ({spec.variants} variant(s))", err=True)
    from castkeep.flows.progress_display import showing_progress

    with local_prefect(), showing_progress(as_json):
        fulfil_request(str(request_id))
    doc = _document(str(request_id))
    _print(doc, as_json)
    raise typer.Exit(exit_code_for(doc))


def _submit_detached(settings, spec, as_json: bool) -> None:
    from castkeep.flows.dispatch import require_fulfil_worker, start_fulfil_run
    from castkeep.flows.fulfil_request import submit_request
    from castkeep.flows.prefect_server import local_prefect
    from castkeep.flows.runtime import open_runtime

    with local_prefect(settings):
        require_fulfil_worker()  # before anything is catalogued
        with open_runtime(settings) as runtime:
            request_id = submit_request(runtime, spec, actor=settings.acting_user)
        flow_run_id = start_fulfil_run(str(request_id), settings.acting_user)
    if as_json:
        typer.echo(json.dumps({"request_id": str(request_id), "status": "received",
                               "flow_run_id": flow_run_id}))
    else:
        typer.echo(f"request {request_id} submitted ({spec.variants} variant(s)); "
                   f"`castkeep request show {request_id}` shows its progress")


@request_app.command("show")
def show(
    request_id: str = typer.Argument(..., help="Request id."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """A request's status, progress, assets, scores and refusals; with --json the web API's
    document (GET /api/v1/requests/ID), each asset with its local `path`."""
    _print(_document(request_id), as_json)


@request_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print only JSON.")) -> None:
    """The most recent requests."""
    from castkeep.flows.read_catalogue import catalogue_connection
    from castkeep.tasks.quick_reads import recent_requests

    with catalogue_connection() as conn:
        rows = recent_requests(conn)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['id']}  {r['status']:<18} {r['created_at'][:19]}  {r['campaign']}")


@request_app.command("resume")
def resume(
    request_id: str = typer.Argument(..., help="Request id (see `castkeep request list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Finish a request that was interrupted: finished variants are kept, not recomputed."""
    from castkeep.flows.fulfil_request import fulfil_request
    from castkeep.flows.prefect_server import local_prefect
    from castkeep.flows.progress_display import showing_progress
    from castkeep.tasks.catalogue_views import parse_request_id

    rid = str(parse_request_id(request_id))
    with local_prefect(), showing_progress(as_json):
        fulfil_request(rid)
    doc = _document(rid)
    _print(doc, as_json)
    raise typer.Exit(exit_code_for(doc))


def approve(
    request_id: str = typer.Argument(..., help="Request id (awaiting_approval)."),
    assets: list[str] = typer.Option(
        ..., "--assets", help="Asset ids to publish (repeat the option or separate with commas)."
    ),
    reviewer: str = typer.Option(..., "--reviewer", help="Who approves (recorded in the audit log)."),
    close: bool = typer.Option(
        False, "--close", help="Also reject the other candidates as not selected (ends the review)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Approve and publish chosen assets of a request that waits for approval. Its other
    candidates keep waiting for a decision unless --close; the request completes when none is
    left."""
    from castkeep.flows.approve import approve_request
    from castkeep.flows.prefect_server import local_prefect

    ids = [part.strip() for item in assets for part in item.split(",") if part.strip()]
    with local_prefect():
        result = approve_request(request_id, ids, reviewer, close)
    if as_json:
        typer.echo(json.dumps(_public(result), default=str))
        return
    typer.echo(f"request {result['request_id']}: {result['status']}; published "
               f"{len(result['published'])} asset(s), reviewer {result['reviewer']}")
    for aid in result["published"]:
        typer.echo(f"  published {aid}")


@asset_app.command("list")
def asset_list(
    status: str = typer.Option(None, "--status",
                               help="Only assets with this status: candidate, approved, "
                               "rejected, published or quarantined."),
    limit: int = typer.Option(100, "--limit", help="At most this many (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Catalogued assets, newest first: id, status, request and variant, and file."""
    from castkeep.flows.read_catalogue import catalogue_and_store
    from castkeep.tasks.asset_list import list_assets

    with catalogue_and_store() as (conn, store):
        rows = list_assets(conn, store, status=status, limit=limit)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no assets" + (f" with status {status}" if status else "")
                   + "; `castkeep request submit FILE` makes some")
        return
    for r in rows:
        variant = "-" if r["variant"] is None else r["variant"]
        typer.echo(f"{r['id']}  {r['status']:<11}  {r['created_at'][:19]}  request "
                   f"{r['request_id'] or '-'} variant {variant}")
        typer.echo(f"    file: {r['path']}")


@asset_app.command("show")
def asset_show(
    asset_id: str = typer.Argument(..., help="Asset id."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """An asset's status, scores, lineage and file."""
    from castkeep.flows.read_catalogue import catalogue_and_store
    from castkeep.tasks.quick_reads import asset_details

    with catalogue_and_store() as (conn, store):
        info = asset_details(conn, store, asset_id)
    if as_json:
        typer.echo(json.dumps(info, default=str))
        return
    for key, value in info.items():
        typer.echo(f"{key}: {value}")


@asset_app.command("export")
def asset_export(
    asset_id: str = typer.Argument(..., help="Asset id."),
    output: Path = typer.Option(
        ..., "-o", "--output",
        help="File to write the signed image to, or an existing folder to write "
        "castkeep-<asset id>.<ext> in.",
    ),
    force: bool = typer.Option(
        False, "--force",
        help="Export a quarantined or rejected asset anyway (recorded in the audit log).",
    ),
) -> None:
    """Write an asset's signed file (checked against the catalogue's sha256). A quarantined or
    rejected asset is refused (exit 4) unless --force."""
    from castkeep.errors import CastkeepError, WithdrawnError
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.catalogue_admin import record_forced_export
    from castkeep.tasks.catalogue_views import asset_file

    with open_runtime() as runtime:
        with runtime.sessions() as session:
            asset = asset_file(session, asset_id)
        if output.is_dir():  # decided before the object is read
            output = output / f"castkeep-{asset.id}{Path(asset.object_key).suffix}"
        if asset.withdrawn and not force:
            raise WithdrawnError(
                f"asset {asset.id} is {asset.status} in the catalogue and must not be used; "
                "export it anyway with --force (recorded in the audit log)"
            )
        data = runtime.store.get_bytes(asset.object_key)
        if asset.withdrawn:  # logged before the file is written: no forced export goes unrecorded
            # The acting user is the OS user (never a typed-in name).
            with runtime.sessions.begin() as session:
                record_forced_export(session, asset, actor=runtime.settings.acting_user)
    if hashlib.sha256(data).hexdigest() != asset.sha256:
        raise CastkeepError(
            f"stored object {asset.object_key} does not match asset {asset_id}'s sha256; it was "
            "altered: run `castkeep audit` and do not use this file"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    if asset.withdrawn:
        print(f"warning: asset {asset_id} is {asset.status}; exported with --force (recorded in "
              "the audit log): do not publish it", file=sys.stderr)
    typer.echo(str(output))


@asset_app.command("publish")
def asset_publish(
    asset_id: str = typer.Argument(..., help="Asset id (a published asset)."),
    channel: str = typer.Option(..., "--channel", help="Where it went live: web, social, print, ..."),
    url: str = typer.Option(..., "--url", help="The page it is live at (http or https)."),
    territory: str = typer.Option(
        None, "--territory", help="ISO 3166-1 alpha-2 code (default: the asset's recorded territory)."),
    until: str = typer.Option(None, "--until", help="Last day it stays live (YYYY-MM-DD)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Record where a published asset went live. The consent of every depicted talent is checked
    again for this channel and territory now (and until --until); refused: exit 3, withdrawn
    asset: exit 4. Recorded in the audit log with the acting user."""
    import datetime as dt

    from castkeep.errors import SpecError
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.placements import publish as record

    last_day = None
    if until is not None:
        try:
            last_day = dt.date.fromisoformat(until.strip())
        except ValueError:
            raise SpecError(f"--until {until!r} is not a date; use YYYY-MM-DD") from None
    with open_runtime() as runtime:
        placed = record(runtime, asset_id=asset_id, channel=channel, url=url, territory=territory,
                        until=last_day, actor=runtime.settings.acting_user)
    if as_json:
        typer.echo(json.dumps(placed))
        return
    state = "recorded" if placed["recorded"] else "already recorded"
    typer.echo(f"placement {placed['id']} {state}: asset {placed['asset_id']} on "
               f"{placed['channel']} in {placed['territory']} at {placed['url']}"
               + (f" until {placed['until']}" if placed["until"] else ""))


@asset_app.command("placements")
def asset_placements(
    asset_id: str = typer.Argument(..., help="Asset id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Where an asset went live (the publication register), oldest first."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.placements import asset_placements as placements_of

    with open_runtime() as runtime:
        rows = placements_of(runtime, asset_id)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo(f"asset {asset_id} has no recorded placements")
    for p in rows:
        typer.echo(f"{p['id']}  {p['channel']:<9} {p['territory']:<5} {p['url']}"
                   + (f" (until {p['until']})" if p["until"] else ""))
