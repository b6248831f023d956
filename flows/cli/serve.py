"""`castkeep serve`: run the deployments of prefect.yaml with their schedules."""

from __future__ import annotations

from pathlib import Path

import typer


def serve(
    setup: bool = typer.Option(
        False, "--setup", help="First create the work pools (process type) and the `gpu` concurrency limit."
    ),
    no_serve: bool = typer.Option(False, "--no-serve", help="Only do --setup, then exit."),
    only: list[str] = typer.Option([], "--only", metavar="NAME",
                                   help="Serve just this deployment (repeatable)."),
    prefect_file: Path = typer.Option(
        None, "--prefect-file",
        help="prefect.yaml to read (default: the one shipped with castkeep, castkeep/flows/prefect.yaml).",
    ),
) -> None:
    """Serve castkeep's deployments (ingest, fulfil-request, fulfil-variant, audit-nightly,
    expire-consents).

    Uses the Prefect API in PREFECT_API_URL; when none is set, castkeep's local Prefect server
    of this data dir (started if needed and left running; `castkeep stop` stops it).
    """
    from castkeep.errors import ConfigurationError
    from castkeep.flows import serve as plan_mod
    from castkeep.flows.settings import get_settings

    settings = get_settings()
    plan = plan_mod.load_plan(prefect_file)
    if only:
        unknown = sorted(set(only) - {d.name for d in plan})
        if unknown:
            raise ConfigurationError(
                f"unknown deployment(s) {', '.join(unknown)}; prefect.yaml has "
                + ", ".join(d.name for d in plan)
            )
        plan = [d for d in plan if d.name in only]

    def run(api_url: str) -> None:
        import asyncio

        if setup:
            result = asyncio.run(plan_mod.setup(plan, gpu_slots=settings.prefect.gpu_concurrency))
            typer.echo(
                f"work pools created: {', '.join(result.work_pools_created) or '-'}; "
                f"existing: {', '.join(result.work_pools_existing) or '-'}; "
                f"gpu concurrency limit: {result.gpu_limit}"
            )
        if no_serve:
            return
        from prefect import serve as prefect_serve

        deployments = plan_mod.to_runner_deployments(plan, dask_address=settings.prefect.dask_address)
        typer.echo(f"serving {', '.join(d.name for d in plan)} against {api_url}")
        prefect_serve(*deployments, print_starting_message=False)

    from castkeep.flows.prefect_server import local_prefect

    # Flow runs start as subprocesses: local_prefect puts the API URL in their environment too.
    with local_prefect(settings) as api_url:
        run(api_url)
