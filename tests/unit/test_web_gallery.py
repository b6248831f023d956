"""The review gallery's view (flows/web/pages/gallery.py) and the zip of published variants
(flows/web/pages/zipstream.py)."""

from __future__ import annotations

import io
import zipfile

from castkeep.flows.web.pages.gallery import context, score_rows
from castkeep.flows.web.pages.zipstream import zip_chunks
from castkeep.tasks.accounts import Identity

SCORES = {
    "quality": {"value": 410.26, "threshold": 5.0, "passed": True},
    "camera": {"value": 7.25, "threshold": 5.0, "passed": False},
    "lighting": {"value": 12.0, "threshold": 35.0, "passed": True},
    "identity": {"t-b": {"value": 0.41, "threshold": 0.6, "passed": True},
                 "t-a": {"value": 0.7123, "threshold": 0.6, "passed": False}},
    "extra_faces": {"value": 0, "threshold": 0, "passed": True},
}
NAMES = {"t-a": "Ana", "t-b": "Bo"}


def test_scores_in_one_order_with_units_and_limits():
    rows = score_rows(SCORES, NAMES)
    assert [(r["label"], r["value"], r["limit"], r["passed"]) for r in rows] == [
        ("Identity distance · Ana", "0.712", "≤ 0.600", False),
        ("Identity distance · Bo", "0.410", "≤ 0.600", True),
        ("Lighting error", "12.0°", "≤ 35°", True),
        ("Camera error", "7.2°", "≤ 5°", False),
        ("Quality (sharpness)", "410.3", "≥ 5.0", True),
    ]


def test_an_unmeasured_adherence_says_so():
    rows = score_rows({"lighting": {"value": -1.0, "threshold": 35.0, "passed": False}}, {})
    assert rows[0]["value"] == "not measured" and rows[0]["measured"] is False


def _doc(status: str) -> dict:
    assets = [
        {"id": "a1", "variant": 1, "status": "candidate", "passed": True, "scores": {},
         "reasons": []},
        {"id": "a0", "variant": 0, "status": "rejected", "passed": False, "scores": {},
         "reasons": ["camera: error 7.2 > 5"]},
        {"id": "a2", "variant": 2, "status": "published", "passed": True, "scores": {},
         "reasons": []},
    ]
    return {"status": status, "assets": assets, "talent_names": {}}


def test_only_reviewers_of_a_request_awaiting_approval_may_decide():
    reviewer = Identity("r", "default", frozenset({"reviewer"}))
    requester = Identity("q", "north", frozenset({"requester"}))
    assert context(_doc("awaiting_approval"), reviewer)["can_review"] is True
    assert context(_doc("awaiting_approval"), requester)["can_review"] is False
    assert context(_doc("completed"), reviewer)["can_review"] is False
    view = context(_doc("awaiting_approval"), reviewer)
    assert [v["number"] for v in view["variants"]] == [1, 2, 3]
    assert [v["filter"] for v in view["variants"]] == ["rejected", "passed", "passed"]
    assert view["variants"][0]["withdrawn"] and view["variants"][0]["reason"] == (
        "camera: error 7.2 > 5")
    assert (view["passed_count"], view["rejected_count"], view["published"]) == (2, 1, 1)
    # Full size as the API serves files: requesters only published ones, nobody withdrawn ones.
    assert [v["full"] for v in view["variants"]] == [False, True, True]
    assert [v["full"] for v in context(_doc("completed"), requester)["variants"]] == [
        False, False, True]


def test_zip_is_streamed_member_by_member():
    chunks = list(zip_chunks([("a.jpg", b"1" * 5000), ("a.jpg", b"2"), ("b", b"3")]))
    assert len(chunks) == 4  # one per member, then the central directory
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.namelist() == ["a.jpg", "a-2.jpg", "b"]
    assert archive.read("a.jpg") == b"1" * 5000 and archive.read("a-2.jpg") == b"2"
    assert archive.testzip() is None
