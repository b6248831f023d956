"""`castkeep ingest PATH`: ingest reference portraits and their consent manifests."""

from __future__ import annotations

import json
import sys

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
    from castkeep.flows.settings import get_settings
    from castkeep.tasks.ingest import PROGRESS

    open_source(path, get_settings())  # an unusable PATH fails here, before any set-up
    bar = None if as_json else _ProgressBar()
    token = PROGRESS.set(bar.update if bar else None)
    try:
        with local_prefect():
            result = ingest_references(path, chunk_size=chunk_size)
    finally:
        PROGRESS.reset(token)
        if bar:
            bar.close()
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(f"accepted {summary['accepted']}, duplicates {summary['duplicates']}, "
               f"rejected {len(summary['rejected'])}")
    for item in summary["rejected"]:
        typer.echo(f"  rejected {item['file']}: {item['reason']}")


class _ProgressBar:
    """A progress bar on stderr (stdout carries only results)."""

    def __init__(self) -> None:
        self._progress = None
        self._task = None

    def update(self, done: int, total: int, outcome) -> None:  # noqa: ANN001
        if self._progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(TextColumn("ingesting"), BarColumn(), MofNCompleteColumn(),
                                      console=Console(file=sys.stderr), transient=True)
            self._progress.start()
            self._task = self._progress.add_task("ingest", total=total)
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
