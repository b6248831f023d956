from __future__ import annotations

import pytest

from castkeep.errors import ModelNotConfiguredError, SigningError, SpecError, UnknownModelError
from castkeep.flows import request_context as rc
from castkeep.flows.settings import Settings
from castkeep.models.request_spec import request_from_mapping
from tests.plugins.request import request_doc


def test_use_and_synthetic_likeness_follow_the_engine():
    spec = request_from_mapping(request_doc(talents=["a", "b"]))
    use = rc.use_of(spec)
    assert (use.channel, use.territory, use.purpose) == ("social", "FR", "advertising")
    assert use.edits == ("lighting", "camera", "group_composite")
    assert use.synthetic_likeness is False  # classical edits the photograph itself
    assert rc.use_of(request_from_mapping(request_doc(engine="qwen-image-edit"))).synthetic_likeness
    record = rc.use_record(spec)
    assert record["publish_date"] == spec.publish_date.isoformat()


def test_engine_options_and_licences_come_from_settings(tmp_path):
    s = Settings(home=tmp_path, engines={"qwen_model_dir": tmp_path / "q", "qwen_licence_id": "L1"})
    opts = rc.engine_construct_options("qwen-image-edit", s)
    assert opts["model_dir"] == str(tmp_path / "q") and opts["licence_id"] == "L1"
    assert rc.engine_construct_options("classical", s) == {}
    assert rc.licence_ids(s, "qwen-image-edit", "dlib-resnet-v1") == {"qwen-image-edit": "L1"}
    assert rc.licence_setting_names("classical", "insightface-buffalo_l") == {
        "insightface-buffalo_l": "CASTKEEP_FACES__INSIGHTFACE_LICENCE_ID"}


def test_object_location_is_a_local_path_for_the_filesystem_store(fs_store):
    obj = fs_store.put_bytes(b"x", prefix="reports", ext="txt", media_type="text/plain")
    path = rc.object_location(fs_store, obj.key)
    assert path.startswith("/") and open(path, "rb").read() == b"x"


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
