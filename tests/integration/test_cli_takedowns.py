"""The publication register and takedowns through the real commands on a real catalogue:
`asset publish|placements`, `consent revoke --dry-run|--json`, `takedowns list|done`, and the
audit's `takedown_overdue` violations and `--inventory`."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.usefixtures("prefect_harness")

SHOP = "https://shop.example.com/spring?utm=1"
SOCIAL = "https://social.example.com/p/123"


@pytest.fixture
def officer(acting_as):
    return acting_as("rights-officer-3")


def _json(res):
    assert res.exit_code == 0, (res.output, res.exception)
    return json.loads(res.stdout)


def _state(cat) -> dict:
    """Everything a dry run must leave alone."""
    from castkeep.db import schema

    with cat.runtime.sessions() as s:
        return {
            "events": s.scalar(sa.select(sa.func.count()).select_from(schema.AuditEvent)),
            "consent_events": s.scalar(sa.select(sa.func.count()).select_from(schema.ConsentEvent)),
            "takedowns": s.scalar(sa.select(sa.func.count()).select_from(schema.Takedown)),
            "statuses": {n: cat.status(n) for n in cat.assets},
            "consent": s.get(schema.Consent, cat.consents["obama"]).status,
            "holds": {n: cat.runtime.store.legal_hold(k) for n, k in cat.keys.items()},
        }


def _placements(cat) -> int:
    from castkeep.db import schema

    with cat.runtime.sessions() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(schema.Placement))


def test_publish_checks_status_consent_and_url(compliance_catalogue, cli, officer):
    from castkeep.db import schema
    from castkeep.errors import ApprovalError, NotFoundError, Refused, SpecError

    cat = compliance_catalogue(untracked=True)
    a = str(cat.assets["a_obama"])
    until = (dt.date.today() + dt.timedelta(days=60)).isoformat()  # the consents run a year
    placed = _json(cli("asset", "publish", a, "--channel", "web", "--url", SHOP, "--territory",
                       "de", "--until", until, "--json"))
    assert placed["recorded"] is True and placed["territory"] == "DE"
    assert placed["until"] == until and placed["published_by"] == officer
    again = _json(cli("asset", "publish", a, "--channel", "web", "--url", SHOP, "--json"))
    assert again["recorded"] is False and again["id"] == placed["id"]
    default = _json(cli("asset", "publish", a, "--channel", "web", "--url", SOCIAL, "--json"))
    assert default["territory"] == "FR"  # the asset's recorded territory
    with cat.runtime.sessions() as s:
        events = s.scalars(sa.select(schema.AuditEvent).where(
            schema.AuditEvent.kind == "asset.placed", schema.AuditEvent.entity_id == a)).all()
    assert [(e.actor, e.payload["url"]) for e in events] == [(officer, SHOP), (officer, SOCIAL)]

    before = _placements(cat)
    refusals = {
        ("--channel", "print"): "channel print not in consent",
        ("--territory", "JP"): "territory JP not in consent",
        # the consent ends before the placement would
        ("--until", (dt.date.today() + dt.timedelta(days=400)).isoformat()): "expired on",
    }
    for (flag, value), reason in refusals.items():
        args = {"--channel": "web", "--url": "https://x.example.com/new", flag: value}
        res = cli("asset", "publish", a, *[v for kv in args.items() for v in kv])
        assert isinstance(res.exception, Refused), (flag, res.output)
        assert res.exception.exit_code == 3 and reason in str(res.exception)
    hostile = ["javascript:alert(1)", "ftp://files.example.com/a.jpg", "https://user:pw@x.example.com/",
               "https://x.example.com/a b", "https://x.example.com/\nSet-Cookie: a", "//no-scheme",
               "https://", "https://x.example.com:99999/"]
    for url in hostile:
        res = cli("asset", "publish", a, "--channel", "web", "--url", url)
        assert isinstance(res.exception, SpecError), (url, res.output)
        assert "--url" in str(res.exception)
    for args, error in (
        (("--channel", "billboard"), SpecError), (("--territory", "XX"), SpecError),
        (("--until", "31/01/2099"), SpecError), (("--until", "2001-01-01"), SpecError),
    ):
        base = {"--channel": "web", "--url": "https://x.example.com/new"}
        base.update(dict([args]))
        res = cli("asset", "publish", a, *[v for kv in base.items() for v in kv])
        assert isinstance(res.exception, error), (args, res.output)
    res = cli("asset", "publish", str(cat.assets["untracked"]), "--channel", "web", "--url", SHOP)
    assert isinstance(res.exception, ApprovalError) and "only published" in str(res.exception)
    res = cli("asset", "publish", "../../etc/passwd", "--channel", "web", "--url", SHOP)
    assert isinstance(res.exception, NotFoundError)
    assert _placements(cat) == before  # nothing half-recorded

    listed = _json(cli("asset", "placements", a, "--json"))
    assert [p["url"] for p in listed] == [SHOP, SOCIAL]
    assert _json(cli("asset", "placements", str(cat.assets["b_biden"]), "--json")) == []


def test_revocation_opens_takedowns_and_dry_run_changes_nothing(compliance_catalogue, cli,
                                                               officer, monkeypatch, tmp_path):
    from castkeep.errors import ConsentStateError, WithdrawnError
    from castkeep.flows.settings import get_settings

    cat = compliance_catalogue(untracked=True)
    a, b = str(cat.assets["a_obama"]), str(cat.assets["b_biden"])
    for url in (SHOP, SOCIAL):
        _json(cli("asset", "publish", a, "--channel", "web", "--url", url, "--json"))
    _json(cli("asset", "publish", b, "--channel", "web", "--url", "https://b.example.com/", "--json"))
    consent = str(cat.consents["obama"])

    before = _state(cat)
    preview = _json(cli("consent", "revoke", consent, "--reason", "withdrawn", "--dry-run", "--json"))
    assert _state(cat) == before
    assert cat.names(preview["quarantined"]) == {"a_obama", "untracked"}
    assert sorted((t["asset_id"], t["url"]) for t in preview["takedowns"]) == [(a, SHOP), (a, SOCIAL)]
    human = cli("consent", "revoke", consent, "--reason", "withdrawn", "--dry-run")
    assert human.exit_code == 0 and "nothing was changed" in human.stdout
    assert f"would take down asset {a} on web at {SHOP}" in human.stdout
    assert _state(cat) == before

    signed_before = cat.runtime.store.get_bytes(cat.keys["a_obama"])
    result = _json(cli("consent", "revoke", consent, "--reason", "withdrawn", "--json"))
    # Quarantine changes the catalogue, never the signed file.
    assert cat.runtime.store.get_bytes(cat.keys["a_obama"]) == signed_before
    assert sorted((t["asset_id"], t["channel"], t["url"]) for t in result["takedowns"]) == [
        (a, "web", SHOP), (a, "web", SOCIAL)]
    assert cat.names(result["quarantined"]) == set(cat.names(preview["quarantined"]))
    again = _json(cli("consent", "revoke", consent, "--reason", "withdrawn", "--json"))
    assert again["takedowns"] == [] and again["changed"] is False
    res = cli("asset", "publish", a, "--channel", "web", "--url", "https://new.example.com/")
    assert isinstance(res.exception, WithdrawnError) and res.exception.exit_code == 4

    open_ = _json(cli("takedowns", "list", "--open", "--json"))
    assert {t["url"] for t in open_} == {SHOP, SOCIAL} and {t["status"] for t in open_} == {"open"}
    first = next(t for t in open_ if t["url"] == SHOP)
    done = _json(cli("takedowns", "done", first["id"], "--note", "removed from the shop", "--json"))
    assert done["status"] == "done" and done["done_by"] == officer
    assert done["note"] == "removed from the shop"
    res = cli("takedowns", "done", first["id"])
    assert isinstance(res.exception, ConsentStateError) and "already done" in str(res.exception)
    assert [t["url"] for t in _json(cli("takedowns", "list", "--open", "--json"))] == [SOCIAL]
    assert len(_json(cli("takedowns", "list", "--json"))) == 2

    # Within the deadline (24 h by default) an open takedown is not a violation; past it, it is.
    report = _json(cli("audit", "--json"))
    assert "takedown_overdue" not in report["counts"] and report["inventory"] is None
    monkeypatch.setenv("CASTKEEP_AUDIT__TAKEDOWN_HOURS", "0")
    get_settings.cache_clear()
    res = cli("audit", "--json", "--inventory", "--out", str(tmp_path / "reports"))
    report = json.loads(res.stdout)
    overdue = [v for v in report["violations"] if v["kind"] == "takedown_overdue"]
    assert [(v["asset_id"], SOCIAL in v["detail"]) for v in overdue] == [(a, True)]
    rows = {r["asset_id"]: r for r in report["inventory"]}
    assert set(rows) == {a, b, str(cat.assets["untracked"])}
    assert rows[a]["status"] == "quarantined" and rows[a]["open_takedowns"] == 1
    assert [c["status"] for c in rows[a]["consents"]] == ["revoked"]
    assert [p["url"] for p in rows[a]["placements"]] == [SHOP, SOCIAL]
    assert rows[a]["verified"] is None  # quarantined: not re-verified by the audit
    assert rows[b]["verified"]["ok"] is True and rows[b]["talents"] == [str(cat.talents["biden"])]
    assert rows[b]["expiry"] and rows[b]["placements"][0]["url"] == "https://b.example.com/"
    csv_text = (tmp_path / "reports").glob("audit-*.inventory.csv").__next__().read_text()
    assert csv_text.splitlines()[0].startswith("asset_id,status,talents,consents,expiry")
    assert len(csv_text.splitlines()) == 4 and f"web:DE:{SHOP}" not in csv_text
    assert f"web:FR:{SHOP}" in csv_text


def test_expiry_opens_takedowns(compliance_catalogue, cli, officer):
    from castkeep.db import schema
    from castkeep.flows.revoke import expire_consents

    cat = compliance_catalogue(untracked=False)
    b = str(cat.assets["b_biden"])
    _json(cli("asset", "publish", b, "--channel", "web", "--url", SOCIAL, "--json"))
    with cat.runtime.sessions.begin() as s:
        s.execute(sa.update(schema.Consent).where(schema.Consent.id == cat.consents["biden"])
                  .values(valid_until=sa.func.now() - sa.text("interval '1 hour'")))
    result = expire_consents()
    assert [(t["asset_id"], t["url"]) for t in result["takedowns"]] == [(b, SOCIAL)]
    (row,) = _json(cli("takedowns", "list", "--open", "--json"))
    assert row["asset_id"] == b and "expired" in row["reason"]
