"""The bundled PostgreSQL runs with the settings sized from this machine; ALTER SYSTEM overrides them."""

from __future__ import annotations

from pathlib import Path

import psycopg

from castkeep.db import server
from castkeep.db.server_tuning import MiB, this_machine, tuning_for

KEYS = ("shared_buffers", "maintenance_work_mem", "effective_cache_size", "work_mem")


def _settings(bundled: server.BundledServer) -> dict[str, int | str]:
    url = bundled.superuser_url("postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        sizes = {k: conn.execute("SELECT pg_size_bytes(current_setting(%s))", (k,)).fetchone()[0] for k in KEYS}
        workers = conn.execute("SHOW max_parallel_maintenance_workers").fetchone()[0]
    return {**sizes, "max_parallel_maintenance_workers": workers}


def _expected() -> dict[str, int | str]:
    t = tuning_for(this_machine())
    return {**{k: int(t[k][:-2]) * MiB for k in KEYS},
            "max_parallel_maintenance_workers": t["max_parallel_maintenance_workers"]}


def test_server_runs_machine_sized_and_alter_system_overrides_across_restarts(bundled_data_dir: Path):
    # One server for both checks: an initdb costs seconds.
    bundled = server.start_bundled_server(bundled_data_dir, fast=True)
    got = _settings(bundled)
    assert got == _expected()
    # Not PostgreSQL's defaults (128 MB, 64 MB): the file was read.
    assert got["shared_buffers"] != 128 * MiB or got["maintenance_work_mem"] != 64 * MiB

    url = bundled.superuser_url("postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_buffers = '200MB'")
    server.stop_bundled_server(bundled_data_dir)
    # The next start rewrites the tuning file; the user's own setting still wins.
    bundled = server.start_bundled_server(bundled_data_dir, fast=True)
    got = _settings(bundled)
    assert got["shared_buffers"] == 200 * MiB
    assert got["maintenance_work_mem"] == _expected()["maintenance_work_mem"]
