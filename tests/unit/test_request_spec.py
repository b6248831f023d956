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

    example = Path(__file__).resolve().parents[2] / "examples" / "requests" / "group-social.yaml"
    spec = load_request(example)
    assert spec.talents == ("demo-talent-a", "demo-talent-b")
    assert spec.lighting.key_azimuth == -45 and spec.lighting.colour_temperature == 3800
    assert (spec.variants, spec.territory, spec.approval_required) == (3, "FR", True)


def _laughs(levels: int) -> str:
    """The "billion laughs" YAML: each level holds nine aliases of the one before."""
    names = "abcdefghi"[:levels]
    lines = [f'  {names[0]}: &{names[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip(names, names[1:]):
        lines.append(f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "engine_options:\n" + "\n".join(lines) + "\n"


def _request_yaml(extra: str = "") -> str:
    return "".join(f"{k}: {json.dumps(v)}\n" for k, v in BASE.items()) + extra


def test_alias_bomb_in_engine_options_is_refused_before_expansion(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_request_yaml(_laughs(9)))
    assert len(_laughs(9)) < 600  # a few hundred bytes that would expand to 9**9 strings
    with pytest.raises(ManifestError) as err:
        load_request(path)
    msg = str(err.value)
    # Line 9: the first anchor, under the 7 fields of BASE and `engine_options:`.
    assert msg.startswith(f"{path}: line 9:") and "aliases" in msg and "not allowed" in msg


@pytest.mark.parametrize("extra", [
    _laughs(2),  # small enough to load: refused for the alias, not the size
    "brief: &b hello\n",  # an anchor alone
    "engine_options: {variation: 0}\nthresholds: &t {max_retries: 1}\n",
])
def test_any_anchor_or_alias_is_refused(tmp_path, extra):
    path = tmp_path / "req.yaml"
    path.write_text(_request_yaml(extra))
    with pytest.raises(ManifestError, match="anchors and aliases"):
        load_request(path)


def test_oversized_request_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(_request_yaml("brief: " + "x" * (1 << 20) + "\n"))
    with pytest.raises(ManifestError, match=r"larger than 1024 KiB"):
        load_request(path)


def test_engine_options_are_bounded():
    with pytest.raises(ManifestError, match=r"'engine_options'.*16384 allowed"):
        request_from_mapping({**BASE, "engine_options": {"prompt": "x" * 20000}})
    deep: dict = {"v": 1}
    for _ in range(7):
        deep = {"k": deep}
    with pytest.raises(ManifestError, match=r"'engine_options'.*nested more than 6"):
        request_from_mapping({**BASE, "engine_options": deep})
    with pytest.raises(ManifestError, match=r"'engine_options'.*plain values"):
        request_from_mapping({**BASE, "engine_options": {"when": dt.date(2026, 1, 1)}})
    ok = request_from_mapping({**BASE, "engine_options": {"loras": [{"name": "x", "weight": 1}]}})
    assert ok.engine_options == {"loras": [{"name": "x", "weight": 1}]}
