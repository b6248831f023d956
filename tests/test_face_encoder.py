"""The configured face encoder: options from settings for any encoder name, with a tiny
random-weight insightface pack (tests/test_insightface_encoder.py's builders)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from castkeep.errors import UnknownModelError
from castkeep.flows import face_encoder
from castkeep.flows.settings import FacesSettings, get_settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny_root(tiny_insightface_root) -> Path:
    return tiny_insightface_root


def _faces(root: Path, **kw) -> FacesSettings:
    # The settings pack (buffalo_l, the default) is not the pack in the stored name below.
    fields = dict(encoder="dlib-resnet-v1", insightface_root=root, insightface_licence_id="lic-9",
                  detect_max_side=512)
    fields.update(kw)
    return FacesSettings(**fields)


def test_stored_insightface_name_keeps_its_own_pack(tiny_root):
    faces = _faces(tiny_root)
    assert faces.insightface_pack == "buffalo_l"
    options = face_encoder.encoder_options(faces, "insightface-tinypack")
    # No pack: the name carries it, and get_encoder refuses a disagreeing one.
    assert options == {"root": tiny_root, "licence_id": "lic-9", "max_side": 512}
    enc = face_encoder.configured_encoder(faces, name="insightface-tinypack")
    assert enc.info.name == "insightface-tinypack" and enc.info.dim == 64
    assert enc.licence_id == "lic-9" and enc.max_side == 512


def test_profile_of_a_stored_insightface_name_reads_its_pack(tiny_root):
    # What audit and revocation compare faces with; before, no root reached the encoder.
    profile = face_encoder.encoder_profile(_faces(tiny_root), "insightface-tinypack")
    assert profile == {"name": "insightface-tinypack", "version": profile["version"],
                       "metric": "cosine", "threshold": 0.5}
    assert profile["version"]


def test_bare_insightface_takes_the_settings_pack(tiny_root):
    faces = _faces(tiny_root, encoder="insightface", insightface_pack="tinypack")
    assert face_encoder.encoder_options(faces)["pack"] == "tinypack"
    assert face_encoder.encoder_profile(faces)["name"] == "insightface-tinypack"
    assert face_encoder.configured_encoder(faces, load=False).name == "insightface-tinypack"


def test_dlib_and_unknown_names(tiny_root):
    faces = _faces(tiny_root)
    assert face_encoder.encoder_options(faces) == {"max_side": 512}
    assert face_encoder.encoder_options(faces, "someone-else") == {}
    with pytest.raises(UnknownModelError, match="known encoders: .*dlib-resnet-v1"):
        face_encoder.configured_encoder(faces, name="someone-else", load=False)


def test_reads_the_environment_when_not_given(tiny_root, monkeypatch):
    monkeypatch.setenv("CASTKEEP_FACES__ENCODER", "insightface-tinypack")
    monkeypatch.setenv("CASTKEEP_FACES__INSIGHTFACE_ROOT", str(tiny_root))
    monkeypatch.setenv("CASTKEEP_FACES__INSIGHTFACE_PACK", "buffalo_s")
    get_settings.cache_clear()
    try:
        assert face_encoder.encoder_profile()["name"] == "insightface-tinypack"
        assert "pack" not in face_encoder.encoder_options()
    finally:
        get_settings.cache_clear()


def test_every_encoder_construction_goes_through_the_helper():
    """No flow or task builds an encoder with its own options (the gap this helper closes)."""
    allowed = {"flows/face_encoder.py", "tasks/audit.py"}  # tasks/audit takes options as arguments
    offenders = []
    for path in sorted([*REPO.glob("flows/*.py"), *REPO.glob("tasks/*.py")]):
        rel = path.relative_to(REPO).as_posix()
        if rel not in allowed and re.search(r"\b(get_encoder|shared_encoder)\(", path.read_text()):
            offenders.append(rel)
    assert offenders == []
