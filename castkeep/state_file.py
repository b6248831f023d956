"""The lock and state file the long-lived local servers (bundled PostgreSQL, local Prefect
server) share between castkeep processes: one process starts a server, the others find it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def locked(lock_path: Path, *, mode: int = 0o777) -> Iterator[None]:
    """An exclusive lock across processes (released by the kernel if the holder dies)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True, mode=mode)
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_state(path: Path, state: dict) -> None:
    """Replace the state file atomically (a reader never sees half of it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)
