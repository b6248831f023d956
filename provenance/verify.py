"""Read and validate Content Credentials: state, every failure code, and castkeep's assertions.

States follow c2pa-rs: ``Trusted`` (valid and the signer chains to a trust anchor), ``Valid``
(intact but the signer is not trusted here), ``Invalid`` (tampered, malformed, or no manifest).
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import c2pa

from castkeep.errors import VerificationError
from castkeep.provenance.assertions import (
    CONSENT_LABEL,
    METADATA_LABEL,
    SCORES_LABEL,
    TRAINING_MINING_LABEL,
)

NO_MANIFEST = "manifest.missing"  # no C2PA data in the file at all
UNREADABLE = "manifest.unreadable"  # C2PA data present but c2pa could not parse it
DATA_HASH_MISMATCH = "assertion.dataHash.mismatch"
UNTRUSTED = "signingCredential.untrusted"


@dataclass(frozen=True)
class Failure:
    code: str
    url: str | None = None
    explanation: str | None = None


@dataclass(frozen=True)
class VerificationReport:
    state: str  # "Trusted" | "Valid" | "Invalid"
    failures: list[str]
    signer: dict[str, Any] | None
    signed_at: str | None  # from an RFC 3161 timestamp, when the manifest has one
    actions: list[dict[str, Any]]
    ingredients: list[dict[str, Any]]
    consent: dict[str, Any] | None
    scores: dict[str, Any] | None
    has_manifest: bool = True
    sha256: str = ""
    media_type: str | None = None
    title: str | None = None
    claimed_at: str | None = None  # the actions' "when" (claimed by the signer, not timestamped)
    training_mining: dict[str, str] | None = None
    model_release: dict[str, Any] | None = None
    failure_details: list[Failure] = field(default_factory=list)
    manifest_label: str | None = None
    error: str | None = None

    @property
    def trusted(self) -> bool:
        return self.state == "Trusted"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sniff_media_type(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def load_trust_anchors(paths: list[Path]) -> str:
    """Concatenated PEM of the anchor files; VerificationError names a bad file."""
    pems = []
    for path in paths:
        path = Path(path)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise VerificationError(
                f"cannot read trust anchor {path}: {exc}; fix CASTKEEP_SIGNING__TRUST_ANCHORS "
                "or run `castkeep keys init`"
            ) from exc
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise VerificationError(f"trust anchor {path} holds no PEM certificate; fix "
                                    "CASTKEEP_SIGNING__TRUST_ANCHORS")
        pems.append(text.strip() + "\n")
    return "".join(pems)


_contexts: dict[str, c2pa.Context] = {}
_contexts_lock = threading.Lock()


def _reader_context(anchors_pem: str) -> c2pa.Context:
    key = hashlib.sha256(anchors_pem.encode()).hexdigest()
    with _contexts_lock:
        ctx = _contexts.get(key)
        if ctx is None or not ctx.is_valid:
            settings: dict[str, Any] = {
                # Never reach out to the network while verifying (OCSP, remote manifests).
                "verify": {"verify_trust": True, "ocsp_fetch": False,
                           "remote_manifest_fetch": False},
            }
            if anchors_pem:
                settings["trust"] = {"trust_anchors": anchors_pem}
            ctx = c2pa.Context.from_dict(settings)
            _contexts[key] = ctx
        return ctx


def _failures(results: dict | None, status: list | None) -> list[Failure]:
    seen: set[tuple[str, str | None]] = set()
    out: list[Failure] = []

    def add(entries):
        for entry in entries or []:
            key = (entry.get("code"), entry.get("url"))
            if key not in seen:
                seen.add(key)
                out.append(Failure(entry.get("code", "?"), entry.get("url"), entry.get("explanation")))

    if results:
        add(results.get("activeManifest", {}).get("failure"))
        for delta in results.get("ingredientDeltas", []) or []:
            add(delta.get("validationDeltas", {}).get("failure"))
    add(status)
    return out


def _assertion(manifest: dict, label: str) -> dict | None:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label") == label:
            return assertion.get("data")
    return None


def _report_without_manifest(digest: str, media_type: str | None, code: str,
                             error: str | None) -> VerificationReport:
    return VerificationReport(
        state="Invalid", failures=[code], signer=None, signed_at=None, actions=[],
        ingredients=[], consent=None, scores=None, has_manifest=False, sha256=digest,
        media_type=media_type, failure_details=[Failure(code, None, error)], error=error,
    )


_anchor_cache: dict[tuple, str] = {}


def _anchors_pem(paths: list[Path]) -> str:
    # Keyed by path + mtime + size: re-read only when an anchor file changes.
    try:
        key = tuple((str(p), st.st_mtime_ns, st.st_size) for p in paths for st in [Path(p).stat()])
    except OSError:
        return load_trust_anchors(paths)  # raises the error naming the file
    pem = _anchor_cache.get(key)
    if pem is None:
        pem = load_trust_anchors(paths)
        _anchor_cache.clear()
        _anchor_cache[key] = pem
    return pem


def verify_bytes(data: bytes, media_type: str | None = None, *,
                 trust_anchors: list[Path]) -> VerificationReport:
    """Validate the C2PA manifest embedded in ``data`` against ``trust_anchors`` (PEM files)."""
    digest = hashlib.sha256(data).hexdigest()
    media_type = media_type or sniff_media_type(data)
    ctx = _reader_context(_anchors_pem(list(trust_anchors)))
    try:
        reader = c2pa.Reader.try_create(media_type, io.BytesIO(data), None, ctx)
    except c2pa.C2paError as exc:
        return _report_without_manifest(digest, media_type, UNREADABLE, str(exc))
    if reader is None:
        return _report_without_manifest(digest, media_type, NO_MANIFEST, "no C2PA manifest")
    with reader:
        store = json.loads(reader.json())
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    failures = _failures(store.get("validation_results"), store.get("validation_status"))
    signature = manifest.get("signature_info")
    actions_data = _assertion(manifest, "c2pa.actions.v2") or _assertion(manifest, "c2pa.actions")
    actions = list((actions_data or {}).get("actions", []))
    training = _assertion(manifest, TRAINING_MINING_LABEL)
    state = store.get("validation_state") or ("Invalid" if failures else "Valid")
    return VerificationReport(
        state=state,
        failures=[f.code for f in failures],
        signer=dict(signature) if signature else None,
        signed_at=(signature or {}).get("time"),
        actions=actions,
        ingredients=[
            {k: ing.get(k) for k in ("title", "format", "relationship", "label", "instance_id")}
            for ing in manifest.get("ingredients", [])
        ],
        consent=_assertion(manifest, CONSENT_LABEL),
        scores=_assertion(manifest, SCORES_LABEL),
        sha256=digest,
        media_type=media_type,
        title=manifest.get("title"),
        claimed_at=next((a.get("when") for a in actions if a.get("when")), None),
        training_mining=(
            {k: v.get("use") for k, v in training.get("entries", {}).items()} if training else None
        ),
        model_release=_assertion(manifest, METADATA_LABEL),
        failure_details=failures,
        manifest_label=store.get("active_manifest"),
    )


def verify_file(path: Path, *, trust_anchors: list[Path]) -> VerificationReport:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VerificationError(f"cannot read {path}: {exc.strerror}") from exc
    return verify_bytes(data, sniff_media_type(data), trust_anchors=trust_anchors)
