from __future__ import annotations

import datetime as dt
import json

import pytest

from castkeep.errors import ManifestError
from castkeep.models.request_spec import Thresholds, load_request, request_from_mapping

BASE = {
    "campaign": "Spring",
    "requester": "marketing",
    "talents": ["t-1"],
    "channel": "Social",
    "territory": "fr",
    "purpose": "advertising",
    "publish_date": "2026-12-01",
}


def test_yaml_file_with_text_specs_and_defaults(tmp_path):
    path = tmp_path / "req.yaml"
    path.write_text(
        "campaign: Spring\nrequester: mk\ntalents: [a, b]\nscene: on a terrace\n"
        "lighting: 'azimuth=-45,fill=0.2'\ncamera: {roll: 12, shot: medium}\n"
        "variants: 3\nchannel: web\nterritory: de\npurpose: advertising\n"
        "publish_date: 2026-12-01\nthresholds: {camera_roll_deg: 4}\n"
    )
    spec = load_request(
        path, default_engine="classical", default_thresholds={"lighting_azimuth_deg": 20.0,
                                                              "max_retries": 1, "other": 3}
    )
    assert spec.talents == ("a", "b")
    assert spec.lighting.key_azimuth == -45 and spec.lighting.fill_ratio == 0.2
    assert spec.camera.roll == 12 and spec.camera.shot.value == "medium"
    assert spec.territory == "DE"
    assert spec.publish_date == dt.date(2026, 12, 1)
    assert spec.thresholds.camera_roll_deg == 4
    assert spec.thresholds.lighting_azimuth_deg == 20.0
    assert spec.thresholds.max_retries == 1
    assert spec.engine == "classical"
    assert spec.edit_kinds() == ("lighting", "camera", "background", "group_composite")


def test_json_file_and_normalisation(tmp_path):
    path = tmp_path / "req.json"
    path.write_text(json.dumps({**BASE, "talents": "t-1", "lighting": {"az": 30}}))
    spec = load_request(path)
    assert spec.talents == ("t-1",)
    assert spec.channel == "social" and spec.territory == "FR"
    assert spec.edit_kinds() == ("lighting",)
    assert not spec.is_group


def test_unknown_field_names_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({**BASE, "varients": 3}))
    with pytest.raises(ManifestError) as err:
        load_request(path)
    assert str(path) in str(err.value) and "'varients'" in str(err.value)


def test_bad_spec_key_names_the_field():
    with pytest.raises(ManifestError, match=r"field 'camera'.*'rool'"):
        request_from_mapping({**BASE, "camera": "rool=3"})
    with pytest.raises(ManifestError, match=r"field 'lighting'.*'azimuth'"):
        request_from_mapping({**BASE, "lighting": {"azimuth": 400}})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"talents": []}, "talents"),
        ({"talents": ["a", "a"]}, "talents"),
        ({"territory": "France"}, "territory"),
        ({"variants": 0}, "variants"),
        ({"publish_date": "soon"}, "publish_date"),
        ({"thresholds": {"max_retries": -1}}, "thresholds.max_retries"),
        ({"thresholds": {"identity": 0.5}}, "thresholds.identity"),
    ],
)
def test_invalid_values_name_the_field(change, field):
    with pytest.raises(ManifestError) as err:
        request_from_mapping({**BASE, **change}, source="r.yaml")
    assert str(err.value).startswith("r.yaml: ")
    assert f"field {field!r}" in str(err.value)


def test_seed_count_must_match_variants():
    with pytest.raises(ManifestError, match="one per variant"):
        request_from_mapping({**BASE, "variants": 2, "seeds": [1]})
    spec = request_from_mapping({**BASE, "variants": 2, "seeds": [7, 9]})
    assert spec.seed_for(0, 0) == 7 and spec.seed_for(1, 0) == 9
    assert spec.seed_for(0, 1) not in (7, 9)


def test_seeds_are_deterministic_and_distinct():
    a = request_from_mapping({**BASE, "variants": 3})
    b = request_from_mapping({**BASE, "variants": 3})
    seeds = [a.seed_for(v, t) for v in range(3) for t in range(3)]
    assert seeds == [b.seed_for(v, t) for v in range(3) for t in range(3)]
    assert len(set(seeds)) == 9
    assert a.sha256() == b.sha256()
    c = request_from_mapping({**BASE, "variants": 3, "campaign": "Autumn"})
    assert c.sha256() != a.sha256() and c.seed_for(0, 0) != a.seed_for(0, 0)


def test_not_a_mapping_and_missing_file(tmp_path):
    with pytest.raises(ManifestError, match="must be a mapping"):
        request_from_mapping(["x"])
    with pytest.raises(ManifestError, match="not found"):
        load_request(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("campaign: [unclosed")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_request(bad)


def test_thresholds_defaults():
    t = Thresholds()
    assert t.identity_distance is None and t.max_retries == 2
    spec = request_from_mapping({**BASE, "thresholds": {"identity_distance": 0.5}})
    assert spec.thresholds.identity_distance == 0.5


def test_shipped_example_request_is_valid():
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "requests" / "group-social.yaml"
    spec = load_request(example)
    assert spec.talents == ("demo-talent-a", "demo-talent-b")
    assert spec.lighting.key_azimuth == -45 and spec.lighting.colour_temperature == 3800
    assert (spec.variants, spec.territory, spec.approval_required) == (3, "FR", True)
