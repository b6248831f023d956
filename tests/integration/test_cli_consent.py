"""`castkeep consent show` on a catalogue holding the samples."""

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


def test_consent_app_is_importable_group():
    import typer

    from castkeep.flows.cli.consent import consent_app

    assert isinstance(consent_app, typer.Typer)
    assert "show" in [c.name for c in consent_app.registered_commands]


def test_consent_show_json(app, ingested_catalogue):
    cid = ingested_catalogue.consent_ids["demo-talent-a"]
    info = json.loads(CliRunner().invoke(app, ["consent", "show", cid, "--json"]).stdout)
    assert info["id"] == cid and info["consent_ref"] == "demo-consent-a-2025"
    assert info["talent"]["external_ref"] == "demo-talent-a"
    assert info["status"] == "active" and info["synthetic_likeness"] and not info["ai_training"]
    assert info["valid_until"] == "2030-12-31T23:59:59+00:00"
    assert info["scope"]["channels"] == ["social", "web"]
    assert [e["kind"] for e in info["events"]] == ["granted"]
    assert sorted(r["source_name"] for r in info["references"]) == ["obama.jpg", "obama2.jpg"]
    assert len(info["release_doc_sha256"]) == 64


def test_consent_show_by_reference_human(app, ingested_catalogue):
    out = CliRunner().invoke(app, ["consent", "show", "demo-consent-b-2025"]).stdout
    cid = ingested_catalogue.consent_ids["demo-talent-b"]
    assert out.splitlines()[0] == f"consent {cid} (demo-consent-b-2025)"
    assert "  territories: DE, FR, GB, US" in out
    assert "portraits: 1" in out


def test_consent_show_unknown(app, ingested_catalogue):
    result = CliRunner().invoke(app, ["consent", "show", "c-nope"])
    assert isinstance(result.exception, NotFoundError)


def test_revoke_unknown_consent_is_one_line_and_not_retried(ingested_catalogue):
    import datetime as dt
    import uuid

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowRunFilter
    from prefect.client.schemas.sorting import FlowRunSort

    from tests.plugins.prefect_harness import run_castkeep

    unknown = str(uuid.uuid4())
    started = dt.datetime.now(dt.timezone.utc)
    proc = run_castkeep("consent", "revoke", unknown, "--reason", "x", home=ingested_catalogue.home)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"error: no consent {unknown!r} in the catalogue: give a consent id or the agency's "
        "consent reference (`castkeep talent show TALENT` lists a talent's consents)"]
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_filter=FlowFilter(name={"any_": ["revoke-consent"]}),
            flow_run_filter=FlowRunFilter(start_time={"after_": started}),
            sort=FlowRunSort.START_TIME_DESC,
        )
        (task_run,) = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [run.id]}))
    assert run.parameters["consent_id"] == unknown
    assert task_run.state.is_failed() and task_run.run_count == 1  # a user error: no retries
