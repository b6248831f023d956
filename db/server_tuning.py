"""Server settings for the bundled PostgreSQL, sized from the machine it runs on.

`tuning_for` is a pure function of the machine (memory, cores, /dev/shm); `this_machine` reads
those from the system, honouring a container's cgroup limits. db/server.py writes the result to
``castkeep_tuning.conf`` in PGDATA at every start (so a resized machine is re-sized) and includes
it from postgresql.conf; ``ALTER SYSTEM`` (postgresql.auto.conf, read last) still overrides any of
these values, which is how a user tunes by hand.

castkeep shares its machine with the face and edit models, so the server gets a quarter of the
memory (an eighth on small machines) rather than the lion's share.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
GiB = 1024 * MiB

CONF_NAME = "castkeep_tuning.conf"
INCLUDE_LINE = f"include_if_exists = '{CONF_NAME}'"
MAX_CONNECTIONS = 100  # as set by initdb in db/server.py


@dataclass(frozen=True)
class Machine:
    memory_bytes: int
    cpus: int
    shm_bytes: int | None = None  # free space of /dev/shm (parallel workers' shared memory); None: unknown


def tuning_for(machine: Machine) -> dict[str, str]:
    """PostgreSQL settings (name -> value as postgresql.conf spells it) for `machine`."""
    mem = max(256 * MiB, int(machine.memory_bytes))
    cpus = max(1, int(machine.cpus))
    small = mem <= 4 * GiB
    shared_buffers = _clamp(mem // (8 if small else 4), 128 * MiB, 8 * GiB)
    # Index builds (an HNSW graph is built in memory when it fits: 1M 128-d faces need ~1 GB).
    maintenance = _clamp(mem // 8, 64 * MiB, 4 * GiB)
    # Autovacuum workers would each take maintenance_work_mem otherwise.
    autovacuum = _clamp(mem // 32, 32 * MiB, 512 * MiB)
    # The leader builds too: one worker per other core.
    maintenance_workers = min(cpus - 1, 7)
    if maintenance_workers and machine.shm_bytes is not None and machine.shm_bytes < maintenance + 256 * MiB:
        # A parallel HNSW build keeps its graph in dynamic shared memory (/dev/shm, 64 MB in a
        # default Docker container): a serial in-memory build beats a parallel one that spills.
        maintenance_workers = 0
    per_gather = min(max(1, cpus // 2), 4) if cpus > 1 else 0
    work_mem = _clamp((mem - shared_buffers) // (MAX_CONNECTIONS * 3), 4 * MiB, 64 * MiB)
    return {
        "shared_buffers": _size(shared_buffers),
        "effective_cache_size": _size(mem // 2),
        "maintenance_work_mem": _size(maintenance),
        "autovacuum_work_mem": _size(autovacuum),
        "work_mem": _size(work_mem),
        "max_worker_processes": str(max(8, cpus + 2)),
        "max_parallel_workers": str(cpus),
        "max_parallel_workers_per_gather": str(per_gather),
        "max_parallel_maintenance_workers": str(maintenance_workers),
    }


def conf_text(settings: dict[str, str], machine: Machine) -> str:
    gib = machine.memory_bytes / GiB
    lines = [
        "# Written by castkeep at every start of its bundled server, sized from the machine",
        f"# ({gib:.1f} GiB memory, {machine.cpus} cores). Do not edit: use ALTER SYSTEM to override.",
    ]
    lines += [f"{k} = '{v}'" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


def write_conf(pgdata: Path, machine: Machine | None = None) -> Path:
    """Write the tuning file into `pgdata` and make postgresql.conf include it (once)."""
    machine = machine or this_machine()
    path = Path(pgdata) / CONF_NAME
    path.write_text(conf_text(tuning_for(machine), machine))
    main = Path(pgdata) / "postgresql.conf"
    if INCLUDE_LINE not in main.read_text():
        with open(main, "a") as fh:
            fh.write(f"\n# castkeep: machine-sized settings (ALTER SYSTEM overrides them)\n{INCLUDE_LINE}\n")
    return path


def this_machine() -> Machine:
    """Memory and cores available to this process (cgroup limits included), and free /dev/shm."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _cgroup_memory_limit()
    if limit:
        mem = min(mem, limit)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpu_quota()
    if quota:
        cpus = max(1, min(cpus, quota))
    try:
        st = os.statvfs("/dev/shm")
        shm = st.f_bavail * st.f_frsize
    except OSError:
        shm = None
    return Machine(memory_bytes=mem, cpus=cpus, shm_bytes=shm)


def _cgroup_memory_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max" or a huge number: no limit
            return int(text)
    return None


def _cgroup_cpu_quota() -> int | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, int(quota) // int(period))


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


def _size(n: int) -> str:
    """Bytes as a whole number of MB (PostgreSQL's unit suffix)."""
    return f"{max(1, n // MiB)}MB"
