"""Identify the catalogued asset behind a file found in the wild.

In order: the manifest (a still-signed file: its bytes are a catalogued asset's), then the
invisible watermark (a stripped, recompressed, resized or cropped copy: the key it carries is a
catalogued asset's soft binding). An image castkeep never produced carries neither, and is not
found. No perceptual fingerprint is consulted: an asset's fingerprint stays close to the portrait
it was edited from, so it could not tell the asset from its source (provenance/watermark.py).

The result names the talents (pseudonymous id and display name) for the operator who runs the
lookup; nothing here is written into any file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from castkeep.errors import UnsupportedImageError

MAX_FILE_BYTES = 64 * 1024 * 1024
METHODS = ("manifest", "watermark", "fingerprint")


@dataclass(frozen=True)
class Identification:
    asset_id: str | None
    method: str | None
    confidence: float
    status: str | None
    talents: list[dict] = field(default_factory=list)
    consent_status: str | None = None
    consents: list[dict] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return self.asset_id is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def overall_consent_status(consents: list[dict]) -> str | None:
    """The weakest consent behind the asset: revoked, then expired, else active."""
    states = {c["status"] for c in consents}
    for state in ("revoked", "expired", "active"):
        if state in states:
            return state
    return None


def read_candidate(path: Path) -> bytes:
    """The file's bytes, refused when it is not a regular, reasonably sized file."""
    try:
        if not path.is_file():
            raise UnsupportedImageError(f"{path} is not a file; give the image file to identify")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UnsupportedImageError(f"{path} is over {MAX_FILE_BYTES // 2**20} MiB; "
                                        "identify takes an image file, not an archive or video")
        return path.read_bytes()
    except OSError as exc:
        raise UnsupportedImageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _found(session: Session, asset, method: str, confidence: float,
           detail: dict[str, Any]) -> Identification:
    from castkeep.db.soft_bindings import asset_standing

    standing = asset_standing(session, asset, now=dt.datetime.now(dt.UTC))
    return Identification(
        asset_id=standing.asset_id, method=method, confidence=confidence, status=standing.status,
        talents=standing.talents, consent_status=overall_consent_status(standing.consents),
        consents=standing.consents,
        detail={**detail, **({"status_reason": standing.status_reason}
                             if standing.status_reason else {})},
    )


def identify_bytes(session: Session, data: bytes, *, trust_anchors: list[Path]) -> Identification:
    """The asset these bytes are, or a copy of (see the module's docstring for the order)."""
    import hashlib

    from castkeep.db.soft_bindings import asset_by_sha256, asset_by_soft_binding
    from castkeep.models.imaging import decode_image
    from castkeep.provenance import watermark
    from castkeep.provenance.verify import verify_bytes

    decoded = decode_image(data)  # refuses anything that is not a readable image first
    sha256 = hashlib.sha256(data).hexdigest()
    report = verify_bytes(data, decoded.media_type, trust_anchors=trust_anchors)
    if report.has_manifest:
        asset = asset_by_sha256(session, sha256)
        if asset is not None:
            return _found(session, asset, "manifest", 1.0, {"manifest_state": report.state})
    reading = watermark.read(
        decoded.rgb,
        is_known=lambda key: asset_by_soft_binding(session, alg=watermark.ALG, value=key) is not None)
    detail = {"manifest": report.has_manifest, "watermark_sync": round(reading.sync, 2),
              "watermark_scale": round(reading.scale, 3)}
    if reading.key is not None:
        asset = asset_by_soft_binding(session, alg=watermark.ALG, value=reading.key)
        if asset is not None:
            return _found(session, asset, "watermark", reading.confidence, detail)
        detail["watermark_key"] = "not catalogued"
    return Identification(asset_id=None, method=None, confidence=0.0, status=None,
                          detail=detail)
