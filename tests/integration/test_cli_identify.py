"""`castkeep identify`: a real request's output is found again after the transformations a
platform applies (metadata stripped, JPEG q60, 50 % resize, 10 % crop, and combinations), by its
manifest while it is still signed and by its watermark after; the portrait it was made from and
another person's photo are not matched; a copy of a quarantined asset says quarantined."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from castkeep.db import schema
from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

# Each fulfils a real request (about a minute on two cores).
pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def _jpeg(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _resize(im: Image.Image, f: float) -> Image.Image:
    return im.resize((round(im.width * f), round(im.height * f)), Image.LANCZOS)


def _crop(im: Image.Image, f: float = 0.1) -> Image.Image:
    # 10 % of each dimension, unevenly from the sides (a crop is rarely tile-aligned).
    w, h = im.size
    return im.crop((int(w * f * 0.4), int(h * f * 0.7), w - int(w * f * 0.6), h - int(h * f * 0.3)))


def _stripped(data: bytes) -> bytes:
    # The same JPEG data without its APP segments (C2PA, XMP, EXIF): what a metadata stripper does.
    from castkeep.provenance.xmp import strip_jpeg_metadata

    return strip_jpeg_metadata(data)


COPIES = {
    "metadata stripped": lambda data, im: _stripped(data),
    "jpeg q60": lambda data, im: _jpeg(im, 60),
    "resize 50%": lambda data, im: _jpeg(_resize(im, 0.5), 92),
    "crop 10%": lambda data, im: _jpeg(_crop(im), 92),
    "crop + resize + q60": lambda data, im: _jpeg(_resize(_crop(im), 0.5), 60),
    "resize 50% + q60 as PNG": lambda data, im: _png(Image.open(io.BytesIO(_jpeg(_resize(im, 0.5), 60)))),
}


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def published(request_env, cli, tmp_path):
    from tests.plugins.request import published_export

    return published_export(cli, tmp_path)


def _identify(cli, path):
    res = cli("identify", str(path), "--json")
    return res.exit_code, json.loads(res.stdout) if res.stdout.strip() else res.output


def _check_soft_binding(asset_id: str, data: bytes) -> None:
    """The manifest declares the algorithm and key the catalogue holds for the asset, and no
    second asset can claim that key (a copy would then name two assets)."""
    import c2pa
    from castkeep.flows.runtime import open_runtime
    from castkeep.provenance.watermark import ALG, KEY_BITS

    with c2pa.Reader("image/jpeg", io.BytesIO(data)) as reader:
        store = json.loads(reader.json())
    manifest = store["manifests"][store["active_manifest"]]
    (binding,) = [a["data"] for a in manifest["assertions"] if a["label"] == "c2pa.soft-binding"]
    with open_runtime() as rt, rt.sessions() as s:
        (row,) = s.scalars(select(schema.SoftBinding)
                           .where(schema.SoftBinding.asset_id == uuid.UUID(asset_id))).all()
        assert row.alg == ALG and 0 <= row.value < 2**KEY_BITS
        assert binding["alg"] == ALG
        assert [b["value"] for b in binding["blocks"]] == [f"{row.value:0{KEY_BITS // 4}x}"]
        other = s.scalar(select(schema.Asset.id).where(schema.Asset.id != row.asset_id))
        s.add(schema.SoftBinding(asset_id=other or row.asset_id, alg=ALG, value=row.value))
        with pytest.raises(IntegrityError):
            s.flush()


def test_signed_file_found_by_manifest_then_every_copy_by_watermark_then_quarantined(
        published, cli, tmp_path, request_env, dev_ca):
    from castkeep.provenance.verify import verify_bytes

    asset_id, target = published
    data = target.read_bytes()
    # The signed file carries the soft-binding assertion and still verifies Trusted.
    report = verify_bytes(data, trust_anchors=[dev_ca.root_cert])
    assert report.state == "Trusted", report.failures
    _check_soft_binding(asset_id, data)

    code, out = _identify(cli, target)
    assert code == 0, out
    assert out["asset_id"] == asset_id and out["method"] == "manifest"
    assert out["confidence"] == 1.0 and out["status"] == "published"
    assert out["consent_status"] == "active"
    talent = request_env.talent_ids["demo-talent-a"]
    assert [t["id"] for t in out["talents"]] == [talent]
    assert out["talents"][0]["display_name"]  # the operator sees who it depicts

    image = Image.open(io.BytesIO(data))
    image.load()
    for name, make in COPIES.items():
        copy = tmp_path / f"copy-{name.replace(' ', '_').replace('%', 'pc')}"
        copy.write_bytes(make(data, image))
        code, out = _identify(cli, copy)
        assert code == 0, (name, out)
        assert out["asset_id"] == asset_id, name
        assert out["method"] == "watermark", name
        assert 0 < out["confidence"] <= 1, name
        assert out["status"] == "published"

    # Revocation quarantines the asset: a copy found in the wild now says so.
    revoked = cli("consent", "revoke", request_env.consent_ids["demo-talent-a"],
                  "--reason", "talent withdrew", "--json")
    assert revoked.exit_code == 0, revoked.output
    wild = tmp_path / "wild.jpg"
    wild.write_bytes(COPIES["crop + resize + q60"](data, image))
    code, out = _identify(cli, wild)
    assert code == 0, out
    assert out["asset_id"] == asset_id and out["method"] == "watermark"
    assert out["status"] == "quarantined" and out["consent_status"] == "revoked"
    human = cli("identify", str(wild))
    assert human.exit_code == 0
    assert f"asset {asset_id} (by watermark" in human.stdout
    assert "quarantined - WITHDRAWN, do not use" in human.stdout


def test_photos_castkeep_never_made_are_not_matched(published, cli, tmp_path, fixtures_dir):
    # obama*.jpg are the portraits the asset was edited from; biden.jpg is another person.
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        source = Image.open(fixtures_dir / name)
        for label, data in (("as is", (fixtures_dir / name).read_bytes()),
                            ("q60 half", _jpeg(_resize(source, 0.5), 60))):
            path = tmp_path / f"{label.replace(' ', '_')}-{name}"
            path.write_bytes(data)
            code, out = _identify(cli, path)
            assert code == 1, (name, label, out)
            assert out["asset_id"] is None and out["method"] is None
            assert out["detail"]["watermark_sync"] < 7.0


def test_bad_input_is_one_clear_line(cli, tmp_path, runtime_env):
    bogus = tmp_path / "not-an-image.jpg"
    bogus.write_bytes(b"hello")
    from castkeep.errors import UnsupportedImageError

    # main() turns these into one `error:` line with exit code 2 (UnsupportedImageError's).
    res = cli("identify", str(bogus))
    assert isinstance(res.exception, UnsupportedImageError)
    assert "not a supported image" in str(res.exception)
    res = cli("identify", str(tmp_path))
    assert isinstance(res.exception, UnsupportedImageError)
    assert "is not a file" in str(res.exception)
