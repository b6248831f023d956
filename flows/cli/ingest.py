"""`castkeep ingest PATH`: ingest reference portraits and their consent manifests."""

from __future__ import annotations

import json

import typer


def ingest(
    path: str = typer.Argument(..., help="A folder of portraits and consent manifests, or "
                               "s3://bucket/prefix (read with the configured S3 endpoint)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON summary: "
                                 '{"accepted", "duplicates", "rejected": [{"file", "reason"}]}.'),
    chunk_size: int = typer.Option(16, "--chunk-size", min=1, help="Portraits per task run."),
) -> None:
    """Ingest every portrait a consent manifest names. Re-running is safe (duplicates change
    nothing). Exit 0 even when some portraits are rejected (they are listed); exit 2 when PATH
    itself is unusable."""
    from castkeep.flows.ingest_references import ingest_references, open_source
    from castkeep.flows.prefect_server import local_prefect
    from castkeep.flows.progress_display import showing_progress
    from castkeep.flows.settings import get_settings

    open_source(path, get_settings())  # an unusable PATH fails here, before any set-up
    with local_prefect(), showing_progress(as_json):
        result = ingest_references(path, chunk_size=chunk_size)
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(f"accepted {summary['accepted']}, duplicates {summary['duplicates']}, "
               f"rejected {len(summary['rejected'])}")
    for item in summary["rejected"]:
        typer.echo(f"  rejected {item['file']}: {item['reason']}")

