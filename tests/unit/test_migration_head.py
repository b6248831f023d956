"""db/migration_head.py: the chain's head from the version files, as alembic computes it."""

from __future__ import annotations

import shutil

import pytest

from castkeep.db import migration_head
from castkeep.db.migrate import alembic_config
from castkeep.errors import DatabaseError


def test_head_is_alembics():
    from alembic.script import ScriptDirectory

    assert migration_head.head() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_two_heads_are_refused(tmp_path, monkeypatch):
    versions = tmp_path / "versions"
    shutil.copytree(migration_head.MIGRATIONS_DIR / "versions", versions)
    (versions / "9999_branch.py").write_text('revision = "9999"\ndown_revision = "0001"\n')
    monkeypatch.setattr(migration_head, "MIGRATIONS_DIR", tmp_path)
    with pytest.raises(DatabaseError, match="2 heads"):
        migration_head.head()


def test_only_the_newest_revision_is_current():
    assert migration_head.is_current(migration_head.head())
    assert not migration_head.is_current("0001") and not migration_head.is_current(None)
