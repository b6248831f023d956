"""`castkeep edit`: writes the edited image and prints the request pipeline's scores of it."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from castkeep.flows import cli
from castkeep.models.faces.encoders import get_encoder
from castkeep.models.faces.encoders import select_face
from castkeep.models.imaging import load_image
from castkeep.models.request_spec import Thresholds
from castkeep.models.scoring.variant import jsonable, score_variant
from castkeep.models.specs import parse_camera

cli._register()
runner = CliRunner()


@pytest.fixture(autouse=True)
def _home(castkeep_home):
    return castkeep_home


def _run(*args):
    result = runner.invoke(cli.app, list(args))
    return result


def test_single_edit_json(fixtures_dir, tmp_path):
    out = tmp_path / "edited.jpg"
    res = _run("edit", str(fixtures_dir / "obama.jpg"), "-o", str(out), "--engine", "classical",
               "--light", "azimuth=45,elevation=30,fill=0.2,temp=3200",
               "--camera", "roll=15,shot=medium", "--seed", "3", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)  # stdout is exactly the JSON
    assert set(report) >= {"passed", "identity", "extra_faces", "lighting", "camera", "quality"}
    assert report["passed"] is True and report["reasons"] == []
    assert report["identity"]["passed"] is True
    assert report["identity"]["faces"][0]["distance"] < report["identity"]["threshold"]
    assert report["lighting"]["detail"]["spec_azimuth"] == 45.0
    assert report["lighting"]["value"] <= 25.0
    assert report["camera"]["detail"]["measured_roll"] == pytest.approx(15.0, abs=3.0)
    assert report["camera"]["detail"]["shot_bin_error"] == 0
    assert report["quality"]["passed"] is True
    assert report["edit_kinds"] == ["lighting", "camera"]
    img = load_image(out)
    assert len(get_encoder("dlib-resnet-v1").detect(img.rgb, embed=False)) == 1


def test_group_edit_png(fixtures_dir, tmp_path):
    out = tmp_path / "group.png"
    res = _run("edit", str(fixtures_dir / "obama.jpg"), str(fixtures_dir / "biden.jpg"),
               "-o", str(out), "--light", "azimuth=-30", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["identity"]["faces_found"] == 2
    assert [f["passed"] for f in report["identity"]["faces"]] == [True, True]
    assert report["camera"] is None
    assert "group_composite" in report["edit_kinds"]
    assert load_image(out).format == "PNG"


def test_group_edit_scores_the_shot_as_the_request_pipeline_does(fixtures_dir, tmp_path):
    """A group shot's camera score includes its framing (the shot), as a request variant's
    does: the same scorer, on the same output and inputs, gives the same record."""
    out = tmp_path / "group.png"  # lossless: the file holds the pixels that were scored
    photos = [fixtures_dir / "obama.jpg", fixtures_dir / "biden.jpg"]
    res = _run("edit", *map(str, photos), "-o", str(out), "--camera", "roll=5,shot=medium",
               "--json")
    assert res.exit_code == 0, res.output
    camera = json.loads(res.stdout)["camera"]
    assert camera["detail"]["spec_shot"] == "medium"
    assert camera["detail"]["shot_bin_error"] == 0 and camera["detail"]["faces"] == 2

    encoder = get_encoder("dlib-resnet-v1")
    encoder.load()
    refs = [load_image(p).rgb for p in photos]
    faces = [select_face(encoder.detect(rgb, embed=True), largest=True) for rgb in refs]
    ids = [str(uuid.uuid4()) for _ in photos]
    pipeline = score_variant(
        load_image(out).rgb, encoder=encoder,
        talent_embeddings={t: [f.embedding] for t, f in zip(ids, faces)},
        talent_labels={}, reference_faces=dict(zip(ids, faces)),
        reference_images=dict(zip(ids, refs)), lighting=None,
        camera=parse_camera("roll=5,shot=medium"), thresholds=Thresholds(),
        allow_extra_faces=False,
    )
    (record,) = [r for r in pipeline.records if r.kind == "camera"]
    assert camera["value"] == record.value and camera["passed"] is record.passed
    assert camera["detail"] == jsonable(dict(record.detail))


def test_refusal_is_an_error_and_writes_nothing(fixtures_dir, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    res = _run("edit", str(fixtures_dir / "obama.jpg"), "-o", str(out_dir / "never.jpg"),
               "--camera", "yaw=60")
    assert res.exit_code != 0
    assert "qwen-image-edit" in str(res.exception)
    assert list(out_dir.iterdir()) == []


def test_bad_spec_names_the_key(fixtures_dir, tmp_path):
    res = _run("edit", str(fixtures_dir / "obama.jpg"), "-o", str(tmp_path / "x.jpg"),
               "--light", "azimuth=45,brightness=2")
    assert res.exit_code != 0
    assert "'brightness'" in str(res.exception)


def test_qwen_without_model_dir_names_the_setting(fixtures_dir, tmp_path):
    res = _run("edit", str(fixtures_dir / "obama.jpg"), "-o", str(tmp_path / "x.jpg"),
               "--engine", "qwen-image-edit", "--light", "azimuth=10")
    assert "CASTKEEP_ENGINES__QWEN_MODEL_DIR" in str(res.exception)


def test_subprocess_error_exit_code(fixtures_dir, tmp_path, castkeep_home):
    import os
    import subprocess
    import sys
    from pathlib import Path

    # The venv's own entry point: CI does not put the venv on PATH.
    exe = str(Path(sys.executable).parent / "castkeep")
    proc = subprocess.run(
        [exe, "edit", str(fixtures_dir / "obama.jpg"), "-o", str(tmp_path / "y.jpg"),
         "--scene", "a beach"],
        capture_output=True, text=True, env={**os.environ, "CASTKEEP_HOME": str(castkeep_home)},
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "cannot change the scene" in proc.stderr


def test_help():
    res = _run("edit", "--help")
    assert res.exit_code == 0 and "--light" in res.stdout and "--camera" in res.stdout


def test_output_to_an_existing_folder_names_the_file(fixtures_dir, tmp_path):
    res = _run("edit", str(fixtures_dir / "obama.jpg"), "-o", str(tmp_path), "--light",
               "azimuth=45", "--json")
    assert res.exit_code == 0, res.output
    written = tmp_path / "obama-classical.jpg"
    assert json.loads(res.stdout)["output"] == str(written)
    assert load_image(written).format == "JPEG"
