"""flows/read_catalogue.py: read commands' connection, direct when it can be, else the full path."""

from __future__ import annotations

import json
import os

import psycopg
import pytest

from castkeep.flows.read_catalogue import catalogue_connection, object_store
from castkeep.flows.read_settings import read_settings
from castkeep.flows.settings import get_settings


def test_a_usable_catalogue_is_read_directly_and_read_only(runtime_env):
    assert read_settings() is not None
    with catalogue_connection() as conn:
        assert conn.read_only is True
        assert conn.execute("SELECT count(*) FROM talent").fetchone() == (0,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM talent")


def test_an_environment_only_settings_reads_takes_the_full_path(runtime_env, monkeypatch):
    """The database given as a whole JSON section: the light reader declines, open_runtime
    reads it, and the connection still reaches that catalogue."""
    url = os.environ["CASTKEEP_DATABASE__URL"]
    monkeypatch.delenv("CASTKEEP_DATABASE__URL")
    monkeypatch.setenv("CASTKEEP_DATABASE", json.dumps({"url": url}))
    get_settings.cache_clear()
    assert read_settings() is None
    with catalogue_connection() as conn:
        assert not conn.read_only  # the runtime's own pool connection
        assert conn.execute("SELECT current_database()").fetchone()[0] == url.rsplit("/", 1)[1]
    assert object_store().describe() == f"filesystem at {runtime_env / 'objects'}"


def test_the_filesystem_store_keeps_its_reader_group(runtime_env, monkeypatch):
    import grp

    group = grp.getgrgid(os.getgid()).gr_name
    monkeypatch.setenv("CASTKEEP_STORAGE__GROUP", group)
    store = object_store()
    assert store._gid == os.getgid()  # modes are set for the group, not tightened away from it
