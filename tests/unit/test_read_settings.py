"""flows/read_settings.py reads what Settings reads, or declines."""

from __future__ import annotations

from pathlib import Path

import pytest

from castkeep.flows.read_settings import read_settings
from castkeep.flows.settings import Settings

ENVIRONMENTS = [
    {},
    {"CASTKEEP_HOME": "/srv/castkeep"},
    {"castkeep_home": "/srv/lower", "Castkeep_Database__Url": "postgresql://u:p@db:5432/c"},
    {"CASTKEEP_DATABASE__URL": "postgresql+psycopg://u:p%40ss@db/c?sslmode=require",
     "CASTKEEP_STORAGE__KIND": "s3", "CASTKEEP_STORAGE__GROUP": "castkeep-readers"},
    {"CASTKEEP_SIGNING__TRUST_ANCHORS": '["/etc/ca/root.pem", "/etc/ca/other.pem"]',
     "CASTKEEP_STORAGE__KIND": "filesystem"},
    {"CASTKEEP_HOME": "relative/dir", "CASTKEEP_WEB__SESSION_MINUTES": "30", "OTHER": "x"},
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_reads_what_settings_reads(env, monkeypatch):
    for name in list(__import__("os").environ):
        if name.lower().startswith("castkeep_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    full = Settings()
    light = read_settings()
    assert light is not None
    assert light.home == full.home
    assert light.database_url == full.database.url
    assert light.storage_kind == full.storage.kind
    assert light.storage_group == full.storage.group
    assert list(light.trust_anchors) == list(full.signing.trust_anchors)


@pytest.mark.parametrize("env", [
    {"CASTKEEP_DATABASE": '{"url": "postgresql://u:p@db/c"}'},  # a section given whole
    {"castkeep_storage": '{"kind": "s3"}'},
    {"CASTKEEP_STORAGE__KIND": "ftp"},  # invalid: Settings reports it
    {"CASTKEEP_HOME": ""},
    {"CASTKEEP_SIGNING__TRUST_ANCHORS": "/etc/ca/root.pem"},  # not JSON
    {"CASTKEEP_SIGNING__TRUST_ANCHORS": '{"a": 1}'},
])
def test_declines_what_only_settings_reads(env):
    assert read_settings(env) is None


def test_default_home_is_the_platform_data_dir():
    light = read_settings({"UNRELATED": "1"})
    assert light is not None and light.home == Path(Settings.model_fields["home"].default_factory())
    assert light.database_url == "" and light.storage_kind == "filesystem"
