"""Rights metadata other tools read: XMP (IPTC Extension, PLUS, XMP Rights, Dublin Core,
Photoshop) and an sRGB ICC profile, embedded with exiv2 (pyexiv2) before the file is signed, so
the C2PA hard binding covers them.

DAMs (Bynder, ResourceSpace, AEM, Lightroom) and exiftool read XMP, not C2PA assertions. What
goes in is what the C2PA manifest already says publicly: pseudonymous consent ids, never a name.
exiv2 writes the packet (no hand-assembled XML); pyexiv2 ships manylinux wheels bundling it.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from castkeep.errors import SigningError
from castkeep.provenance.assertions import (
    IPTC_SOURCE,
    PLUS_VOCAB,
    PseudonymousId,
    short_source_type,
)

# The catalogue records that a model is a minor, not an age: PLUS's "age unknown" term, with the
# restriction spelled out in photoshop:Instructions.
MINOR_AGE_DISCLOSURE = PLUS_VOCAB + "AG-UNK"

# One line of printable text (no control characters): settings values and generated wording.
_LINE = r"^[^\x00-\x1f\x7f]*$"
Line = Annotated[str, StringConstraints(pattern=_LINE, min_length=1, max_length=2000)]


class RightsMetadata(BaseModel):
    """The XMP fields of one output, as plain values (built in tasks/sign.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    digital_source_type: str
    consent_ids: tuple[PseudonymousId, ...] = Field(min_length=1)
    minor: bool = False
    usage_terms: Line
    license_end: dt.date | None = None
    web_statement: str | None = None
    creator: Line | None = None
    credit: Line | None = None
    instructions: Line | None = None

    @field_validator("digital_source_type")
    @classmethod
    def _source(cls, value: str) -> str:
        return short_source_type(value)

    @field_validator("web_statement")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s\x00-\x1f\x7f<>\"]{1,2000}", value):
            raise ValueError("the rights URL must be an http(s) URL without spaces "
                             "(CASTKEEP_SIGNING__RIGHTS_URL)")
        return value


def xmp_fields(meta: RightsMetadata) -> dict[str, object]:
    """exiv2 keys -> values (LangAlt as {'lang="x-default"': text}, bags/seqs as lists)."""
    fields: dict[str, object] = {
        "Xmp.iptcExt.DigitalSourceType": IPTC_SOURCE + meta.digital_source_type,
        "Xmp.plus.ModelReleaseStatus": PLUS_VOCAB + "MR-LMR",
        "Xmp.plus.ModelReleaseID": list(meta.consent_ids),
        "Xmp.xmpRights.UsageTerms": {'lang="x-default"': meta.usage_terms},
    }
    if meta.minor:
        fields["Xmp.plus.MinorModelAgeDisclosure"] = MINOR_AGE_DISCLOSURE
    if meta.license_end is not None:
        fields["Xmp.plus.LicenseEndDate"] = meta.license_end.isoformat()
    if meta.web_statement:
        fields["Xmp.xmpRights.WebStatement"] = meta.web_statement
    if meta.creator:
        fields["Xmp.dc.creator"] = [meta.creator]
    if meta.credit:
        fields["Xmp.photoshop.Credit"] = meta.credit
    if meta.instructions:
        fields["Xmp.photoshop.Instructions"] = meta.instructions
    return fields


@functools.cache
def srgb_icc() -> bytes:
    """An sRGB ICC profile (lcms via Pillow), made once per process."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# JPEG segments kept before the image data: JFIF (APP0), ICC (APP2, replaced below), Adobe colour
# transform (APP14, needed to decode), and the non-APP markers (tables, frame, restart interval).
# Dropped: APP1 (EXIF, XMP), APP13 (Photoshop IRB: IPTC, slice names, thumbnails), COM and the rest.
_KEEP_APP = {0xE0, 0xE2, 0xEE}


def strip_jpeg_metadata(data: bytes) -> bytes:
    """A JPEG without its metadata segments (the entropy-coded data is copied as it is)."""
    if data[:2] != b"\xff\xd8":
        return data
    out, i = bytearray(b"\xff\xd8"), 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2 or i + 2 + length > len(data):
            raise SigningError("the JPEG's segment lengths are inconsistent; re-encode the image")
        is_app = 0xE0 <= marker <= 0xEF or marker == 0xFE
        if not is_app or marker in _KEEP_APP:
            out += data[i:i + 2 + length]
        i += 2 + length
    return bytes(out + data[i:])


# exiv2's XMP toolkit keeps process-wide namespace state; one writer at a time.
_exiv2_lock = threading.Lock()


def embed_rights(image_bytes: bytes, meta: RightsMetadata) -> bytes:
    """The image with the rights XMP and an sRGB ICC profile embedded (pixels untouched). Any
    EXIF, IPTC, XMP or comment already in the bytes is dropped first: a source's caption, credit
    or camera data may name the person, and the file should state only castkeep's terms."""
    import pyexiv2

    image_bytes = strip_jpeg_metadata(image_bytes)
    with _exiv2_lock:
        try:
            with pyexiv2.ImageData(image_bytes) as image:
                image.clear_exif()
                image.clear_iptc()
                image.clear_xmp()
                image.clear_comment()
                image.modify_xmp(xmp_fields(meta))
                image.modify_icc(srgb_icc())
                return image.get_bytes()
        except RuntimeError as exc:
            raise SigningError(f"could not embed rights metadata: {exc}; the image must be a "
                               "complete JPEG, PNG or WebP") from exc
