"""The ingest_references flow end to end: real dlib, bundled PostgreSQL, real object store,
Prefect test harness. Each rejection reason, dedup, the mislabel guard, rows written atomically."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from castkeep.db import schema
from castkeep.errors import NotFoundError, ObjectStoreError
from tests.plugins.faces import side_by_side
from tests.plugins.ingest import SAMPLES, augment_jpeg, manifest_doc, write_manifest

pytestmark = pytest.mark.usefixtures("prefect_harness")


def run(folder):
    from castkeep.flows.ingest_references import ingest_references

    return ingest_references(str(folder))


def counts():
    from castkeep.flows.runtime import open_runtime

    with open_runtime() as rt, rt.sessions() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in (
            schema.Talent, schema.Consent, schema.ConsentEvent, schema.ReferencePortrait,
            schema.Face, schema.AuditEvent)}


def jpeg(rgb, quality=92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def reasons(result) -> dict[str, str]:
    return {r["file"]: r["reason"] for r in result.summary()["rejected"]}


def test_samples_are_accepted_then_duplicates(ingested_catalogue):
    from castkeep.db.audit_log import verify_chain
    from castkeep.flows.runtime import open_runtime

    first = ingested_catalogue.result
    assert sorted(o.file for o in first.accepted) == ["biden.jpg", "obama.jpg", "obama2.jpg"]
    assert counts() == {"talent": 2, "consent": 2, "consent_event": 2, "reference_portrait": 3,
                        "face": 3, "audit_event": 7}
    with open_runtime() as rt, rt.sessions() as s:
        refs = s.scalars(select(schema.ReferencePortrait)).all()
        for r in refs:
            # The original bytes are what is stored and hashed.
            original = (SAMPLES / r.source_name).read_bytes()
            assert rt.store.get_bytes(r.object_key) == original
            assert r.object_key.startswith("references/") and r.object_key.endswith(".jpg")
            assert (r.width, r.height) == Image.open(io.BytesIO(original)).size
        consent = s.scalar(select(schema.Consent).where(schema.Consent.external_ref == "demo-consent-a-2025"))
        doc = (SAMPLES / "releases" / "demo-talent-a-release.txt").read_bytes()
        assert consent.release_doc_key.startswith("restricted/release-docs/")
        assert rt.store.get_bytes(consent.release_doc_key) == doc
        assert consent.scope["edits"] == ["camera", "group_composite", "lighting"]
        faces = s.scalars(select(schema.Face)).all()
        assert {f.encoder for f in faces} == {"dlib-resnet-v1"} and all(f.dim == 128 for f in faces)
        assert verify_chain(s) == []

    second = run(SAMPLES)
    assert second.summary() == {"accepted": 0, "duplicates": 3, "rejected": []}
    assert all(o.reason.startswith("same bytes as reference") for o in second.duplicates)
    assert counts()["audit_event"] == 7  # a duplicate changes nothing


def test_artifact_lists_every_portrait(runtime_env, prefect_harness, sample_references):
    from prefect.client.orchestration import get_client

    from castkeep.flows.ingest_references import ingest_references

    ingest_references(str(sample_references))  # this test's own run: the newest artifact

    async def latest():
        async with get_client() as client:
            from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

            arts = await client.read_latest_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ingest-references"])))
            return arts[0]

    import asyncio

    art = asyncio.run(latest())
    assert art.type == "table"
    rows = art.data if isinstance(art.data, list) else __import__("json").loads(art.data)
    assert sorted((r["file"], r["status"]) for r in rows) == [
        ("biden.jpg", "accepted"), ("obama.jpg", "accepted"), ("obama2.jpg", "accepted")]


def test_same_bytes_under_two_names_is_one_reference(runtime_env, tmp_path):
    data = (SAMPLES / "obama.jpg").read_bytes()
    (tmp_path / "a.jpg").write_bytes(data)
    (tmp_path / "copy of a.jpg").write_bytes(data)
    write_manifest(tmp_path, "m.yaml", manifest_doc(["a.jpg", "copy of a.jpg"]))
    result = run(tmp_path)
    assert [o.file for o in result.accepted] == ["a.jpg"]
    assert [o.file for o in result.duplicates] == ["copy of a.jpg"]
    assert counts()["reference_portrait"] == 1


def test_each_image_rejection(runtime_env, tmp_path, fixtures_dir, sample_rgb):
    import cv2

    obama = sample_rgb["obama.jpg"]
    two, _, _ = side_by_side(sample_rgb["obama.jpg"], sample_rgb["biden.jpg"], height=400)
    files = {
        "no face.jpg": jpeg(np.full((300, 300, 3), 120, np.uint8)),
        "two faces.jpg": jpeg(two),
        "corrupt.jpg": b"\xff\xd8\xff\xe0 this is not really a jpeg" * 20,
        "truncated.jpg": (SAMPLES / "obama.jpg").read_bytes()[:20000],
        "blurred.jpg": jpeg(cv2.GaussianBlur(obama, (0, 0), 5)),
        "tiny.jpg": jpeg(cv2.resize(obama, (96, 120), interpolation=cv2.INTER_AREA)),
    }
    bomb = io.BytesIO()
    Image.new("1", (9000, 6000)).save(bomb, "PNG")  # 54 MP in a few KB
    files["bomb.png"] = bomb.getvalue()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    write_manifest(tmp_path, "m.yaml", manifest_doc(sorted(files)))
    result = run(tmp_path)
    r = reasons(result)
    assert result.summary()["accepted"] == 0 and set(r) == set(files)
    assert r["no face.jpg"].startswith("no face found")
    assert r["two faces.jpg"] == "2 faces found; a reference portrait must show exactly one person"
    assert r["corrupt.jpg"].startswith("the image header is corrupt")
    assert r["truncated.jpg"].startswith("the JPEG data is truncated or corrupt")
    assert "over the limit of 50,000,000" in r["bomb.png"]
    assert r["blurred.jpg"].startswith("face is too blurred (sharpness ")
    assert r["tiny.jpg"].startswith("no face found") or "below the minimum of 80 px" in r["tiny.jpg"]
    assert counts() == {"talent": 0, "consent": 0, "consent_event": 0, "reference_portrait": 0,
                        "face": 0, "audit_event": 0}


def test_manifest_level_rejections(runtime_env, tmp_path):
    shutil.copy(SAMPLES / "obama.jpg", tmp_path / "expired.jpg")
    shutil.copy(SAMPLES / "obama2.jpg", tmp_path / "minor.jpg")
    shutil.copy(SAMPLES / "biden.jpg", tmp_path / "badfield.jpg")
    write_manifest(tmp_path, "expired.yaml", manifest_doc(["expired.jpg"], ref="t-exp", consent_ref="c-exp",
                                                          valid_from="2020-01-01", valid_until="2021-01-01"))
    write_manifest(tmp_path, "minor.yaml", manifest_doc(["minor.jpg"], ref="t-minor", minor=True))
    doc = manifest_doc(["badfield.jpg"], ref="t-bad")
    doc["scope"]["territories"] = ["FR", "EU"]
    write_manifest(tmp_path, "bad.json", doc)
    write_manifest(tmp_path, "missing.yaml", manifest_doc(["not-there.jpg", "../outside.jpg"], ref="t-miss"))
    r = reasons(run(tmp_path))
    assert r["expired.jpg"].startswith("consent of expired.yaml is not in force: consent c-exp expired on 2021-01-01")
    assert r["minor.yaml"].startswith("minor.yaml: invalid consent manifest")
    assert "`guardian` is required when `minor` is true" in r["minor.yaml"]
    assert r["minor.jpg"].startswith("no valid consent manifest names this portrait")
    assert "bad.json: invalid consent manifest: field `scope.territories`" in r["bad.json"]
    assert "EU" in r["bad.json"]
    assert r["not-there.jpg"] == "named by missing.yaml: 'not-there.jpg' does not exist in the manifest's folder"
    assert "escapes the manifest's folder" in r["../outside.jpg"]
    assert counts()["reference_portrait"] == 0


def test_mislabelled_face_is_rejected_even_within_one_batch(runtime_env, tmp_path):
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        shutil.copy(SAMPLES / name, tmp_path / name)
    write_manifest(tmp_path, "m.yaml", manifest_doc(["obama.jpg", "obama2.jpg", "biden.jpg"], ref="talent-t"))
    result = run(tmp_path)
    assert sorted(o.file for o in result.accepted) == ["obama.jpg", "obama2.jpg"]
    reason = reasons(result)["biden.jpg"]
    assert reason.startswith("face does not match talent talent-t's 2 other references (distance 0.")
    assert "> 0.60)" in reason
    distance = float(reason.split("distance ")[1].split(" ")[0])
    assert distance > 0.6


def test_mislabel_guard_uses_earlier_runs(runtime_env, tmp_path, sample_rgb):
    first = tmp_path / "one"
    first.mkdir()
    shutil.copy(SAMPLES / "biden.jpg", first / "b.jpg")
    write_manifest(first, "m.yaml", manifest_doc(["b.jpg"], ref="talent-b"))
    assert run(first).summary()["accepted"] == 1
    second = tmp_path / "two"
    second.mkdir()
    (second / "b-again.jpg").write_bytes(augment_jpeg(sample_rgb["biden.jpg"], 3))
    (second / "wrong.jpg").write_bytes(augment_jpeg(sample_rgb["obama.jpg"], 2))
    write_manifest(second, "m.yaml", manifest_doc(["b-again.jpg", "wrong.jpg"], ref="talent-b"))
    result = run(second)
    assert [o.file for o in result.accepted] == ["b-again.jpg"]
    assert reasons(result)["wrong.jpg"].startswith("face does not match talent talent-b's 2 other references")


def test_weird_names_are_ingested_by_listing(runtime_env, tmp_path, sample_rgb):
    sub = tmp_path / "sub folder"
    names = ["with space.jpg", "ünïcødé 名前.jpg", "x'y;z.jpg"]
    for i, n in enumerate(names):
        (sub / n).parent.mkdir(parents=True, exist_ok=True)
        (sub / n).write_bytes(augment_jpeg(sample_rgb["obama.jpg"], i))
    # Another person: one face is one talent (identity collisions are rejected).
    (tmp_path / "outside.jpg").write_bytes(augment_jpeg(sample_rgb["biden.jpg"], 9))
    write_manifest(sub, "m.yaml", manifest_doc([*names, "../outside.jpg"], ref="t-weird"))
    write_manifest(tmp_path, "root.yaml", manifest_doc(["outside.jpg"], ref="t-root"))
    result = run(tmp_path)
    assert sorted(o.file for o in result.accepted) == sorted(
        [f"sub folder/{n}" for n in names] + ["outside.jpg"])
    assert reasons(result) == {"sub folder/../outside.jpg": (
        "named by sub folder/m.yaml: '../outside.jpg' escapes the manifest's folder; name files "
        "relative to the manifest's folder, without '..' or absolute paths")}


def test_unusable_source(runtime_env, tmp_path):
    from castkeep.flows.ingest_references import ingest_references

    with pytest.raises(NotFoundError, match="no such folder"):
        ingest_references(str(tmp_path / "nope"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotFoundError, match="not a folder"):
        ingest_references(str(tmp_path / "file.txt"))


def test_s3_prefix_source(runtime_env, s3_endpoint, monkeypatch):
    from minio import Minio

    from castkeep.flows.settings import get_settings

    client = Minio(s3_endpoint["endpoint"], access_key=s3_endpoint["access_key"],
                   secret_key=s3_endpoint["secret_key"], secure=False)
    client.make_bucket("drop-bucket")
    for path in SAMPLES.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            key = f"incoming/{path.relative_to(SAMPLES).as_posix()}"
            client.put_object("drop-bucket", key, io.BytesIO(data), len(data))
    monkeypatch.setenv("CASTKEEP_STORAGE__ENDPOINT", s3_endpoint["endpoint"])
    monkeypatch.setenv("CASTKEEP_STORAGE__ACCESS_KEY", s3_endpoint["access_key"])
    monkeypatch.setenv("CASTKEEP_STORAGE__SECRET_KEY", s3_endpoint["secret_key"])
    get_settings.cache_clear()
    from castkeep.flows.ingest_references import ingest_references

    result = ingest_references("s3://drop-bucket/incoming")
    assert result.summary() == {"accepted": 3, "duplicates": 0, "rejected": []}
    with pytest.raises(NotFoundError, match="NoSuchBucket"):
        ingest_references("s3://no-such-bucket/x")
    monkeypatch.setenv("CASTKEEP_STORAGE__ENDPOINT", "127.0.0.1:9")  # nothing listens there
    get_settings.cache_clear()
    with pytest.raises(ObjectStoreError, match="cannot reach S3"):
        ingest_references("s3://drop-bucket/incoming")


def test_progress_is_reported_per_portrait(runtime_env):
    from castkeep.tasks.ingest import PROGRESS

    seen = []
    token = PROGRESS.set(lambda done, total, outcome: seen.append(
        (done, total, outcome.status if outcome else None)))
    try:
        from castkeep.flows.ingest_references import ingest_references

        ingest_references(str(SAMPLES), chunk_size=2)
    finally:
        PROGRESS.reset(token)
    assert seen == [(0, 3, None), (1, 3, "accepted"), (2, 3, "accepted"), (3, 3, "accepted")]


def test_new_portrait_under_a_revoked_consent_is_rejected(runtime_env, tmp_path, sample_rgb):
    from sqlalchemy import update

    from castkeep.flows.runtime import open_runtime

    (tmp_path / "one.jpg").write_bytes(augment_jpeg(sample_rgb["obama.jpg"], 1))
    doc = manifest_doc(["one.jpg"], ref="t-rev", consent_ref="c-rev")
    write_manifest(tmp_path, "m.yaml", doc)
    assert run(tmp_path).summary()["accepted"] == 1
    with open_runtime() as rt, rt.session_scope() as s:
        s.execute(update(schema.Consent).where(schema.Consent.external_ref == "c-rev")
                  .values(status="revoked"))
    (tmp_path / "two.jpg").write_bytes(augment_jpeg(sample_rgb["obama.jpg"], 2))
    doc["portraits"] = ["one.jpg", "two.jpg"]
    write_manifest(tmp_path, "m.yaml", doc)
    result = run(tmp_path)
    assert [o.file for o in result.duplicates] == ["one.jpg"]
    reason = reasons(result)["two.jpg"]
    assert reason.startswith("consent ") and reason.endswith(
        " of m.yaml is revoked; a new release is needed")
    assert counts()["reference_portrait"] == 1


def test_two_concurrent_ingests_of_one_folder_count_each_portrait_once(runtime_env, tmp_path,
                                                                       sample_rgb):
    import threading

    from castkeep.flows.ingest_references import ingest_references
    from castkeep.tasks.ingest import PROGRESS

    folder = tmp_path / "drop"
    names = [f"p{i:02d}.jpg" for i in range(12)]
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(augment_jpeg(sample_rgb["obama.jpg"], i))
    write_manifest(folder, "m.yaml", manifest_doc(names, ref="t-both"))
    # Both runs have planned before either commits anything: every row the other run commits
    # is then newer than this run's start, under this run's file names.
    barrier = threading.Barrier(2, timeout=300)
    results, errors = {}, []

    def ingest(k):
        def progress(done, total, outcome):
            if outcome is None:
                barrier.wait()

        token = PROGRESS.set(progress)
        try:
            results[k] = ingest_references(str(folder), chunk_size=4)
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()
        finally:
            PROGRESS.reset(token)

    threads = [threading.Thread(target=ingest, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    first, second = results[0].summary(), results[1].summary()
    assert first["rejected"] == [] and second["rejected"] == []
    assert first["accepted"] + second["accepted"] == 12
    assert first["duplicates"] + second["duplicates"] == 12
    accepted = [o.file for r in results.values() for o in r.accepted]
    assert sorted(accepted) == names  # each portrait accepted by exactly one run
    assert counts()["reference_portrait"] == 12
