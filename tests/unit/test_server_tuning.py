"""Machine-sized settings for the bundled PostgreSQL (pure function + the conf file it writes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from castkeep.db.server_tuning import (
    CONF_NAME,
    INCLUDE_LINE,
    GiB,
    Machine,
    MiB,
    this_machine,
    tuning_for,
    write_conf,
)


def _mb(value: str) -> int:
    assert value.endswith("MB"), value
    return int(value[:-2])


def test_this_machine_24_gib_2_cores():
    t = tuning_for(Machine(memory_bytes=24 * GiB, cpus=2, shm_bytes=12 * GiB))
    assert _mb(t["shared_buffers"]) == 6 * 1024  # a quarter
    assert _mb(t["effective_cache_size"]) == 12 * 1024
    assert _mb(t["maintenance_work_mem"]) == 3 * 1024  # an 1M-face HNSW graph builds in memory
    assert t["max_parallel_maintenance_workers"] == "1"  # the leader builds on the other core
    assert t["max_parallel_workers"] == "2"
    assert t["max_parallel_workers_per_gather"] == "1"
    assert 4 <= _mb(t["work_mem"]) <= 64


def test_small_container_stays_small_and_builds_serially_with_a_docker_shm():
    t = tuning_for(Machine(memory_bytes=2 * GiB, cpus=2, shm_bytes=64 * MiB))
    assert _mb(t["shared_buffers"]) == 256  # an eighth: the models need the rest
    assert _mb(t["maintenance_work_mem"]) == 256
    # A parallel build would put the graph in /dev/shm, which cannot hold it.
    assert t["max_parallel_maintenance_workers"] == "0"
    total = sum(_mb(t[k]) for k in ("shared_buffers", "maintenance_work_mem", "autovacuum_work_mem"))
    assert total * MiB < 2 * GiB / 2


def test_same_container_with_room_in_shm_builds_in_parallel():
    t = tuning_for(Machine(memory_bytes=2 * GiB, cpus=2, shm_bytes=1 * GiB))
    assert t["max_parallel_maintenance_workers"] == "1"


def test_large_machine_is_capped():
    t = tuning_for(Machine(memory_bytes=512 * GiB, cpus=64, shm_bytes=None))
    assert _mb(t["shared_buffers"]) == 8 * 1024
    assert _mb(t["maintenance_work_mem"]) == 4 * 1024
    assert _mb(t["autovacuum_work_mem"]) == 512
    assert _mb(t["work_mem"]) == 64
    assert t["max_parallel_maintenance_workers"] == "7"
    assert t["max_parallel_workers_per_gather"] == "4"
    assert int(t["max_worker_processes"]) >= int(t["max_parallel_workers"]) == 64


@pytest.mark.parametrize("cpus", [0, 1])
def test_one_core_has_no_parallel_workers(cpus):
    t = tuning_for(Machine(memory_bytes=8 * GiB, cpus=cpus))
    assert t["max_parallel_maintenance_workers"] == "0"
    assert t["max_parallel_workers_per_gather"] == "0"
    assert t["max_parallel_workers"] == "1"


def test_tiny_memory_keeps_postgres_minimums():
    t = tuning_for(Machine(memory_bytes=100 * MiB, cpus=1))
    assert _mb(t["shared_buffers"]) >= 128
    assert _mb(t["maintenance_work_mem"]) >= 64
    assert _mb(t["work_mem"]) >= 4


def test_this_machine_reads_something_plausible():
    m = this_machine()
    assert m.cpus >= 1
    assert 64 * MiB < m.memory_bytes < 64 * 1024 * GiB


def test_write_conf_writes_the_settings_and_includes_them_once(tmp_path: Path):
    (tmp_path / "postgresql.conf").write_text("max_connections = 100\n")
    machine = Machine(memory_bytes=24 * GiB, cpus=2, shm_bytes=12 * GiB)
    for _ in range(2):
        path = write_conf(tmp_path, machine)
    text = path.read_text()
    assert path.name == CONF_NAME
    assert "shared_buffers = '6144MB'" in text
    assert "max_parallel_maintenance_workers = '1'" in text
    assert (tmp_path / "postgresql.conf").read_text().count(INCLUDE_LINE) == 1
