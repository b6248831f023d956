"""A throwaway data dir with the shipped samples ingested and signing keys made: what the
request and web benchmarks start from. The bundled server is stopped and the dir removed after
(unless `keep`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def sample_catalogue(prefix: str, *, keep: bool = False) -> Iterator:
    """Yields the settings of a fresh CASTKEEP_HOME holding the ingested samples."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["CASTKEEP_HOME"] = str(tmp / "home")
    os.environ.setdefault("PREFECT_HOME", str(tmp / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no network to try
    from castkeep.flows.demo import ensure_keys, samples_dir
    from castkeep.flows.ingest_references import ingest_references
    from castkeep.flows.settings import get_settings

    settings = get_settings()
    try:
        ensure_keys(settings)
        ingest_references(str(samples_dir()))
        yield settings
    finally:
        try:
            from castkeep.db.server import stop_bundled_server

            stop_bundled_server(Path(os.environ["CASTKEEP_HOME"]))
        except Exception:  # noqa: BLE001 - best effort clean-up
            pass
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
