"""Request fixtures: request documents for the ingested sample talents, and a settings-aware
runner that fulfils them through the real flow.

- `request_doc(**overrides)` -> dict: a valid single-talent request (demo-talent-a, classical,
  key light 45 degrees, 8-degree Dutch angle, social/FR/advertising, 2 variants, publish in 30 days).
- `write_request(tmp_path, doc, name)` -> Path (YAML or JSON by suffix).
- `published_export(cli, tmp_path)` -> (asset id, Path): `castkeep request` of one variant lit
  from 60 degrees, its asset exported with `castkeep asset export` to published.jpg.
- `fulfil` (function fixture): submit a request document to the catalogue and run the
  fulfil_request flow on it; returns the flow's summary dict.
- `asset_inserts_drop_the_connection` (function fixture): until its value is called, every INSERT
  into `asset` ends its own database connection (a server lost mid-run).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest


def request_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "campaign": "Test campaign",
        "requester": "tests",
        "talents": ["demo-talent-a"],
        "lighting": {"azimuth": 45, "elevation": 30, "fill": 0.2},
        "camera": {"roll": 8},
        "engine": "classical",
        "variants": 2,
        "channel": "social",
        "territory": "FR",
        "purpose": "advertising",
        "publish_date": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
    }
    doc.update(overrides)
    return doc


def write_request(folder: Path, doc: dict[str, Any], name: str = "request.yaml") -> Path:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if name.endswith(".json"):
        path.write_text(json.dumps(doc))
    else:
        path.write_text(yaml.safe_dump(doc))
    return path


def published_export(cli, folder: Path) -> tuple[str, Path]:
    path = write_request(folder, request_doc(variants=1, lighting={"azimuth": 60}), "req.json")
    res = cli("request", str(path), "--json")
    assert res.exit_code == 0, res.output
    (asset,) = json.loads(res.stdout)["assets"]
    target = folder / "published.jpg"
    assert cli("asset", "export", asset["id"], "-o", str(target)).exit_code == 0
    return asset["id"], target


@pytest.fixture
def fulfil():
    """Submit + fulfil a request document in this process (needs a catalogue: runtime_env or
    ingested_catalogue, and prefect_harness)."""
    from castkeep.flows.fulfil_request import fulfil_request, submit_request
    from castkeep.flows.runtime import open_runtime
    from castkeep.flows.settings import get_settings
    from castkeep.models.request_spec import request_from_mapping

    def run(doc: dict[str, Any]) -> dict[str, Any]:
        settings = get_settings()
        spec = request_from_mapping(
            doc,
            default_engine=settings.engines.default,
            default_thresholds=settings.thresholds.model_dump(),
        )
        with open_runtime(settings) as runtime:
            request_id = submit_request(runtime, spec, actor="tests")
        return fulfil_request(str(request_id))

    return run


@pytest.fixture
def request_env(ingested_catalogue, dev_ca, monkeypatch: pytest.MonkeyPatch):
    """The ingested sample catalogue plus signing with the session's development CA (its root as
    trust anchor). Yields the IngestedCatalogue."""
    from castkeep.flows.settings import get_settings

    monkeypatch.setenv("CASTKEEP_SIGNING__CERT_CHAIN", str(dev_ca.chain))
    monkeypatch.setenv("CASTKEEP_SIGNING__PRIVATE_KEY", str(dev_ca.private_key))
    monkeypatch.setenv("CASTKEEP_SIGNING__ALGORITHM", dev_ca.algorithm)
    monkeypatch.setenv("CASTKEEP_SIGNING__TRUST_ANCHORS", json.dumps([str(dev_ca.root_cert)]))
    get_settings.cache_clear()
    yield ingested_catalogue
    get_settings.cache_clear()


@pytest.fixture
def asset_inserts_drop_the_connection(request_env):
    """While active, every INSERT into `asset` ends its own database connection (as a server
    restart or a network cut would), so a run loses the catalogue mid-variant."""
    import os

    import psycopg

    from tests.plugins.db import _plain

    clean_db = os.environ["CASTKEEP_DATABASE__URL"]  # the test's catalogue (a clone, see ingest)

    with psycopg.connect(_plain(clean_db), autocommit=True) as conn:
        conn.execute("CREATE FUNCTION test_drop_connection() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER test_drop_connection BEFORE INSERT ON asset FOR EACH ROW "
                     "EXECUTE FUNCTION test_drop_connection()")

    def restore() -> None:
        with psycopg.connect(_plain(clean_db), autocommit=True) as conn:
            conn.execute("DROP TRIGGER IF EXISTS test_drop_connection ON asset")
            conn.execute("DROP FUNCTION IF EXISTS test_drop_connection()")

    try:
        yield restore
    finally:
        restore()
