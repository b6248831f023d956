"""Manifest definitions and signing: actions per kind, ingredients, no PII, formats."""

from __future__ import annotations

import hashlib
import io
import json

import c2pa
import pydantic
import pytest
from PIL import Image

from castkeep.errors import SigningError, UnsupportedImageError
from castkeep.provenance.manifest import (
    ConsentAssertion,
    IngredientRef,
    build_manifest_json,
    ingredient_json,
    sign_image,
)

COMPOSITE_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"


def _read_store(signed: bytes, media_type: str) -> dict:
    with c2pa.Reader(media_type, io.BytesIO(signed)) as reader:
        store = json.loads(reader.json())
    return store["manifests"][store["active_manifest"]]


def test_edit_actions(manifest_input_factory):
    m = manifest_input_factory()
    definition = build_manifest_json(m)
    actions = definition["assertions"][0]
    assert actions["label"] == "c2pa.actions.v2"
    opened, edited = actions["data"]["actions"]
    assert opened["action"] == "c2pa.opened"
    assert opened["parameters"]["ingredientIds"] == [ingredient_json(m, 0)["label"]]
    assert edited["action"] == "c2pa.edited"
    assert edited["digitalSourceType"] == COMPOSITE_SOURCE
    assert edited["softwareAgent"] == {"name": "classical", "version": "0.1.0"}
    assert "azimuth 45" in edited["description"]
    assert ingredient_json(m, 0)["relationship"] == "parentOf"
    assert definition["claim_generator_info"][0]["name"] == "castkeep"


def test_composite_actions(manifest_input_factory):
    m = manifest_input_factory("composite", ("obama.jpg", "biden.jpg"),
                               digital_source_type="trainedAlgorithmicMedia")
    actions = build_manifest_json(m)["assertions"][0]["data"]["actions"]
    assert [a["action"] for a in actions] == ["c2pa.created", "c2pa.placed", "c2pa.placed"]
    assert actions[0]["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
    ids = [a["parameters"]["ingredientIds"][0] for a in actions[1:]]
    assert ids == [ingredient_json(m, 0)["label"], ingredient_json(m, 1)["label"]]
    assert {ingredient_json(m, i)["relationship"] for i in range(2)} == {"componentOf"}


def test_edit_needs_exactly_one_reference(manifest_input_factory):
    with pytest.raises(pydantic.ValidationError, match="composite"):
        manifest_input_factory("edit", ("obama.jpg", "biden.jpg"))


def test_unknown_forbidden_edit_and_source_type(manifest_input_factory):
    with pytest.raises(pydantic.ValidationError, match="edit kinds"):
        manifest_input_factory(forbidden_edits=("tattoos",))
    with pytest.raises(pydantic.ValidationError, match="digital_source_type"):
        manifest_input_factory(digital_source_type="digitalCapture")


def test_signed_edit_round_trip(manifest_input_factory, dev_signer, fixtures_dir):
    m = manifest_input_factory(forbidden_edits=("background",))
    signed = sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg", m, dev_signer)
    manifest = _read_store(signed, "image/jpeg")
    labels = [a["label"] for a in manifest["assertions"]]
    assert labels[:4] == ["c2pa.actions.v2", "cawg.training-mining", "com.castkeep.consent",
                          "c2pa.metadata"]
    assert [i["relationship"] for i in manifest["ingredients"]] == ["parentOf"]
    assert manifest["ingredients"][0]["title"] == "reference-0"
    assert "thumbnail" not in manifest  # thumbnails are off by default
    assert all("thumbnail" not in i for i in manifest["ingredients"])


def test_thumbnails_on_request(manifest_input_factory, dev_signer, fixtures_dir):
    m = manifest_input_factory(thumbnails=True)
    signed = sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg", m, dev_signer)
    manifest = _read_store(signed, "image/jpeg")
    assert "thumbnail" in manifest or any("thumbnail" in i for i in manifest["ingredients"])


def test_manifest_never_holds_name_or_release_text(manifest_input_factory, dev_signer, fixtures_dir):
    display_name = "Barack Hussein Obama"
    release_doc = (
        "MODEL RELEASE\n"
        f"I, {display_name}, grant Example Agency the right to use my likeness.\n"
        "Contact: barack.obama@example.org, +1 202 555 0101\n"
        "Address: 1600 Pennsylvania Avenue NW, Washington\n"
    ).encode()
    consent = ConsentAssertion(talents=("tal_7f3a9c",), consents=("con_51b2e0",),
                               valid_until="2030-12-31",
                               release_doc_sha256s=(hashlib.sha256(release_doc).hexdigest(),),
                               detail="full")
    m = manifest_input_factory(consent=consent)
    signed = sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg", m, dev_signer)
    texts = [json.dumps(build_manifest_json(m)), json.dumps(_read_store(signed, "image/jpeg"))]
    fragments = [display_name, "Obama", "barack", *(line for line in release_doc.decode().splitlines() if line)]
    for text in texts:
        for fragment in fragments:
            assert fragment.lower() not in text.lower(), fragment
    # The manifest inside the file carries the hash, and the bytes carry no fragment either.
    assert hashlib.sha256(release_doc).hexdigest() in texts[1]
    for fragment in fragments[2:]:
        assert fragment.encode() not in signed


def test_png_and_webp(manifest_input_factory, dev_signer, fixtures_dir):
    rgb = Image.open(fixtures_dir / "obama3.jpg").convert("RGB")
    for fmt, media_type in (("PNG", "image/png"), ("WEBP", "image/webp")):
        buf = io.BytesIO()
        rgb.save(buf, fmt)
        m = manifest_input_factory(media_type=media_type, title=f"out.{fmt.lower()}")
        signed = sign_image(buf.getvalue(), media_type, m, dev_signer)
        assert _read_store(signed, media_type)["title"] == f"out.{fmt.lower()}"
        assert Image.open(io.BytesIO(signed)).size == rgb.size


def test_media_type_checks(manifest_input_factory, dev_signer, fixtures_dir):
    image = (fixtures_dir / "obama3.jpg").read_bytes()
    with pytest.raises(UnsupportedImageError, match="image/gif"):
        sign_image(image, "image/gif", manifest_input_factory(), dev_signer)
    with pytest.raises(SigningError, match="manifest says image/png"):
        sign_image(image, "image/jpeg", manifest_input_factory(media_type="image/png"), dev_signer)


def test_corrupt_image_is_signing_error(manifest_input_factory, dev_signer):
    with pytest.raises(SigningError, match="complete image"):
        sign_image(b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg", manifest_input_factory(),
                   dev_signer)


def test_ingredient_sha256_is_checked(fixtures_dir, manifest_input_factory, dev_signer):
    data = (fixtures_dir / "obama.jpg").read_bytes()
    good = IngredientRef(media_type="image/jpeg", title="ref", data=data,
                         sha256=hashlib.sha256(data).hexdigest())
    assert good.read() == data
    bad = IngredientRef(media_type="image/jpeg", title="ref", data=data, sha256="0" * 64)
    with pytest.raises(SigningError, match="does not match its sha256"):
        sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg",
                   manifest_input_factory(ingredients=(bad,)), dev_signer)
    with pytest.raises(pydantic.ValidationError, match="exactly one"):
        IngredientRef(media_type="image/jpeg", title="ref")


def test_soft_binding_assertion_is_signed_and_trusted(manifest_input_factory, dev_signer,
                                                      dev_ca, fixtures_dir):
    from castkeep.provenance.manifest import SoftBinding
    from castkeep.provenance.verify import verify_bytes

    m = manifest_input_factory(soft_binding=SoftBinding(alg="com.castkeep.tiled-ss.1",
                                                        value="5a17c0de2bad"))
    signed = sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg", m, dev_signer)
    manifest = _read_store(signed, "image/jpeg")
    binding = next(a["data"] for a in manifest["assertions"] if a["label"] == "c2pa.soft-binding")
    assert binding["alg"] == "com.castkeep.tiled-ss.1"
    assert binding["blocks"][0]["value"] == "5a17c0de2bad"
    assert "scope" in binding["blocks"][0]
    assert verify_bytes(signed, "image/jpeg", trust_anchors=[dev_ca.root_cert]).state == "Trusted"


def test_soft_binding_refuses_a_non_hex_value():
    from castkeep.provenance.manifest import SoftBinding

    with pytest.raises(pydantic.ValidationError):
        SoftBinding(alg="com.castkeep.tiled-ss.1", value="Jane Doe")
