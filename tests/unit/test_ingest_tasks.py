"""Ingest planning (no database): names come only from listings, manifest errors, missing and
escaping names, consent not in force, unclaimed portraits, weird file names."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from castkeep.tasks.ingest import (
    IngestResult,
    Outcome,
    Rejection,
    chunks,
    plan_ingest,
    resolve_name,
)
from castkeep.tasks.ingest_sources import FolderSource
from tests.plugins.ingest import manifest_doc, write_manifest

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("entry", ["../x.jpg", "/etc/passwd", "a/../../x.jpg", "..\\x.jpg", "C:/x.jpg"])
def test_resolve_name_refuses_escapes(entry):
    rel, reason = resolve_name("", entry, {"x.jpg": "x.jpg"})
    assert rel is None and "escapes the manifest's folder" in reason


def test_resolve_name_is_relative_to_the_manifest_folder_and_normalises_unicode():
    nfd = unicodedata.normalize("NFD", "sub/é.jpg")
    listing = {"sub/é.jpg": nfd}
    assert resolve_name("sub", "é.jpg", listing) == (nfd, "")
    assert resolve_name("sub", "./é.jpg", listing) == (nfd, "")
    rel, reason = resolve_name("", "é.jpg", listing)
    assert rel is None and "does not exist" in reason


def test_plan_matches_portraits_and_reports_every_problem(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg", "stray.jpg", "sub/d.jpg"):
        touch(tmp_path / name)
    write_manifest(tmp_path, "one.consent.yaml", manifest_doc(["a.jpg", "missing.jpg", "../../etc/x.jpg"]))
    write_manifest(tmp_path, "two.json", manifest_doc(["a.jpg", "b.jpg"], ref="t2"))
    write_manifest(tmp_path, "expired.yaml", manifest_doc(["c.jpg"], ref="t3", valid_until="2020-01-01",
                                                          valid_from="2019-01-01"))
    write_manifest(tmp_path / "sub", "m.yaml", manifest_doc(["d.jpg"], ref="t4"))
    (tmp_path / "broken.yaml").write_text("talent: {display_name: X}\nportraits: [b.jpg]\n")
    plan = plan_ingest(FolderSource(tmp_path), at=NOW)

    assert [(j.file, j.manifest.talent.external_ref, j.release_doc) for j in plan.jobs] == [
        ("b.jpg", "t2", "release.txt"),
        ("sub/d.jpg", "t4", "sub/release.txt"),
    ]
    reasons = {r.file: r.reason for r in plan.rejected}
    assert reasons["missing.jpg"] == "named by one.consent.yaml: 'missing.jpg' does not exist in the manifest's folder"
    assert "escapes the manifest's folder" in reasons["../../etc/x.jpg"]
    # Two manifests for one portrait: which consent applies would be a guess, so neither does.
    assert reasons["a.jpg"] == ("named by one.consent.yaml and two.json; a portrait needs exactly "
                                "one consent manifest")
    assert reasons["c.jpg"].startswith("consent of expired.yaml is not in force: consent expired.yaml expired")
    assert "expired on 2020-01-01" in reasons["c.jpg"]
    assert reasons["stray.jpg"].startswith("no valid consent manifest names this portrait")
    assert reasons["broken.yaml"].startswith("broken.yaml: invalid consent manifest")
    assert "field `talent`" in reasons["broken.yaml"]
    assert len(plan.rejected) == 6


def test_plan_rejects_portraits_whose_release_document_is_missing(tmp_path):
    touch(tmp_path / "a.jpg")
    write_manifest(tmp_path, "m.yaml", manifest_doc(["a.jpg"], release="nope.pdf"), release_text=None)
    plan = plan_ingest(FolderSource(tmp_path), at=NOW)
    assert plan.jobs == []
    assert plan.rejected == [Rejection("a.jpg", "release document of m.yaml: 'nope.pdf' does not exist "
                                                "in the manifest's folder")]


def test_plan_with_weird_names_and_batch(tmp_path):
    names = ["with space.jpg", "ünïcødé 名前.jpg", "semi;colon'quote.jpg"]
    for n in names:
        touch(tmp_path / n)
    batch = {"consents": [manifest_doc(names[:2], ref="w1"), manifest_doc(names[2:], ref="w2")]}
    write_manifest(tmp_path, "batch.yaml", batch)
    plan = plan_ingest(FolderSource(tmp_path), at=NOW)
    assert [j.file for j in plan.jobs] == names
    assert [j.manifest_label for j in plan.jobs] == ["batch.yaml[consents.0]"] * 2 + ["batch.yaml[consents.1]"]
    assert plan.rejected == []


def test_plan_puts_manifests_that_declare_an_identity_last(tmp_path):
    # The talent a declaration names may arrive in the same run, from a later manifest.
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        touch(tmp_path / name)
    write_manifest(tmp_path, "1-merged.yaml", manifest_doc(["a.jpg"], ref="t-merged",
                                                           same_person_as="t-original"))
    twin = [{"talent": "t-original", "justification": "Identical twin, agency file 12-B."}]
    write_manifest(tmp_path, "2-twin.yaml", manifest_doc(["b.jpg"], ref="t-twin",
                                                         lookalike_of=twin))
    write_manifest(tmp_path, "3-original.yaml", manifest_doc(["c.jpg"], ref="t-original"))
    plan = plan_ingest(FolderSource(tmp_path), at=NOW)
    assert [j.file for j in plan.jobs] == ["c.jpg", "a.jpg", "b.jpg"]
    assert plan.rejected == []


def test_plan_not_yet_valid(tmp_path):
    touch(tmp_path / "a.jpg")
    write_manifest(tmp_path, "m.yaml", manifest_doc(["a.jpg"], consent_ref="c-future",
                                                    valid_from="2027-01-01"))
    [rej] = plan_ingest(FolderSource(tmp_path), at=NOW).rejected
    assert "consent c-future is not valid until 2027-01-01" in rej.reason


def test_result_summary_shape_and_chunks():
    outcomes = [Outcome("b.jpg", "accepted"), Outcome("a.jpg", "duplicate", "same bytes"),
                Outcome("c.jpg", "rejected", "no face found")]
    result = IngestResult.collect(outcomes, [Rejection("a.yaml", "bad")])
    assert result.summary() == {"accepted": 1, "duplicates": 1,
                                "rejected": [{"file": "a.yaml", "reason": "bad"},
                                             {"file": "c.jpg", "reason": "no face found"}]}
    assert [r["file"] for r in result.table()] == ["a.jpg", "a.yaml", "b.jpg", "c.jpg"]
    assert [len(c) for c in chunks(list(range(7)), 3)] == [3, 3, 1]
