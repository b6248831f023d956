"""Rights metadata in the file, read back by an independent reader (exiftool), before and after
signing: the C2PA hard binding covers it, and the signed file still verifies Trusted."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess

import numpy as np
import pydantic
import pytest
from PIL import Image

from castkeep.provenance.xmp import RightsMetadata, embed_rights

CONSENT_A = "0b7c2a52-3f0e-4a51-9c56-1d2b7f6c9e01"
CONSENT_B = "7e3f1d40-52aa-4c1e-8e0b-9a4f3c2d1b77"


def exiftool(data: bytes, tmp_path, name: str = "image.jpg") -> dict:
    """Every tag exiftool finds, keyed `Group1:Tag` (`exiftool -j -G1`)."""
    if shutil.which("exiftool") is None:
        pytest.fail("exiftool is missing: apt-get install libimage-exiftool-perl (.ci/run does)")
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(["exiftool", "-j", "-G1", "-struct", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)[0]


def _meta(**overrides) -> RightsMetadata:
    fields = dict(
        digital_source_type="compositeWithTrainedAlgorithmicMedia",
        consent_ids=(CONSENT_A, CONSENT_B),
        usage_terms="Licensed use only: channel web, territory FR, purpose advertising; publish "
                    "from 2026-12-01 until 2030-12-31.",
        license_end=dt.date(2030, 12, 31),
        creator="Example Studio",
        credit="Example Studio / castkeep",
        instructions="Do not alter background. Not for AI training or data mining.",
    )
    fields.update(overrides)
    return RightsMetadata(**fields)


def _jpeg() -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_fields_read_back_with_exiftool(tmp_path):
    original = _jpeg()
    tags = exiftool(embed_rights(original, _meta(web_statement="https://rights.example.com/c")),
                    tmp_path)
    assert tags["XMP-iptcExt:DigitalSourceType"] == (
        "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia")
    assert tags["XMP-plus:ModelReleaseStatus"] == "Limited or Incomplete Model Releases"
    assert tags["XMP-plus:ModelReleaseID"] == [CONSENT_A, CONSENT_B]
    assert tags["XMP-xmpRights:UsageTerms"].startswith("Licensed use only: channel web, territory FR")
    assert tags["XMP-xmpRights:WebStatement"] == "https://rights.example.com/c"
    assert tags["XMP-plus:LicenseEndDate"] == "2030:12:31"
    assert tags["XMP-dc:Creator"] == ["Example Studio"]
    assert tags["XMP-photoshop:Credit"] == "Example Studio / castkeep"
    assert tags["XMP-photoshop:Instructions"].startswith("Do not alter background")
    assert "XMP-plus:MinorModelAgeDisclosure" not in tags
    assert tags["ICC_Profile:ProfileDescription"] == "sRGB built-in"
    assert tags["ICC-header:ColorSpaceData"].strip() == "RGB"


def test_pixels_are_untouched():
    original = _jpeg()
    written = embed_rights(original, _meta())
    assert written != original
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(original))),
                          np.asarray(Image.open(io.BytesIO(written))))


def test_metadata_already_in_the_source_is_dropped(fixtures_dir, tmp_path):
    """The fixture portrait's own XMP/IPTC/EXIF name the person and carry other rights text; the
    written file states only castkeep's fields."""
    source = (fixtures_dir / "obama.jpg").read_bytes()
    before = exiftool(source, tmp_path, "source.jpg")
    assert "Obama" in json.dumps(before)  # the check below could fail
    after = exiftool(embed_rights(source, _meta()), tmp_path)
    assert "obama" not in json.dumps(after).lower()
    assert "XMP-dc:Rights" not in after and "XMP-dc:Description" not in after
    assert not any(k.startswith(("IPTC:", "IFD0:", "ExifIFD:", "GPS:")) for k in after)
    assert after["XMP-plus:ModelReleaseID"] == [CONSENT_A, CONSENT_B]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(source))),
                          np.asarray(Image.open(io.BytesIO(embed_rights(source, _meta())))))


def test_optional_fields_only_when_given(tmp_path):
    tags = exiftool(embed_rights(_jpeg(), _meta(creator=None, credit=None, instructions=None,
                                                minor=True)), tmp_path)
    assert "XMP-xmpRights:WebStatement" not in tags  # no rights URL configured
    assert "XMP-dc:Creator" not in tags and "XMP-photoshop:Credit" not in tags
    assert tags["XMP-plus:MinorModelAgeDisclosure"] == "Age Unknown"


@pytest.mark.parametrize("bad", [
    {"consent_ids": ("Barack Obama",)},  # a name, not a pseudonymous id
    {"consent_ids": ("barack@example.com",)},
    {"consent_ids": ()},
    {"web_statement": "javascript:alert(1)"},
    {"web_statement": "https://example.com/a b"},
    {"creator": "line one\nline two"},
    {"digital_source_type": "digitalCapture"},
])
def test_hostile_or_identifying_values_refused(bad):
    with pytest.raises(pydantic.ValidationError):
        _meta(**bad)


@pytest.mark.parametrize(("fmt", "media_type", "name"), [("PNG", "image/png", "i.png"),
                                                         ("WEBP", "image/webp", "i.webp")])
def test_png_and_webp_carry_the_fields(fmt, media_type, name, tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 120, 200)).save(buf, fmt)
    tags = exiftool(embed_rights(buf.getvalue(), _meta()), tmp_path, name)
    assert tags["XMP-plus:ModelReleaseID"] == [CONSENT_A, CONSENT_B]


def test_unreadable_image_is_a_signing_error():
    from castkeep.errors import SigningError

    with pytest.raises(SigningError, match="JPEG"):
        embed_rights(b"\xff\xd8\xff\xe0 not really a jpeg", _meta())
    with pytest.raises(SigningError, match="complete JPEG, PNG or WebP"):
        embed_rights(b"GIF89a not an image castkeep writes", _meta())


def test_signed_file_keeps_the_fields_and_verifies_trusted(manifest_input_factory, dev_signer,
                                                          dev_ca, fixtures_dir, tmp_path):
    """Written before signing: exiftool still reads them in the signed file, the file verifies
    Trusted, and changing one XMP field afterwards breaks the hard binding."""
    import pyexiv2

    from castkeep.provenance.manifest import sign_image
    from castkeep.provenance.verify import verify_bytes

    m = manifest_input_factory(rights=_meta())
    signed = sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg", m, dev_signer)
    tags = exiftool(signed, tmp_path)
    assert tags["XMP-plus:ModelReleaseID"] == [CONSENT_A, CONSENT_B]
    assert tags["ICC_Profile:ProfileDescription"] == "sRGB built-in"
    report = verify_bytes(signed, "image/jpeg", trust_anchors=[dev_ca.root_cert])
    assert report.state == "Trusted", report.failures

    with pyexiv2.ImageData(signed) as image:
        image.modify_xmp({"Xmp.xmpRights.UsageTerms": {'lang="x-default"': "any use, anywhere"}})
        altered = image.get_bytes()
    assert exiftool(altered, tmp_path, "altered.jpg")["XMP-xmpRights:UsageTerms"] == "any use, anywhere"
    assert verify_bytes(altered, "image/jpeg", trust_anchors=[dev_ca.root_cert]).state != "Trusted"


def test_rights_and_manifest_must_agree_on_the_source_type(manifest_input_factory):
    with pytest.raises(pydantic.ValidationError, match="same digital_source_type"):
        manifest_input_factory(rights=_meta(digital_source_type="trainedAlgorithmicMedia"))
