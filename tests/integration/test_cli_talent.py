"""`castkeep talent list|show` and `castkeep gc` on a catalogue holding the samples."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from castkeep.errors import NotFoundError


@pytest.fixture(scope="module")
def app():
    from castkeep.flows import cli

    cli._register()
    return cli.app


def test_talent_list_json(app, ingested_catalogue):
    result = CliRunner().invoke(app, ["talent", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["external_ref"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"demo-talent-a", "demo-talent-b"}
    assert rows["demo-talent-a"]["id"] == ingested_catalogue.talent_ids["demo-talent-a"]
    assert (rows["demo-talent-a"]["references"], rows["demo-talent-b"]["references"]) == (2, 1)
    assert rows["demo-talent-a"]["active_consents"] == 1
    assert rows["demo-talent-b"]["display_name"] == "Demo Talent B"


def test_talent_list_human(app, ingested_catalogue):
    out = CliRunner().invoke(app, ["talent", "list"]).stdout.splitlines()
    assert out[0].split()[:2] == ["id", "external"]
    assert any(line.startswith(ingested_catalogue.talent_ids["demo-talent-a"]) and "Demo Talent A" in line
               for line in out)


def test_talent_show(app, ingested_catalogue):
    result = CliRunner().invoke(app, ["talent", "show", "demo-talent-a", "--json"])
    info = json.loads(result.stdout)
    assert info["id"] == ingested_catalogue.talent_ids["demo-talent-a"]
    assert sorted(r["source_name"] for r in info["reference_portraits"]) == ["obama.jpg", "obama2.jpg"]
    [consent] = info["consents"]
    assert consent["id"] == ingested_catalogue.consent_ids["demo-talent-a"]
    assert consent["scope"]["territories"] == ["DE", "FR", "GB", "US"] and consent["status"] == "active"
    by_id = CliRunner().invoke(app, ["talent", "show", info["id"]])
    assert by_id.stdout.startswith(f"talent {info['id']}: Demo Talent A (demo-talent-a)")
    assert "reference portraits: 2" in by_id.stdout


def test_talent_show_unknown(app, ingested_catalogue):
    result = CliRunner().invoke(app, ["talent", "show", "nobody"])
    assert isinstance(result.exception, NotFoundError) and result.exception.exit_code == 2


def test_gc_command(app, ingested_catalogue):
    from castkeep.flows.runtime import open_runtime

    with open_runtime() as rt:
        orphan = rt.store.put_bytes(b"left behind", prefix="restricted/release-docs", ext="txt",
                                    media_type="text/plain")
        # A signed asset whose request run died before its rows were written.
        asset = rt.store.put_bytes(b"uncatalogued asset", prefix="assets", ext="jpg",
                                   media_type="image/jpeg")
    dry = CliRunner().invoke(app, ["gc", "--grace-hours", "0", "--dry-run", "--json"])
    assert json.loads(dry.stdout) == {"removed": [orphan.key, asset.key], "dry_run": True}
    real = CliRunner().invoke(app, ["gc", "--grace-hours", "0"])
    assert real.stdout.splitlines() == ["removed 2 unreferenced object(s)", f"  {orphan.key}",
                                        f"  {asset.key}"]
    with open_runtime() as rt:
        assert not rt.store.exists(orphan.key) and not rt.store.exists(asset.key)
        assert len(list(rt.store.list_keys("references"))) == 3
