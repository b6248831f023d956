"""flows/components.py: settings -> engine options, encoder, signer, trust anchors and licence
ids, built in one place (the encoder part with a tiny random-weight insightface pack)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from castkeep.errors import (
    ModelNotConfiguredError,
    SigningError,
    SpecError,
    UnknownModelError,
)
from castkeep.flows import components as face_encoder
from castkeep.flows import components as rc
from castkeep.flows.components import build_components
from castkeep.flows.settings import FacesSettings, Settings
from castkeep.models.request_spec import request_from_mapping
from castkeep.provenance.policy import use_of, use_record
from tests.plugins.request import request_doc

REPO = Path(__file__).resolve().parents[2]


def test_use_and_synthetic_likeness_follow_the_engine():
    spec = request_from_mapping(request_doc(talents=["a", "b"]))
    use = use_of(spec)
    assert (use.channel, use.territory, use.purpose) == ("social", "FR", "advertising")
    assert use.edits == ("lighting", "camera", "group_composite")
    assert use.synthetic_likeness is False  # classical edits the photograph itself
    assert use_of(request_from_mapping(request_doc(engine="qwen-image-edit"))).synthetic_likeness
    record = use_record(spec)
    assert record["publish_date"] == spec.publish_date.isoformat()


def test_engine_options_and_licences_come_from_settings(tmp_path):
    s = Settings(home=tmp_path, engines={"qwen_model_dir": tmp_path / "q", "qwen_licence_id": "L1"})
    opts = rc.engine_construct_options("qwen-image-edit", s)
    assert opts["model_dir"] == str(tmp_path / "q") and opts["licence_id"] == "L1"
    assert rc.engine_construct_options("classical", s) == {}
    assert rc.licence_ids(s, "qwen-image-edit", "dlib-resnet-v1") == {"qwen-image-edit": "L1"}
    assert rc.licence_setting_names("classical", "insightface-buffalo_l") == {
        "insightface-buffalo_l": "CASTKEEP_FACES__INSIGHTFACE_LICENCE_ID"}


def _signing(dev_ca) -> dict:
    return {"cert_chain": dev_ca.chain, "private_key": dev_ca.private_key,
            "algorithm": dev_ca.algorithm}


@pytest.mark.parametrize("change, error, words", [
    ({"engine": "nope"}, UnknownModelError, "unknown edit engine 'nope'; known engines: classical"),
    ({"engine_options": {"bogus": 1}}, SpecError, "unknown classical option(s) ['bogus']"),
    ({"engine_options": {"variation": 3}}, SpecError, "option 'variation' must be a number"),
    ({"scene": "on a beach"}, SpecError, "cannot change the scene"),
    ({"engine": "qwen-image-edit"}, ModelNotConfiguredError, "CASTKEEP_ENGINES__QWEN_MODEL_DIR"),
])
def test_check_request_refuses_what_the_engine_cannot_do(tmp_path, dev_ca, change, error, words):
    settings = Settings(home=tmp_path, signing=_signing(dev_ca))
    rc.check_request(request_from_mapping(request_doc()), settings)  # the unchanged one passes
    with pytest.raises(error) as info:
        rc.check_request(request_from_mapping(request_doc(**change)), settings)
    assert words in str(info.value) and info.value.exit_code == 2


def test_check_request_needs_a_signing_identity(tmp_path):
    with pytest.raises(SigningError, match="no signing identity: run `castkeep keys init`"):
        rc.check_request(request_from_mapping(request_doc()), Settings(home=tmp_path))


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
    assert (profile.name, profile.metric, profile.threshold, profile.dim) == (
        "insightface-tinypack", "cosine", 0.5, 64)
    assert type(profile.threshold) is float and profile.version
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.threshold = 1.0  # type: ignore[misc]


def test_bare_insightface_takes_the_settings_pack(tiny_root):
    faces = _faces(tiny_root, encoder="insightface", insightface_pack="tinypack")
    assert face_encoder.encoder_options(faces)["pack"] == "tinypack"
    assert face_encoder.encoder_profile(faces).name == "insightface-tinypack"
    assert face_encoder.configured_encoder(faces, load=False).name == "insightface-tinypack"


def test_dlib_and_unknown_names(tiny_root):
    faces = _faces(tiny_root)
    assert face_encoder.encoder_options(faces) == {"max_side": 512}
    assert face_encoder.encoder_options(faces, "someone-else") == {}
    with pytest.raises(UnknownModelError, match="known encoders: .*dlib-resnet-v1"):
        face_encoder.configured_encoder(faces, name="someone-else", load=False)


def test_dlib_keeps_its_converted_resnet_under_the_data_dir(tiny_root, tmp_path):
    faces = _faces(tiny_root)
    options = face_encoder.encoder_options(faces, home=tmp_path)
    assert options == {"max_side": 512, "cache_dir": str(tmp_path / "models")}
    built = build_components(Settings(home=tmp_path, faces=faces))
    assert built.encoder_options["cache_dir"] == str(tmp_path / "models")


def test_stored_name_from_the_environment_keeps_its_pack(tiny_root, monkeypatch):
    monkeypatch.setenv("CASTKEEP_FACES__ENCODER", "insightface-tinypack")
    monkeypatch.setenv("CASTKEEP_FACES__INSIGHTFACE_ROOT", str(tiny_root))
    monkeypatch.setenv("CASTKEEP_FACES__INSIGHTFACE_PACK", "buffalo_s")
    faces = Settings().faces
    assert face_encoder.encoder_profile(faces).name == "insightface-tinypack"
    assert "pack" not in face_encoder.encoder_options(faces)


def test_every_encoder_construction_goes_through_the_helper():
    """No flow or task builds an encoder with its own options (the gap this helper closes)."""
    allowed = {"flows/components.py", "tasks/audit.py"}  # tasks/audit takes options as arguments
    offenders = []
    for path in sorted([*REPO.glob("flows/**/*.py"), *REPO.glob("tasks/**/*.py")]):
        rel = path.relative_to(REPO).as_posix()
        if rel not in allowed and re.search(r"\b(get_encoder|shared_encoder)\(", path.read_text()):
            offenders.append(rel)
    assert offenders == []


def test_signer_and_trust_anchors_from_settings(tmp_path, dev_ca):
    settings = Settings(home=tmp_path, signing={"cert_chain": dev_ca.chain,
                                                "private_key": dev_ca.private_key,
                                                "algorithm": dev_ca.algorithm,
                                                "trust_anchors": [dev_ca.root_cert]})
    first, second = build_components(settings), build_components(settings, "classical")
    assert first.signer_config.chain_path == Path(dev_ca.chain)
    assert first.signer is second.signer  # one signer per process and identity
    assert first.trust_anchors == [Path(dev_ca.root_cert)]
    assert first.engine_name == "classical" and first.engine_options == {}
    assert first.licence_ids == {} and first.encoder_name == "dlib-resnet-v1"


def test_only_the_edge_reads_settings():
    """Nothing under tasks/, models/, db/ or provenance/ reads settings; only components.py,
    runtime.py and settings.py turn them into objects (and entry points call get_settings)."""
    offenders = []
    for folder in ("tasks", "models", "db", "provenance"):
        for path in sorted(REPO.glob(f"{folder}/**/*.py")):
            text = path.read_text()
            if "get_settings(" in text or "castkeep.flows" in text:
                offenders.append(path.relative_to(REPO).as_posix())
    assert offenders == []


def test_one_vocabulary_for_statuses_and_edit_kinds():
    """The catalogue's CHECK constraints, consent scopes, manifests and engines use the words of
    castkeep/vocab.py, not copies of their own."""
    from castkeep.db import schema
    from castkeep.models.engines.base import EDIT_KINDS as engine_kinds
    from castkeep.provenance.assertions import EDIT_KINDS as manifest_kinds
    from castkeep.provenance.consent import EDIT_KINDS as consent_kinds
    from castkeep.vocab import AssetStatus, EditKind, RequestStatus, values

    assert engine_kinds == manifest_kinds == consent_kinds == values(EditKind)
    assert schema.ASSET_STATUSES == values(AssetStatus)
    assert schema.REQUEST_STATUSES == values(RequestStatus)
    literal_copies = []
    for path in sorted(REPO.glob("**/*.py")):
        if ".venv" in path.parts or "build" in path.parts or path.name == "vocab.py" or "tests" in path.parts:
            continue
        if re.search(r'"lighting", "camera", "background"', path.read_text()):
            literal_copies.append(path.relative_to(REPO).as_posix())
    assert literal_copies == []


def test_one_definition_of_shared_helpers():
    """Port helpers, box IoU, the gpu limit name, the assets prefix and migrate-if-behind are
    defined once; error classes live in castkeep/errors.py."""
    patterns = {
        r"def _?free_port\(": "castkeep/net.py",
        r"def _?box_iou\(": "models/faces/face_types.py",
        r'^GPU_LIMIT = "gpu"': "tasks/generate.py",
        r'^ASSETS_PREFIX = "assets"': "db/catalogue.py",
        r"[!=]= (migrate\.|migrations\.)?head\(\)": "db/migration_head.py",
        r"^class \w+(Error|Refused)\((\w+Error|Exception)\)": "castkeep/errors.py",
    }
    found: dict[str, set[str]] = {p: set() for p in patterns}
    for folder in ("castkeep", "flows", "tasks", "models", "db", "provenance"):
        for path in REPO.glob(f"{folder}/**/*.py"):
            text = path.read_text()
            for pattern in patterns:
                if re.search(pattern, text, re.M):
                    found[pattern].add(path.relative_to(REPO).as_posix())
    assert found == {p: {where} for p, where in patterns.items()}
