"""Flow: ingest reference portraits with their consent manifests, from a folder or an
`s3://bucket/prefix`. Idempotent: re-running the same input changes nothing.

    from castkeep.flows.ingest_references import ingest_references
    result = ingest_references("examples/references")
    result.summary()  # {"accepted": 3, "duplicates": 0, "rejected": []}
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.artifacts import create_table_artifact

from castkeep.flows.flow_type import flow
from castkeep.errors import ConfigurationError, NotFoundError
from castkeep.flows.settings import FacesSettings, Settings, get_settings
from castkeep.tasks.ingest import (
    PROGRESS,
    IngestContext,
    IngestOptions,
    IngestResult,
    chunks,
    ingest_jobs,
    plan_ingest,
)
from castkeep.tasks.ingest_sources import FolderSource, S3PrefixSource, Source
from castkeep.tasks.retry import retry_unless_user_error



@task(name="plan-ingest", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_user_error)
def plan_task(source: Source, at: dt.datetime):
    """List the source and match portraits to their consent manifests."""
    return plan_ingest(source, at=at)


@task(name="ingest-chunk", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_user_error, task_run_name="ingest-chunk-{index}")
def ingest_chunk(index: int, jobs: list, ctx: IngestContext, done: int = 0, total: int = 0):
    """Ingest a chunk of portraits. Retrying is safe: each portrait is idempotent (content
    addressed, one transaction, unique sha256) and a retry reports its own commits as accepted."""
    return ingest_jobs(jobs, ctx, done=done, total=total)

DEFAULT_CHUNK_SIZE = 16


def open_source(source: str, settings: Settings) -> Source:
    """A folder path, or `s3://bucket/prefix` read with the configured S3 endpoint and keys.
    NotFoundError (exit 2) when it is not usable."""
    if source.startswith("s3://"):
        bucket, _, prefix = source[len("s3://"):].partition("/")
        if not bucket:
            raise NotFoundError(f"{source}: no bucket; use s3://bucket/prefix")
        from minio import Minio

        import urllib3

        st = settings.storage
        # Few, quick retries: an unreachable endpoint should fail in seconds, not minutes.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5.0, read=30.0),
            retries=urllib3.Retry(total=2, backoff_factor=0.2,
                                  status_forcelist=[500, 502, 503, 504]))
        try:
            client = Minio(st.endpoint, access_key=st.access_key,
                           secret_key=st.secret_key.get_secret_value(), secure=st.secure,
                           region=st.region, http_client=http)
        except ValueError as exc:
            raise ConfigurationError(
                f"bad S3 endpoint {st.endpoint!r} ({exc}); set CASTKEEP_STORAGE__ENDPOINT"
            ) from exc
        src = S3PrefixSource(client, bucket, prefix)
        src.list()  # reachable and the bucket exists, or a clear error now
        return src
    path = Path(source).expanduser()
    if not path.exists():
        raise NotFoundError(f"{source}: no such folder; give a folder of portraits and manifests")
    if not path.is_dir():
        raise NotFoundError(f"{source}: not a folder; give the folder that holds the manifests")
    return FolderSource(path)


def encoder_from_settings(faces: FacesSettings, home: Path | None = None) -> Any:
    """The configured face encoder, loaded once per process."""
    from castkeep.flows.components import configured_encoder

    return configured_encoder(faces, home=home)


@flow(name="ingest-references", validate_parameters=True)
def ingest_references(source: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> IngestResult:
    """Ingest every portrait under `source` that a consent manifest names. Returns (and
    publishes as a table artifact) the accepted, duplicate and rejected portraits."""
    from castkeep.flows.runtime import open_runtime

    logger = get_run_logger()
    settings = get_settings()
    src = open_source(source, settings)
    runtime = open_runtime(settings)
    try:
        started = dt.datetime.now(dt.timezone.utc)
        plan = plan_task(src, started)
        total = len(plan.jobs)
        logger.info("%d portrait(s) to ingest, %d rejected while planning", total,
                    len(plan.rejected))
        progress = PROGRESS.get()
        if progress is not None:
            progress(0, total, None)
        ctx = IngestContext(
            source=src,
            sessions=runtime.sessions,
            store=runtime.store,
            encoder=encoder_from_settings(settings.faces, settings.home) if total else None,
            options=IngestOptions(
                actor=settings.acting_user,
                run_started=started,
                min_face_px=settings.faces.reference_min_face_px,
                min_sharpness=settings.faces.reference_min_sharpness,
            ),
        )
        outcomes = []
        done = 0
        for index, chunk in enumerate(chunks(plan.jobs, chunk_size)):
            outcomes.extend(ingest_chunk(index, chunk, ctx, done, total))
            done += len(chunk)
        result = IngestResult.collect(outcomes, plan.rejected)
    finally:
        runtime.close()
    summary = result.summary()
    logger.info("ingested %s: %d accepted, %d duplicate(s), %d rejected", src.label,
                summary["accepted"], summary["duplicates"], len(summary["rejected"]))
    create_table_artifact(
        key="ingest-references",
        table=result.table(),
        description=f"Ingest of {src.label}: {summary['accepted']} accepted, "
        f"{summary['duplicates']} duplicate(s), {len(summary['rejected'])} rejected",
    )
    return result
