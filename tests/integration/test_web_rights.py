"""The publication register and takedowns over the web API (served by uvicorn, called with httpx):
a reviewer records a placement, everyone who reads assets lists it, a compliance officer's dry
run lists the takedown that would open and changes nothing, the revocation opens it, and
compliance records it done; requesters cannot publish; refusals by consent (409 with reasons),
withdrawn assets (410) and hostile URLs or ids (422/404) record nothing."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import sqlalchemy as sa

from tests.plugins.request import request_doc
from tests.plugins.web import completed_request

PROBLEM_JSON = "application/problem+json"
URL = "https://shop.example.com/spring?utm=1"


def _published_asset(server, users) -> str:
    """A published asset of a one-variant request submitted through the API (no approval)."""
    doc = completed_request(server, users["requester"].token, request_doc(variants=1))
    (asset,) = doc["assets"]
    assert asset["status"] == "published", asset
    return asset["id"]


def _events(kind: str) -> list[tuple[str, str]]:
    """(entity id, actor) of every audit event of this kind, oldest first."""
    engine = sa.create_engine(os.environ["CASTKEEP_DATABASE__URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT entity_id, actor FROM audit_event WHERE kind = :k "
                                        "ORDER BY seq"), {"k": kind}).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]


def _event_count() -> int:
    engine = sa.create_engine(os.environ["CASTKEEP_DATABASE__URL"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM audit_event")).scalar_one()
    finally:
        engine.dispose()


def test_publish_list_revoke_takedown_done(web_server, web_users, request_env):
    asset_id = _published_asset(web_server, web_users)
    until = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    placement = {"channel": "social", "url": URL, "territory": "fr", "until": until}

    with web_server.client(web_users["requester"].token) as requester:
        refused = requester.post(f"/api/v1/assets/{asset_id}/placements", json=placement)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith(PROBLEM_JSON)
        assert requester.get(f"/api/v1/assets/{asset_id}/placements").json() == []

    with web_server.client(web_users["reviewer"].token) as reviewer:
        placed = reviewer.post(f"/api/v1/assets/{asset_id}/placements", json=placement)
        assert placed.status_code == 201, placed.text
        row = placed.json()
        assert row["recorded"] is True and row["asset_id"] == asset_id
        assert (row["channel"], row["url"], row["territory"], row["until"]) == (
            "social", URL, "FR", until)
        assert row["published_by"] == "reviewer"  # the signed-in user, not a typed-in name
        # The same placement again is the one already recorded.
        again = reviewer.post(f"/api/v1/assets/{asset_id}/placements", json=placement)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == row["id"] and again.json()["recorded"] is False
    assert _events("asset.placed") == [(asset_id, "reviewer")]

    with web_server.client(web_users["requester"].token) as requester:
        listed = requester.get(f"/api/v1/assets/{asset_id}/placements")
        assert listed.status_code == 200
        assert [p["id"] for p in listed.json()] == [row["id"]]

    with web_server.client(web_users["compliance"].token) as compliance:
        consent_id = compliance.get(f"/api/v1/assets/{asset_id}").json()["lineage"]["consents"][0]
        events_before = _event_count()
        dry = compliance.post(f"/api/v1/consents/{consent_id}/revoke",
                              json={"reason": "talent asked", "dry_run": True})
        assert dry.status_code == 200, dry.text
        assert dry.json()["dry_run"] is True and asset_id in dry.json()["quarantined"]
        assert dry.json()["takedowns"] == [{"asset_id": asset_id, "channel": "social",
                                            "url": URL, "territory": "FR"}]
        # The dry run changed nothing: no event, no takedown, the asset and consent as they were.
        assert _event_count() == events_before
        assert compliance.get("/api/v1/takedowns").json() == []
        assert compliance.get(f"/api/v1/assets/{asset_id}").json()["status"] == "published"
        talent = compliance.get(f"/api/v1/talents/{request_env.talent_ids['demo-talent-a']}")
        assert {c["id"]: c["status"] for c in talent.json()["consents"]}[consent_id] == "active"

        real = compliance.post(f"/api/v1/consents/{consent_id}/revoke",
                               json={"reason": "talent asked", "dry_run": False})
        assert real.status_code == 200, real.text
        (opened,) = real.json()["takedowns"]
        assert {k: opened[k] for k in ("asset_id", "channel", "url", "territory")} == \
            dry.json()["takedowns"][0]
        open_now = compliance.get("/api/v1/takedowns", params={"open": "true"}).json()
        assert [(t["id"], t["status"], t["opened_by"]) for t in open_now] == [
            (opened["id"], "open", "compliance")]

        done = compliance.post(f"/api/v1/takedowns/{opened['id']}/done",
                               json={"note": "removed from the shop page"})
        assert done.status_code == 200, done.text
        assert (done.json()["status"], done.json()["done_by"], done.json()["note"]) == (
            "done", "compliance", "removed from the shop page")
        twice = compliance.post(f"/api/v1/takedowns/{opened['id']}/done", json={})
        assert twice.status_code == 409 and "already done" in twice.json()["detail"]
        assert compliance.get("/api/v1/takedowns", params={"open": "true"}).json() == []
        assert [t["status"] for t in compliance.get("/api/v1/takedowns").json()] == ["done"]
        # A second revocation opens nothing twice.
        repeat = compliance.post(f"/api/v1/consents/{consent_id}/revoke",
                                 json={"reason": "talent asked"})
        assert repeat.status_code == 200 and repeat.json()["takedowns"] == []
    assert _events("takedown.done") == [(opened["id"], "compliance")]

    # A quarantined asset is withdrawn: it cannot be placed anywhere again.
    with web_server.client(web_users["reviewer"].token) as reviewer:
        gone = reviewer.post(f"/api/v1/assets/{asset_id}/placements",
                             json={"channel": "web", "url": "https://example.com/other"})
        assert gone.status_code == 410, gone.text
        assert gone.headers["content-type"].startswith(PROBLEM_JSON)
        assert len(reviewer.get(f"/api/v1/assets/{asset_id}/placements").json()) == 1


HOSTILE_URLS = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)//https://shop.example.com",
    "https://user:secret@shop.example.com/page",
    "https://token@shop.example.com/page",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "//shop.example.com/no-scheme",
    "https://shop.example.com/a\r\nSet-Cookie: x=1",
    "https://shop.example.com/" + "a" * 2000,
    "https:///no-host",
]


def test_refusals_and_hostile_input_record_nothing(web_server, web_users):
    asset_id = _published_asset(web_server, web_users)
    path = f"/api/v1/assets/{asset_id}/placements"
    with web_server.client(web_users["compliance"].token) as client:
        for url in HOSTILE_URLS:
            answer = client.post(path, json={"channel": "social", "url": url})
            assert answer.status_code == 422, (url, answer.text)
            assert answer.headers["content-type"].startswith(PROBLEM_JSON)
            assert "secret" not in answer.text  # a credential is not echoed back
        # Outside the consent's scope (channels web, social; territories US, GB, FR, DE): 409
        # with every failing clause.
        refused = client.post(path, json={"channel": "print", "url": URL, "territory": "JP"})
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["type"] == "urn:castkeep:problem:consent"
        assert len(problem["reasons"]) == 2
        assert any("channel print" in r for r in problem["reasons"])
        assert any("territory JP" in r for r in problem["reasons"])
        # A placement that outlives the consent (valid until 2030-12-31) is refused too.
        late = client.post(path, json={"channel": "social", "url": URL, "until": "2031-06-30"})
        assert late.status_code == 409 and "expired" in late.json()["detail"]
        for body in ({"channel": "billboard", "url": URL}, {"channel": "social", "url": URL,
                                                              "territory": "XX"},
                     {"channel": "social", "url": URL, "until": "2001-01-01"},
                     {"channel": "social", "url": URL, "until": "tomorrow"},
                     {"channel": "social", "url": URL, "by": "admin"}):
            answer = client.post(path, json=body)
            assert answer.status_code == 422, (body, answer.text)
        for bad in ("not-a-uuid", "..%2F..%2Fkeys", str(uuid.uuid4())):
            answer = client.post(f"/api/v1/assets/{bad}/placements",
                                 json={"channel": "social", "url": URL})
            assert answer.status_code == 404, (bad, answer.text)
            assert client.get(f"/api/v1/assets/{bad}/placements").status_code == 404
        assert client.get(path).json() == []
        for bad in ("not-a-uuid", str(uuid.uuid4())):
            answer = client.post(f"/api/v1/takedowns/{bad}/done", json={"note": "x"})
            assert answer.status_code == 404, (bad, answer.text)
        # A note is plain text of bounded length, refused before any lookup (else: 404).
        for note in ("line\x00break", "x" * 2001):
            answer = client.post(f"/api/v1/takedowns/{uuid.uuid4()}/done", json={"note": note})
            assert answer.status_code == 422, answer.text
    assert _events("asset.placed") == []
    assert _events("takedown.done") == []

