"""tasks/quick_reads.py: the database part of `castkeep status` without SQLAlchemy."""

from __future__ import annotations

from castkeep.db.migration_head import head
from castkeep.tasks.catalogue_admin import database_status, redact_url
from castkeep.tasks.quick_reads import running_database_report


def test_a_running_catalogue_reports_what_the_full_path_reports(clean_db, tmp_path):
    report = running_database_report(tmp_path, clean_db)
    full = database_status(clean_db)
    assert report == {"url": redact_url(clean_db), "postgresql": full.postgresql,
                      "pgvector": full.pgvector, "revision": full.revision, "head": head(),
                      "healthy": True}
    assert ":***@" in report["url"]


def test_a_data_dir_without_a_running_server_is_left_to_the_full_path(tmp_path):
    assert running_database_report(tmp_path) is None
