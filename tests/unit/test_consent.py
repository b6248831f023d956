"""Consent manifests: validation, loaders, error messages naming file and field, terms."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from castkeep.errors import ManifestError
from castkeep.provenance.consent import (
    ISO_3166_ALPHA2,
    ConsentManifest,
    ConsentTerms,
    is_manifest_name,
    load_manifests,
    parse_manifest_bytes,
)


def manifest_dict(**overrides):
    base = {
        "talent": {"external_ref": "agency-001", "display_name": "Test Person"},
        "portraits": ["a.jpg", "b.jpg"],
        "release_document": "release.txt",
        "valid_from": "2024-01-01",
        "valid_until": "2030-12-31",
        "scope": {
            "channels": ["web", "social"],
            "territories": ["fr", "DE"],
            "purposes": ["advertising"],
            "edits": ["lighting", "camera"],
        },
        "synthetic_likeness": True,
        "signed_by": "Test Person",
    }
    base.update(overrides)
    return base


def write(tmp_path: Path, name: str, doc) -> Path:
    path = tmp_path / name
    text = json.dumps(doc) if name.endswith(".json") else yaml.safe_dump(doc)
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_manifest_loads_with_normalised_values(tmp_path):
    [loaded] = load_manifests(write(tmp_path, "consent.yaml", manifest_dict()))
    m = loaded.manifest
    assert loaded.index is None and loaded.label.endswith("consent.yaml")
    assert m.scope.territories == ["DE", "FR"]  # upper-cased, sorted
    assert m.valid_from == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    # A date as valid_until covers that whole day.
    assert m.valid_until == dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
    assert m.talent.key == "ref:agency-001"


def test_json_batch_loads_each_entry(tmp_path):
    other = manifest_dict(talent={"id": str(uuid.uuid4()), "display_name": "Other"})
    path = write(tmp_path, "batch.json", {"consents": [manifest_dict(), other]})
    loaded = load_manifests(path)
    assert [x.index for x in loaded] == [0, 1]
    assert loaded[1].label.endswith("batch.json[consents.1]")
    assert loaded[1].manifest.talent.key.startswith("id:")


@pytest.mark.parametrize(
    "overrides, field, words",
    [
        ({"scope": {"channels": ["web"], "territories": ["XX"], "purposes": ["advertising"]}},
         "scope.territories", "XX"),
        ({"scope": {"channels": ["radio"], "territories": ["FR"], "purposes": ["advertising"]}},
         "scope.channels.0", "web"),
        ({"scope": {"channels": ["web"], "territories": ["FR"], "purposes": ["advertising"],
                    "edits": ["face_swap"]}}, "scope.edits.0", "lighting"),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"minor": True}, "(top level)", "guardian"),
        ({"valid_until": "2023-01-01"}, "(top level)", "valid_until must be after"),
        ({"talent": {"display_name": "No Id"}}, "talent", "external_ref"),
        ({"portraits": []}, "portraits", "at least 1"),
    ],
)
def test_invalid_manifest_names_file_and_field(tmp_path, overrides, field, words):
    path = write(tmp_path, "bad.yaml", manifest_dict(**overrides))
    with pytest.raises(ManifestError) as info:
        load_manifests(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: invalid consent manifest")
    assert f"field `{field}`" in msg
    assert words in msg


def test_minor_with_guardian_is_valid():
    m = ConsentManifest.model_validate(manifest_dict(minor=True, guardian="Parent Person"))
    assert m.minor and m.guardian == "Parent Person"


def test_batch_error_names_entry(tmp_path):
    bad = manifest_dict(scope={"channels": ["web"], "territories": ["ZZ"], "purposes": ["internal"]})
    path = write(tmp_path, "batch.yaml", {"consents": [manifest_dict(), bad]})
    with pytest.raises(ManifestError, match=r"field `consents\.1\.scope\.territories`"):
        load_manifests(path)


@pytest.mark.parametrize(
    "data, words",
    [
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"talent: [unclosed", "cannot parse"),
        (b"- a\n- b\n", "must be a mapping"),
    ],
)
def test_unparseable_manifest(data, words):
    with pytest.raises(ManifestError, match=words) as info:
        parse_manifest_bytes(data, "dir/m.yaml")
    assert str(info.value).startswith("dir/m.yaml: ")


def test_world_and_real_iso_list():
    assert len(ISO_3166_ALPHA2) == 249 and "JP" in ISO_3166_ALPHA2 and "UK" not in ISO_3166_ALPHA2
    m = ConsentManifest.model_validate(
        manifest_dict(scope={"channels": ["web"], "territories": ["world"], "purposes": ["internal"]})
    )
    assert m.scope.territories == ["WORLD"]


def test_terms_digest_ignores_portrait_list_only():
    a = ConsentManifest.model_validate(manifest_dict())
    b = ConsentManifest.model_validate(manifest_dict(portraits=["c.jpg"]))
    c = ConsentManifest.model_validate(manifest_dict(ai_training=True))
    assert a.terms_digest() == b.terms_digest()
    assert a.terms_digest() != c.terms_digest()


def test_terms_from_manifest_and_row():
    m = ConsentManifest.model_validate(manifest_dict())
    t = ConsentTerms.from_manifest(m, consent_id="c-1", talent_id="t-1")
    assert (t.id, t.talent_id, t.territories, t.edits) == ("c-1", "t-1", ("DE", "FR"), ("camera", "lighting"))
    row = SimpleNamespace(
        id=uuid.UUID(int=1), talent_id=uuid.UUID(int=2),
        valid_from=dt.datetime(2024, 1, 1), valid_until=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
        scope={"channels": ["web"], "territories": ["JP"], "purposes": ["editorial"], "edits": []},
        synthetic_likeness=False, ai_training=True, status="revoked", minor=False,
        release_doc_sha256="ab" * 32,
    )
    r = ConsentTerms.from_row(row)
    assert r.id == str(uuid.UUID(int=1)) and r.status == "revoked" and r.ai_training
    assert r.valid_from.tzinfo is not None and r.territories == ("JP",)
    assert r.scope_summary()["purposes"] == ["editorial"]


def test_manifest_names():
    assert is_manifest_name("x.YAML") and is_manifest_name("b.json") and not is_manifest_name("r.txt")


def test_yaml_alias_in_manifest_is_refused(tmp_path):
    text = yaml.safe_dump(manifest_dict()) + "notes: &n [*n]\n"
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(ManifestError) as err:
        load_manifests(tmp_path / "m.yaml")
    assert str(err.value).startswith(f"{tmp_path / 'm.yaml'}: line ")
    assert "aliases" in str(err.value) and "not allowed" in str(err.value)
    merged = b"base: &b {channels: [web]}\nscope:\n  <<: *b\n"
    with pytest.raises(ManifestError, match="anchors and aliases"):
        parse_manifest_bytes(merged, "m.yaml")


def test_notes_and_file_size_are_bounded(tmp_path):
    with pytest.raises(ManifestError, match=r"field `notes`: String should have at most 4000"):
        parse_manifest_bytes(json.dumps(manifest_dict(notes="n" * 4001)).encode(), "m.json")
    assert ConsentManifest.model_validate(manifest_dict(notes="n" * 4000)).notes == "n" * 4000
    path = write(tmp_path, "m.json", manifest_dict(notes="n" * (10 << 20)))
    with pytest.raises(ManifestError, match=r"larger than 1024 KiB"):
        load_manifests(path)


TWIN = {"talent": "agency-002", "justification": "Identical twin; birth records checked 2025-02-03."}


def test_identity_declarations_parse_and_stay_out_of_the_terms_digest():
    plain = ConsentManifest.model_validate(manifest_dict())
    merged = ConsentManifest.model_validate(manifest_dict(same_person_as="agency-009"))
    twin = ConsentManifest.model_validate(manifest_dict(lookalike_of=[TWIN]))
    assert merged.same_person_as == "agency-009" and merged.relationships_declared
    assert twin.lookalike_of[0].talent == "agency-002" and twin.relationships_declared
    assert not plain.relationships_declared and plain.lookalike_of == []
    # Declarations are not consent terms: one consent record whatever the manifest declares,
    # and the digest of a manifest without them is what it always was (existing catalogues).
    assert merged.terms_digest() == twin.terms_digest() == plain.terms_digest() == (
        "b8cfae14b04c889b02b93bebd2af2bd3c48d3642e4de46faedd6758d9a458147")


@pytest.mark.parametrize(
    "overrides, field, words",
    [
        ({"lookalike_of": [{"talent": "agency-002"}]}, "lookalike_of.0.justification", "required"),
        ({"lookalike_of": [{"talent": "agency-002", "justification": "twin"}]},
         "lookalike_of.0.justification", "at least 10"),
        ({"lookalike_of": [{**TWIN, "note": "x"}]}, "lookalike_of.0.note", "unknown field"),
        ({"lookalike_of": [TWIN, dict(TWIN)]}, "(top level)", "names 'agency-002' twice"),
        ({"lookalike_of": [{**TWIN, "talent": "agency-001"}]}, "(top level)",
         "which is this person"),
        ({"same_person_as": "agency-001"}, "(top level)", "names this manifest's own talent"),
        ({"same_person_as": "agency-002", "lookalike_of": [TWIN]}, "(top level)",
         "which is this person"),
        ({"same_person_as": "agency-002",
          "talent": {"id": str(uuid.UUID(int=7)), "display_name": "X"}}, "(top level)",
         "a talent given by castkeep `id` already is one"),
        ({"same_as": "agency-002"}, "same_as", "unknown field"),
    ],
)
def test_invalid_identity_declarations_name_the_field(tmp_path, overrides, field, words):
    path = write(tmp_path, "bad.yaml", manifest_dict(**overrides))
    with pytest.raises(ManifestError) as info:
        load_manifests(path)
    assert f"field `{field}`" in str(info.value) and words in str(info.value)
