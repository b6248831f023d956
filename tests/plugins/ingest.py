"""Ingest fixtures: consent manifests on disk, copies of the sample references, augmented
portraits, and `ingested_catalogue` (the shipped samples ingested into a clean catalogue)."""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "castkeep" / "samples" / "references"
SAMPLE_TALENT = {"demo-talent-a": ("obama.jpg", "obama2.jpg"), "demo-talent-b": ("biden.jpg",)}
SAMPLE_CONSENT_REFS = {"demo-talent-a": "demo-consent-a-2025", "demo-talent-b": "demo-consent-b-2025"}


def manifest_doc(portraits: list[str], *, ref: str = "talent-x", release: str = "release.txt",
                 **overrides: Any) -> dict[str, Any]:
    """A valid consent manifest (as a mapping) for `portraits`; override any field."""
    doc: dict[str, Any] = {
        "talent": {"external_ref": ref, "display_name": f"Person {ref}"},
        "portraits": list(portraits),
        "release_document": release,
        "valid_from": "2024-01-01",
        "valid_until": "2035-12-31",
        "scope": {"channels": ["web", "social"], "territories": ["FR", "DE", "US"],
                  "purposes": ["advertising"], "edits": ["lighting", "camera"]},
        "synthetic_likeness": True,
        "ai_training": False,
        "signed_by": f"Person {ref}",
    }
    doc.update(overrides)
    return doc


def write_manifest(folder: Path, name: str, doc: dict[str, Any], *,
                   release_text: str | None = "Release (test document)\n") -> Path:
    """Write `doc` as YAML or JSON (by `name`'s suffix) and, unless None, its release document."""
    import json

    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if name.endswith(".json"):
        path.write_text(json.dumps(doc), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    docs = [doc] if "consents" not in doc else doc["consents"]
    if release_text is not None:
        for d in docs:
            rel = d.get("release_document")
            if rel and "/.." not in f"/{rel}" and not rel.startswith("/"):
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    target.write_text(release_text + f"({d['talent'].get('external_ref')})\n")
    return path


def augment_jpeg(rgb, i: int, *, quality: int = 90) -> bytes:
    """A distinct JPEG of the same face: a small crop, optional mirror, brightness change."""
    import numpy as np
    from PIL import Image

    h, w = rgb.shape[:2]
    dx, dy = (i * 7) % max(1, w // 12), (i * 5) % max(1, h // 12)
    out = rgb[dy:h - ((i * 3) % max(1, h // 14)), dx:w - ((i * 11) % max(1, w // 14))]
    if i % 2:
        out = out[:, ::-1]
    gain = 0.85 + (i % 7) * 0.05
    out = np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(out)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture
def sample_references(tmp_path: Path) -> Path:
    """A private copy of castkeep/samples/references (tests may add or break files in it)."""
    target = tmp_path / "references"
    shutil.copytree(SAMPLES, target)
    return target


@pytest.fixture(scope="session")
def sample_rgb() -> dict[str, Any]:
    from castkeep.models.imaging import load_image

    return {name: load_image(SAMPLES / name).rgb for name in ("obama.jpg", "obama2.jpg", "biden.jpg")}


@dataclass
class IngestedCatalogue:
    """The shipped samples ingested into a clean catalogue (CASTKEEP_HOME = `home`)."""

    home: Path
    result: Any  # castkeep.tasks.ingest.IngestResult
    talent_ids: dict[str, str] = field(default_factory=dict)  # external_ref -> talent id
    consent_ids: dict[str, str] = field(default_factory=dict)  # external_ref -> consent id
    reference_ids: dict[str, str] = field(default_factory=dict)  # file name -> reference id


def _collect_ids(cat: IngestedCatalogue) -> None:
    from sqlalchemy import select

    from castkeep.db import schema
    from castkeep.flows.runtime import open_runtime

    with open_runtime() as runtime, runtime.sessions() as session:
        for t in session.scalars(select(schema.Talent)):
            cat.talent_ids[t.external_ref] = str(t.id)
        for c in session.scalars(select(schema.Consent)):
            ref = next(k for k, v in cat.talent_ids.items() if v == str(c.talent_id))
            cat.consent_ids[ref] = str(c.id)
        for r in session.scalars(select(schema.ReferencePortrait)):
            cat.reference_ids[r.source_name] = str(r.id)


@dataclass
class IngestedTemplate:
    database: str
    url: str
    catalogue: IngestedCatalogue


@pytest.fixture(scope="session")
def ingested_template(pg_server_url: str, prefect_harness, tmp_path_factory) -> Any:
    """The samples ingested once per test session through the real flow, into a template
    database and data dir; `ingested_catalogue` clones both for each test (CREATE DATABASE ...
    TEMPLATE is a file copy: far cheaper than detecting and embedding the faces again)."""
    import os
    import secrets

    import psycopg
    from psycopg import sql

    from castkeep.db.migrate import upgrade
    from castkeep.flows.ingest_references import ingest_references
    from castkeep.flows.settings import get_settings
    from tests.plugins.db import _plain, _with_database

    name = f"castkeep_tmpl_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(pg_server_url, name)
    home = tmp_path_factory.mktemp("ingested-home")
    try:
        upgrade(url)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CASTKEEP_HOME", str(home))
            mp.setenv("CASTKEEP_DATABASE__URL", url)
            mp.delenv("CASTKEEP_STORAGE__KIND", raising=False)
            get_settings.cache_clear()
            result = ingest_references(str(SAMPLES))
            assert result.summary() == {"accepted": 3, "duplicates": 0, "rejected": []}
            cat = IngestedCatalogue(home=home, result=result)
            _collect_ids(cat)
        get_settings.cache_clear()
        yield IngestedTemplate(database=name, url=url, catalogue=cat)
    finally:
        with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _clone(pg_server_url: str, template: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    from tests.plugins.db import _plain

    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        # A template may have no other sessions: end any the ingest left in a pool.
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                     (template,))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)))


@pytest.fixture
def ingested_catalogue(runtime_env: Path, request: pytest.FixtureRequest,
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[IngestedCatalogue]:
    """The shipped samples ingested into the test's own catalogue (a clone of the session's
    template: the real ingest flow ran once). Demo talent A (external ref "demo-talent-a",
    obama.jpg + obama2.jpg) and B ("demo-talent-b", biden.jpg), each with one active consent:
    web/social advertising in US, GB, FR, DE, edits lighting, camera, group_composite, synthetic
    likeness, valid 2025-01-01..2030-12-31. With the S3 store the samples are ingested per test."""
    import os
    import secrets

    import psycopg
    from psycopg import sql

    from castkeep.flows.settings import get_settings
    from tests.plugins.db import _plain, _with_database

    request.getfixturevalue("prefect_harness")  # the tests that use it run flows
    if os.environ.get("CASTKEEP_STORAGE__KIND", "filesystem") == "s3":
        from castkeep.flows.ingest_references import ingest_references

        result = ingest_references(str(SAMPLES))
        assert result.summary() == {"accepted": 3, "duplicates": 0, "rejected": []}
        cat = IngestedCatalogue(home=runtime_env, result=result)
        _collect_ids(cat)
        yield cat
        return

    template = request.getfixturevalue("ingested_template")
    server = request.getfixturevalue("pg_server_url")
    name = f"castkeep_test_{os.getpid()}_{secrets.token_hex(4)}"
    _clone(server, template.database, name)
    try:
        shutil.copytree(template.catalogue.home, runtime_env, dirs_exist_ok=True)
        monkeypatch.setenv("CASTKEEP_DATABASE__URL", _with_database(server, name))
        get_settings.cache_clear()
        src = template.catalogue
        yield IngestedCatalogue(home=runtime_env, result=src.result,
                                talent_ids=dict(src.talent_ids), consent_ids=dict(src.consent_ids),
                                reference_ids=dict(src.reference_ids))
    finally:
        get_settings.cache_clear()
        with psycopg.connect(_plain(server), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
