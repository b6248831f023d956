"""The newest revision of the migration chain, from the version files alone: read commands
compare it with the catalogue's without importing alembic or SQLAlchemy."""

from __future__ import annotations

import re
from pathlib import Path

from castkeep.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_REVISION = re.compile(r'^(down_)?revision\s*(?::[^=]*)?=\s*["\']?([\w]+|None)["\']?', re.M)


def head() -> str:
    """The newest revision in the migration chain, read from the version files' `revision` and
    `down_revision` lines."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = {bool(down): rev for down, rev in _REVISION.findall(path.read_text())}
        if False in found:
            revisions.add(found[False])
            parents.add(found.get(True))
    heads = sorted(revisions - parents)
    if len(heads) != 1:
        raise DatabaseError(f"the migration chain has {len(heads)} heads; expected one")
    return heads[0]


def is_current(revision: str | None) -> bool:
    """Whether a catalogue at `revision` (None: never migrated) is at the code's newest."""
    return revision == head()
