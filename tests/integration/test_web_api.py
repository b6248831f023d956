"""The web API, served by uvicorn on 127.0.0.1 and called over HTTP with httpx: the request
journey (submit -> progress -> awaiting_approval -> approve -> download -> Trusted), revocation
with a dry run, history naming the reviewer, restricted release documents (compliance only,
checked, audited), and escaping of catalogue names."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid

import httpx
import pytest

from tests.plugins.request import request_doc

PROBLEM_JSON = "application/problem+json"


def wait_for_status(client: httpx.Client, request_id: str, statuses: set[str],
                    timeout: float = 600) -> tuple[dict, list[dict]]:
    """Poll GET /requests/{id} until its status is one of `statuses`; (last doc, progress seen)."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(f"/api/v1/requests/{request_id}")
        assert answer.status_code == 200, answer.text
        doc = answer.json()
        seen.append(doc["progress"])
        if doc["status"] in statuses:
            return doc, seen
        assert doc["status"] in {"received", "running"}, doc
        assert time.monotonic() < deadline, f"request still {doc['status']}"
        time.sleep(0.5)


def submit(server, token: str, **overrides) -> str:
    with server.client(token) as client:
        answer = client.post("/api/v1/requests", json=request_doc(**overrides))
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def test_request_journey_approve_download_and_revoke(web_server, web_users, request_env, dev_ca):
    from castkeep.provenance.verify import verify_bytes

    users = web_users
    rid = submit(web_server, users["requester"].token, approval_required=True, variants=2,
                 campaign="Spring launch")
    with web_server.client(users["requester"].token) as requester:
        doc, progress = wait_for_status(requester, rid, {"awaiting_approval", "refused", "failed"})
        assert doc["status"] == "awaiting_approval", doc
        assert doc["progress"] == {"done": 2, "total": 2}
        assert all(p["total"] == 2 and 0 <= p["done"] <= 2 for p in progress)
        assert doc["submitted_by"] == "requester" and doc["team"] == "north"
        assert {a["variant"] for a in doc["assets"]} == {0, 1}
        candidates = [a["id"] for a in doc["assets"] if a["status"] == "candidate"]
        assert candidates, doc
        chosen = candidates[0]
        # Requesters cannot approve; the request is unchanged.
        refused = requester.post(f"/api/v1/requests/{rid}/approve",
                                 json={"assets": [chosen], "comment": "mine"})
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith(PROBLEM_JSON)
        assert refused.json()["status"] == 403 and refused.json()["title"] == "Forbidden"
        assert requester.get(f"/api/v1/requests/{rid}").json()["status"] == "awaiting_approval"
        # Candidates are for reviewers: a requester downloads published assets only.
        assert requester.get(f"/api/v1/assets/{chosen}/file").status_code == 403
    # Another team's requester does not see it.
    with web_server.client(users["outsider"].token) as outsider:
        assert outsider.get(f"/api/v1/requests/{rid}").status_code == 404

    with web_server.client(users["reviewer"].token) as reviewer:
        approved = reviewer.post(f"/api/v1/requests/{rid}/approve",
                                 json={"assets": [chosen], "comment": "best light"})
        assert approved.status_code == 200, approved.text
        assert approved.json() == {"published": [chosen], "rejected": [],
                                   "waiting": [c for c in candidates if c != chosen]}
        # The other candidates wait for a decision until rejected or the review is closed.
        if len(candidates) > 1:
            assert reviewer.get(f"/api/v1/requests/{rid}").json()["status"] == "awaiting_approval"
            closed = reviewer.post(f"/api/v1/requests/{rid}/close", json={"comment": "enough"})
            assert closed.status_code == 200, closed.text
            assert closed.json()["rejected"] == [c for c in candidates if c != chosen]
            rejected = closed.json()["rejected"][0]
            history = reviewer.get(f"/api/v1/assets/{rejected}").json()["history"]
            assert [(h["actor"], h["comment"]) for h in history
                    if h["event"] == "asset.rejected"] == [("reviewer", "enough")]
            assert reviewer.get(f"/api/v1/assets/{rejected}/file").status_code == 410
        assert reviewer.get(f"/api/v1/requests/{rid}").json()["status"] == "completed"

    with web_server.client(users["requester"].token) as requester:
        download = requester.get(f"/api/v1/assets/{chosen}/file")
        assert download.status_code == 200, download.text
        assert download.headers["content-disposition"] == (
            'attachment; filename="Spring-launch-demo-talent-a-v'
            f'{next(a["variant"] for a in doc["assets"] if a["id"] == chosen)}.jpg"')
        report = verify_bytes(download.content, trust_anchors=[dev_ca.root_cert])
        assert report.state == "Trusted", report.failures
        thumb = requester.get(f"/api/v1/assets/{chosen}/thumbnail")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert len(thumb.content) < len(download.content)
        asset = requester.get(f"/api/v1/assets/{chosen}").json()
    assert asset["status"] == "published" and asset["c2pa"]["state"] == "Trusted"
    assert asset["lineage"]["talents"] == [request_env.talent_ids["demo-talent-a"]]
    assert len(asset["lineage"]["consents"]) == 1
    assert set(asset["lineage"]["consents"]) <= set(request_env.consent_ids.values())
    approvals = [h for h in asset["history"] if h["event"] == "asset.approved"]
    assert [(h["actor"], h["comment"]) for h in approvals] == [("reviewer", "best light")]

    consent_id = asset["lineage"]["consents"][0]
    with web_server.client(users["compliance"].token) as compliance:
        dry = compliance.post(f"/api/v1/consents/{consent_id}/revoke",
                              json={"reason": "talent asked", "dry_run": True})
        assert dry.status_code == 200, dry.text
        assert dry.json()["dry_run"] is True and chosen in dry.json()["quarantined"]
        # A dry run changes nothing: still published and downloadable.
        assert compliance.get(f"/api/v1/assets/{chosen}").json()["status"] == "published"
        assert compliance.get(f"/api/v1/assets/{chosen}/file").status_code == 200
        real = compliance.post(f"/api/v1/consents/{consent_id}/revoke",
                               json={"reason": "talent asked", "dry_run": False})
        assert real.status_code == 200, real.text
        assert real.json()["dry_run"] is False
        assert set(real.json()["quarantined"]) == set(dry.json()["quarantined"])
        after = compliance.get(f"/api/v1/assets/{chosen}").json()
        assert after["status"] == "quarantined"
        quarantines = [h for h in after["history"] if h["event"] == "asset.quarantined"]
        assert [h["actor"] for h in quarantines] == ["compliance"]
        gone = compliance.get(f"/api/v1/assets/{chosen}/file")
        assert gone.status_code == 410 and gone.headers["content-type"].startswith(PROBLEM_JSON)


def test_talent_names_are_data_not_markup(web_server, web_users, request_env):
    import os

    import sqlalchemy as sa

    name = "<script>alert(1)</script>"
    engine = sa.create_engine(os.environ["CASTKEEP_DATABASE__URL"])  # the test's catalogue
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE talent SET display_name = :n WHERE external_ref = "
                             "'demo-talent-a'"), {"n": name})
    engine.dispose()
    for role in ("compliance", "requester"):
        with web_server.client(web_users[role].token) as client:
            answer = client.get("/api/v1/talents")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert b"<script>" not in answer.content and b"\\u003cscript\\u003e" in answer.content
        names = {t["display_name"] for t in answer.json()}
        assert name in names
        shapes = {frozenset(t) for t in answer.json()}
        if role == "requester":  # names and whether usable, no consents
            assert shapes == {frozenset({"id", "display_name", "usable"})}
        else:
            assert all("consents" in s for s in shapes)
    # Usable: an active consent valid now that covers the channel and territory asked about.
    talent = request_env.talent_ids["demo-talent-a"]
    with web_server.client(web_users["requester"].token) as client:
        for query, usable in (({"channel": "social", "territory": "FR"}, True),
                              ({"channel": "social", "territory": "JP"}, False),
                              ({"channel": "print"}, False), ({}, True)):
            found = {t["id"]: t["usable"] for t in client.get("/api/v1/talents",
                                                              params=query).json()}
            assert found[talent] is usable, query


def test_campaign_names_are_data_not_markup(web_server, web_users):
    name = "<script>alert(2)</script>"
    rid = submit(web_server, web_users["requester"].token, variants=1, campaign=name)
    with web_server.client(web_users["requester"].token) as client:
        listed = client.get("/api/v1/requests")
        assert b"<script>" not in listed.content
        assert name in {r["campaign"] for r in listed.json()}
        doc, _ = wait_for_status(client, rid, {"completed", "refused", "failed"})
        assert doc["status"] == "completed", doc
        raw = client.get(f"/api/v1/requests/{rid}")
        assert b"<script>" not in raw.content and raw.json()["campaign"] == name
        download = client.get(f"/api/v1/assets/{doc['assets'][0]['id']}/file")
    assert download.status_code == 200
    assert re.fullmatch(r'attachment; filename="script-alert-2-script-demo-talent-a-v0\.jpg"',
                        download.headers["content-disposition"])
    # Requesters see their team's requests, not other teams'.
    for user, sees in (("teammate", True), ("outsider", False)):
        with web_server.client(web_users[user].token) as other:
            assert (rid in {r["id"] for r in other.get("/api/v1/requests").json()}) is sees
            assert other.get(f"/api/v1/requests/{rid}").status_code == (200 if sees else 404)


def _release_doc_row(consent_id: str) -> tuple[str, str]:
    import sqlalchemy as sa

    engine = sa.create_engine(os.environ["CASTKEEP_DATABASE__URL"])
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT release_doc_sha256, release_doc_key FROM consent "
                                   "WHERE id = :id"), {"id": consent_id}).one()
    engine.dispose()
    return row[0], row[1]


def _release_reads(consent_id: str) -> list[tuple[str, dict]]:
    import sqlalchemy as sa

    engine = sa.create_engine(os.environ["CASTKEEP_DATABASE__URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT actor, payload FROM audit_event WHERE kind = "
            "'consent.release_document_read' AND entity_id = :id ORDER BY seq"),
            {"id": consent_id}).all()
    engine.dispose()
    return [(r[0], r[1]) for r in rows]


def test_release_document_is_for_compliance_checked_and_audited(web_server, web_users,
                                                                 request_env):
    from castkeep.flows.runtime import open_runtime

    consent_id = request_env.consent_ids["demo-talent-a"]
    sha, key = _release_doc_row(consent_id)
    path = f"/api/v1/consents/{consent_id}/release-document"
    with web_server.client(web_users["compliance"].token) as compliance:
        talents = compliance.get("/api/v1/talents")
        links = {c["id"]: c["release_document"] for t in talents.json() for c in t["consents"]}
        assert links[consent_id] == path
        assert key not in talents.text and "restricted/" not in talents.text
        one = compliance.get(f"/api/v1/talents/{request_env.talent_ids['demo-talent-a']}")
        assert [c["release_document"] for c in one.json()["consents"]] == [path]
        answer = compliance.get(path)
    assert answer.status_code == 200, answer.text
    assert hashlib.sha256(answer.content).hexdigest() == sha
    assert re.fullmatch(r'attachment; filename="release-demo-talent-a-[A-Za-z0-9._-]+"',
                        answer.headers["content-disposition"])
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert _release_reads(consent_id) == [("compliance", {"sha256": sha})]

    for role in ("requester", "reviewer", "admin"):
        with web_server.client(web_users[role].token) as client:
            refused = client.get(path)
            assert refused.status_code == 403 and refused.content != answer.content
            if role == "requester":
                assert "release_document" not in client.get("/api/v1/talents").text
    with web_server.client() as anonymous:
        assert anonymous.get(path).status_code == 401
    with web_server.client(web_users["compliance"].token) as compliance:
        unknown = compliance.get(f"/api/v1/consents/{uuid.uuid4()}/release-document")
        assert unknown.status_code == 404 and "talent show" in unknown.json()["detail"]
    assert len(_release_reads(consent_id)) == 1  # refusals read nothing

    # A stored file that no longer matches the catalogue: 500, no bytes, no read recorded.
    with open_runtime() as runtime:
        stored = runtime.store.root / "objects" / key
    stored.chmod(0o600)
    stored.write_bytes(b"tampered release document")
    with web_server.client(web_users["compliance"].token) as compliance:
        tampered = compliance.get(path)
    assert tampered.status_code == 500
    assert tampered.headers["content-type"].startswith(PROBLEM_JSON)
    assert b"tampered" not in tampered.content and key not in tampered.text
    assert "audit" in tampered.json()["detail"]
    assert len(_release_reads(consent_id)) == 1


def test_ids_are_validated_before_any_lookup(web_server, web_users):
    with web_server.client(web_users["compliance"].token) as client:
        for path in ("/api/v1/assets/..%2F..%2Fkeys/file", "/api/v1/assets/not-a-uuid",
                     "/api/v1/requests/1;DROP TABLE asset", "/api/v1/talents/x",
                     "/api/v1/consents/..%2Frestricted/release-document",
                     "/api/v1/consents/00000000-0000-0000-0000-00000000000g/release-document"):
            answer = client.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.headers["content-type"].startswith(PROBLEM_JSON)
            assert "UUID" in answer.json()["detail"] or "Not Found" == answer.json()["title"]


def test_submission_runs_as_a_deployment_run(web_server_deployed, web_users):
    from prefect.client.orchestration import get_client

    rid = submit(web_server_deployed, web_users["requester"].token, variants=1)
    with web_server_deployed.client(web_users["requester"].token) as client:
        doc, _ = wait_for_status(client, rid, {"completed", "refused", "failed"})
    assert doc["status"] == "completed", doc
    assert doc["progress"] == {"done": 1, "total": 1}
    with get_client(sync_client=True) as prefect:
        run = prefect.read_flow_run(doc["flow_run_id"])
        deployment = prefect.read_deployment(run.deployment_id)
    assert deployment.name == "fulfil-request"
    assert run.parameters == {"request_id": rid, "actor": "requester"}
