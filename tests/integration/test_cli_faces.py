"""`castkeep faces ...` on the real portraits: exact JSON shapes, exit codes, catalogue search."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from castkeep.flows import cli
from castkeep.models.imaging import encode_image
from tests.plugins.faces import side_by_side

CASTKEEP = str(Path(sys.executable).parent / "castkeep")


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    cli._register()
    return CliRunner()


@pytest.fixture(scope="module")
def group_png(tmp_path_factory, portrait_rgb) -> Path:
    canvas, _, _ = side_by_side(portrait_rgb["obama"], portrait_rgb["biden"])
    path = tmp_path_factory.mktemp("group") / "group.png"
    path.write_bytes(encode_image(canvas, "PNG"))
    return path


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_compare_json_shape(runner, castkeep_home, fixtures_dir):
    out = _json(runner.invoke(cli.app, ["faces", "compare", str(fixtures_dir / "obama.jpg"), str(fixtures_dir / "obama3.jpg"), "--json"]))
    assert list(out) == ["encoder", "distance", "similarity", "threshold", "same_person"]
    assert out["encoder"] == "dlib-resnet-v1" and out["threshold"] == 0.6
    assert out["same_person"] is True and 0 < out["distance"] <= 0.6 and out["similarity"] > 0.9
    diff = _json(runner.invoke(cli.app, ["faces", "compare", str(fixtures_dir / "obama.jpg"), str(fixtures_dir / "biden.jpg"), "--json"]))
    assert diff["same_person"] is False and diff["distance"] > 0.6


def test_compare_choosing_faces_in_a_group(runner, castkeep_home, fixtures_dir, group_png):
    biden = str(fixtures_dir / "biden.jpg")
    picked = {}
    for n in ("0", "1"):
        picked[n] = _json(runner.invoke(cli.app, ["faces", "compare", str(group_png), biden, "--face-a", n, "--json"]))
    # exactly one of the two faces in the group is Biden
    assert sorted(p["same_person"] for p in picked.values()) == [False, True]
    largest = _json(runner.invoke(cli.app, ["faces", "compare", str(group_png), biden, "--largest", "--json"]))
    assert largest == picked["0"]


def test_compare_several_faces_exits_3(castkeep_home, fixtures_dir, group_png):
    proc = subprocess.run(
        [CASTKEEP, "faces", "compare", str(group_png), str(fixtures_dir / "biden.jpg"), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert "2 faces found in" in proc.stderr and "--face-a N" in proc.stderr and "--largest" in proc.stderr


def test_compare_no_face_exits_3(castkeep_home, fixtures_dir, tmp_path):
    import numpy as np

    blank = tmp_path / "blank.png"
    blank.write_bytes(encode_image(np.full((240, 320, 3), 200, np.uint8), "PNG"))
    proc = subprocess.run(
        [CASTKEEP, "faces", "compare", str(fixtures_dir / "obama.jpg"), str(blank)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 3
    assert "no face found in" in proc.stderr and "blank.png" in proc.stderr


def test_detect_json(runner, castkeep_home, group_png):
    out = _json(runner.invoke(cli.app, ["faces", "detect", str(group_png), "--json"]))
    assert out["encoder"] == "dlib-resnet-v1" and out["image"]["format"] == "PNG"
    faces = out["faces"]
    assert [f["index"] for f in faces] == [0, 1] and len(faces[0]["landmarks"]) == 5
    areas = [(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]) for f in faces]
    assert areas[0] >= areas[1]
    assert set(faces[0]["quality"]) == {"face_px", "sharpness", "det_score", "yaw", "roll"}
    assert "embedding" not in faces[0]


def test_detect_human_output_and_bad_file(runner, castkeep_home, fixtures_dir, tmp_path):
    res = runner.invoke(cli.app, ["faces", "detect", str(fixtures_dir / "biden.jpg")])
    assert res.exit_code == 0 and "1 face(s)" in res.stdout
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    res = runner.invoke(cli.app, ["faces", "detect", str(bad)])
    from castkeep.errors import UnsupportedImageError

    assert isinstance(res.exception, UnsupportedImageError) and "bad.jpg" in str(res.exception)


def test_calibrate_json_shape(runner, castkeep_home, fixtures_dir, tmp_path):
    for n in ("obama", "obama2", "biden"):
        (tmp_path / f"{n}.jpg").write_bytes((fixtures_dir / f"{n}.jpg").read_bytes())
    csv = tmp_path / "pairs.csv"
    csv.write_text("x,y,label\nobama.jpg,obama2.jpg,YES\nobama.jpg,biden.jpg,no\nobama2.jpg,gone.jpg,0\n")
    out = _json(runner.invoke(cli.app, ["faces", "calibrate", str(csv), "--a-col", "x", "--b-col", "y", "--label-col", "label", "--json"]))
    assert list(out) == ["encoder", "pairs", "threshold", "accuracy", "best_threshold", "best_accuracy", "auc", "failed"]
    assert out["encoder"] == "dlib-resnet-v1" and out["pairs"] == 3 and out["threshold"] == 0.6
    assert out["accuracy"] == pytest.approx(2 / 3, abs=1e-6) and out["auc"] == 1.0
    assert out["best_accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert len(out["failed"]) == 1 and out["failed"][0]["b"] == "gone.jpg" and out["failed"][0]["reason"]


def test_search_against_the_catalogue(runner, runtime_env, portrait_faces, fixtures_dir):
    import datetime as dt

    from castkeep.db import schema
    from castkeep.db.engine import make_engine, session_factory
    from castkeep.db.face_search import add_face
    from castkeep.flows.settings import get_settings

    engine = make_engine(get_settings().database.url)
    try:
        with session_factory(engine)() as session:
            now = dt.datetime.now(dt.timezone.utc)
            ids = {}
            for name in ("obama2", "biden"):
                t = schema.Talent(display_name=name)
                session.add(t)
                session.flush()
                c = schema.Consent(talent_id=t.id, release_doc_sha256="0" * 64, release_doc_key="k", valid_from=now, valid_until=now + dt.timedelta(days=1))
                session.add(c)
                session.flush()
                r = schema.ReferencePortrait(talent_id=t.id, consent_id=c.id, sha256=hashlib.sha256(name.encode()).hexdigest(), object_key=name, media_type="image/jpeg", width=1, height=1)
                session.add(r)
                session.flush()
                add_face(session, portrait_faces[name][0], reference_portrait_id=r.id)
                ids[name] = t.id
            session.commit()
    finally:
        engine.dispose()
    out = _json(runner.invoke(cli.app, ["faces", "search", str(fixtures_dir / "obama.jpg"), "--k", "5", "--json"]))
    assert out["encoder"] == "dlib-resnet-v1" and len(out["hits"]) == 2
    top, other = out["hits"]
    assert top["talent_id"] == str(ids["obama2"]) and top["same_person"] is True
    assert other["talent_id"] == str(ids["biden"]) and other["same_person"] is False
    assert top["distance"] < other["distance"]


def test_unconfigured_insightface_names_the_setting(runner, castkeep_home, fixtures_dir, monkeypatch):
    from castkeep.errors import ModelNotConfiguredError
    from castkeep.flows.settings import get_settings

    monkeypatch.setenv("CASTKEEP_FACES__ENCODER", "insightface")
    get_settings.cache_clear()
    res = runner.invoke(cli.app, ["faces", "detect", str(fixtures_dir / "biden.jpg"), "--json"])
    assert isinstance(res.exception, ModelNotConfiguredError)
    assert "CASTKEEP_FACES__INSIGHTFACE_ROOT" in str(res.exception)
    assert res.stdout == ""


def test_unknown_encoder_setting(runner, castkeep_home, fixtures_dir, monkeypatch):
    from castkeep.errors import UnknownModelError
    from castkeep.flows.settings import get_settings

    monkeypatch.setenv("CASTKEEP_FACES__ENCODER", "facenet")
    get_settings.cache_clear()
    res = runner.invoke(cli.app, ["faces", "detect", str(fixtures_dir / "biden.jpg")])
    assert isinstance(res.exception, UnknownModelError) and "dlib-resnet-v1" in str(res.exception)
