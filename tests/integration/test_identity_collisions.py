"""Identity collisions at ingest (tasks/identity_collisions.py), through the real ingest flow:
real dlib on real photos, the bundled PostgreSQL, the Prefect test harness.

One face is one talent: a new portrait that matches another talent's references is rejected,
naming that talent and the distance, unless its manifest declares the relationship
(`same_person_as`: the portrait joins that talent; `lookalike_of` + justification: a separate
talent, the justification in the audit log)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from sqlalchemy import func, select, update

from castkeep.db import schema
from tests.plugins.ingest import SAMPLES, augment_jpeg, manifest_doc, write_manifest

pytestmark = pytest.mark.usefixtures("prefect_harness")

TWIN_NOTE = "Identical twin; birth records checked by the agency on 2025-02-03 (file 88-D)."


def run(folder):
    from castkeep.flows.ingest_references import ingest_references

    return ingest_references(str(folder))


def reasons(result) -> dict[str, str]:
    return {r["file"]: r["reason"] for r in result.summary()["rejected"]}


def count(model) -> int:
    from castkeep.flows.runtime import open_runtime

    with open_runtime() as rt, rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def events(kind: str) -> list[schema.AuditEvent]:
    from castkeep.flows.runtime import open_runtime

    with open_runtime() as rt, rt.sessions() as s:
        return list(s.scalars(select(schema.AuditEvent).where(schema.AuditEvent.kind == kind)
                              .order_by(schema.AuditEvent.seq)))


def nearest(dlib_encoder, photo, references) -> float:
    """The distance the catalogue should report: `photo`'s face to the nearest of `references`
    (sample files of one talent), in dlib's metric."""
    from castkeep.models.imaging import load_image

    [face] = dlib_encoder.detect(load_image(photo).rgb, embed=True)
    dists = []
    for ref in references:
        [other] = dlib_encoder.detect(load_image(SAMPLES / ref).rgb, embed=True)
        dists.append(float(np.linalg.norm(face.embedding - other.embedding)))
    return min(dists)


def distance_in(reason: str) -> float:
    return float(reason.split("(distance ")[1].split(" ")[0])


@pytest.fixture
def drop(tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


def test_six_photos_of_one_person_are_one_talent(runtime_env, drop, sample_rgb):
    for i in range(6):
        (drop / f"p{i}.jpg").write_bytes(augment_jpeg(sample_rgb["obama.jpg"], i))
        write_manifest(drop, f"p{i}.yaml", manifest_doc([f"p{i}.jpg"], ref=f"person-{i}",
                                                        release=f"r{i}.txt"))
    result = run(drop)
    assert [o.file for o in result.accepted] == ["p0.jpg"]
    r = reasons(result)
    assert sorted(r) == [f"p{i}.jpg" for i in range(1, 6)]
    for reason in r.values():
        assert reason.startswith("face matches talent person-0 (distance 0.")
        assert 0 <= distance_in(reason) <= 0.6
        assert "declare `same_person_as: person-0`" in reason and "`lookalike_of`" in reason
    assert count(schema.Talent) == 1 and count(schema.ReferencePortrait) == 1


def test_a_new_talent_with_a_catalogued_face_is_rejected(ingested_catalogue, drop, fixtures_dir,
                                                        dlib_encoder):
    from castkeep.flows.runtime import open_runtime

    shutil.copy(fixtures_dir / "obama3.jpg", drop / "c.jpg")
    write_manifest(drop, "c.yaml", manifest_doc(["c.jpg"], ref="talent-c"))
    result = run(drop)
    assert result.summary()["accepted"] == 0
    reason = reasons(result)["c.jpg"]
    assert reason.startswith("face matches talent demo-talent-a (distance ")
    expected = nearest(dlib_encoder, fixtures_dir / "obama3.jpg", ["obama.jpg", "obama2.jpg"])
    assert distance_in(reason) == pytest.approx(expected, abs=0.011)
    assert f"reference {ingested_catalogue.reference_ids['obama.jpg']}" in reason or (
        f"reference {ingested_catalogue.reference_ids['obama2.jpg']}" in reason)
    # Nothing catalogued, and (rejected before storing) no object left behind either.
    assert count(schema.Talent) == 2 and count(schema.ReferencePortrait) == 3
    with open_runtime() as rt:
        assert len(list(rt.store.list_keys("references"))) == 3


@pytest.mark.parametrize("status", ["revoked", "expired"])
def test_references_under_ended_consents_are_still_searched(ingested_catalogue, drop,
                                                            fixtures_dir, status):
    from castkeep.flows.runtime import open_runtime

    with open_runtime() as rt, rt.session_scope() as s:
        s.execute(update(schema.Consent).where(schema.Consent.external_ref == "demo-consent-a-2025")
                  .values(status=status))
    shutil.copy(fixtures_dir / "obama3.jpg", drop / "c.jpg")
    write_manifest(drop, "c.yaml", manifest_doc(["c.jpg"], ref="talent-c"))
    result = run(drop)
    assert reasons(result)["c.jpg"].startswith("face matches talent demo-talent-a (distance ")
    assert count(schema.Talent) == 2


def test_same_person_as_joins_the_declared_talent(ingested_catalogue, drop, fixtures_dir,
                                                  dlib_encoder):
    from castkeep.db.audit_log import verify_chain
    from castkeep.flows.runtime import open_runtime

    shutil.copy(fixtures_dir / "obama3.jpg", drop / "c.jpg")
    write_manifest(drop, "c.yaml", manifest_doc(["c.jpg"], ref="talent-c", consent_ref="c-merged",
                                                same_person_as="demo-talent-a"))
    result = run(drop)
    assert result.summary() == {"accepted": 1, "duplicates": 0, "rejected": []}
    [accepted] = result.accepted
    talent_a = ingested_catalogue.talent_ids["demo-talent-a"]
    assert accepted.talent_id == talent_a
    assert count(schema.Talent) == 2  # no record for talent-c
    with open_runtime() as rt, rt.sessions() as s:
        consent = s.scalar(select(schema.Consent).where(schema.Consent.external_ref == "c-merged"))
        assert str(consent.talent_id) == talent_a
        assert verify_chain(s) == []
    [event] = events("identity.same_person")
    assert event.entity_id == accepted.reference_id
    assert event.payload["declared"] == "demo-talent-a"
    assert event.payload["declared_talent_id"] == talent_a
    assert event.payload["manifest_talent"] == "talent-c"
    expected = nearest(dlib_encoder, fixtures_dir / "obama3.jpg", ["obama.jpg", "obama2.jpg"])
    assert event.payload["distance"] == pytest.approx(expected, abs=0.002)


def test_same_person_as_must_name_a_catalogued_talent_that_matches(ingested_catalogue, drop,
                                                                   fixtures_dir):
    shutil.copy(fixtures_dir / "obama3.jpg", drop / "c.jpg")
    shutil.copy(fixtures_dir / "obama_partial_face.jpg", drop / "d.jpg")
    write_manifest(drop, "c.yaml", manifest_doc(["c.jpg"], ref="talent-c", release="c.txt",
                                                same_person_as="no-such-talent"))
    write_manifest(drop, "d.yaml", manifest_doc(["d.jpg"], ref="talent-d", release="d.txt",
                                                same_person_as="demo-talent-b"))
    r = reasons(run(drop))
    assert r["c.jpg"] == ("same_person_as 'no-such-talent' is not in the catalogue; ingest that "
                          "talent first, or remove same_person_as for a new talent")
    # Declared as Talent B (Biden), but the face is Obama's: the mislabel guard refuses it.
    assert r["d.jpg"].startswith("face does not match talent demo-talent-b's 1 other reference "
                                 "(distance 0.")
    assert count(schema.ReferencePortrait) == 3


def test_lookalike_of_is_a_separate_talent_with_the_justification_audited(
        ingested_catalogue, drop, fixtures_dir, dlib_encoder):
    shutil.copy(fixtures_dir / "obama3.jpg", drop / "twin.jpg")
    lookalike = [{"talent": "demo-talent-a", "justification": TWIN_NOTE}]
    write_manifest(drop, "twin.yaml", manifest_doc(["twin.jpg"], ref="talent-twin",
                                                   lookalike_of=lookalike))
    result = run(drop)
    assert result.summary() == {"accepted": 1, "duplicates": 0, "rejected": []}
    [accepted] = result.accepted
    assert accepted.talent_id not in ingested_catalogue.talent_ids.values()
    assert count(schema.Talent) == 3
    [event] = events("identity.lookalike")
    assert event.entity_id == accepted.reference_id
    assert event.payload["justification"] == TWIN_NOTE
    assert event.payload["declared"] == "demo-talent-a"
    assert event.payload["declared_talent_id"] == ingested_catalogue.talent_ids["demo-talent-a"]
    assert event.payload["talent_id"] == accepted.talent_id
    expected = nearest(dlib_encoder, fixtures_dir / "obama3.jpg", ["obama.jpg", "obama2.jpg"])
    assert event.payload["distance"] == pytest.approx(expected, abs=0.002) and expected <= 0.6


def test_a_declaration_covers_only_the_talent_it_names(ingested_catalogue, drop, fixtures_dir):
    shutil.copy(fixtures_dir / "obama3.jpg", drop / "c.jpg")
    lookalike = [{"talent": "demo-talent-b", "justification": TWIN_NOTE}]
    write_manifest(drop, "c.yaml", manifest_doc(["c.jpg"], ref="talent-c", lookalike_of=lookalike))
    result = run(drop)
    assert reasons(result)["c.jpg"].startswith("face matches talent demo-talent-a (distance ")
    assert events("identity.lookalike") == []


def test_declared_talent_ingested_in_the_same_run(runtime_env, drop, fixtures_dir):
    # "a-merged.yaml" sorts first but names the talent "z-original.yaml" brings: declarations go
    # last, so one run accepts both.
    shutil.copy(fixtures_dir / "obama.jpg", drop / "original.jpg")
    shutil.copy(fixtures_dir / "obama2.jpg", drop / "merged.jpg")
    write_manifest(drop, "a-merged.yaml", manifest_doc(
        ["merged.jpg"], ref="agency-77", release="m.txt", same_person_as="agency-12"))
    write_manifest(drop, "z-original.yaml", manifest_doc(["original.jpg"], ref="agency-12",
                                                         release="o.txt"))
    result = run(drop)
    assert result.summary() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert len({o.talent_id for o in result.accepted}) == 1
    assert count(schema.Talent) == 1
