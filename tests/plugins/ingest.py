"""Ingest fixtures: consent manifests on disk, copies of the sample references, augmented
portraits, and `ingested_catalogue` (the shipped samples ingested into a clean catalogue)."""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "castkeep" / "samples" / "references"
SAMPLE_TALENT = {"demo-talent-a": ("obama.jpg", "obama2.jpg"), "demo-talent-b": ("biden.jpg",)}
SAMPLE_CONSENT_REFS = {"demo-talent-a": "demo-consent-a-2025", "demo-talent-b": "demo-consent-b-2025"}


def manifest_doc(portraits: list[str], *, ref: str = "talent-x", release: str = "release.txt",
                 **overrides: Any) -> dict[str, Any]:
    """A valid consent manifest (as a mapping) for `portraits`; override any field."""
    doc: dict[str, Any] = {
        "talent": {"external_ref": ref, "display_name": f"Person {ref}"},
        "portraits": list(portraits),
        "release_document": release,
        "valid_from": "2024-01-01",
        "valid_until": "2035-12-31",
        "scope": {"channels": ["web", "social"], "territories": ["FR", "DE", "US"],
                  "purposes": ["advertising"], "edits": ["lighting", "camera"]},
        "synthetic_likeness": True,
        "ai_training": False,
        "signed_by": f"Person {ref}",
    }
    doc.update(overrides)
    return doc


def write_manifest(folder: Path, name: str, doc: dict[str, Any], *,
                   release_text: str | None = "Release (test document)\n") -> Path:
    """Write `doc` as YAML or JSON (by `name`'s suffix) and, unless None, its release document."""
    import json

    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if name.endswith(".json"):
        path.write_text(json.dumps(doc), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    docs = [doc] if "consents" not in doc else doc["consents"]
    if release_text is not None:
        for d in docs:
            rel = d.get("release_document")
            if rel and "/.." not in f"/{rel}" and not rel.startswith("/"):
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    target.write_text(release_text + f"({d['talent'].get('external_ref')})\n")
    return path


def augment_jpeg(rgb, i: int, *, quality: int = 90) -> bytes:
    """A distinct JPEG of the same face: a small crop, optional mirror, brightness change."""
    import numpy as np
    from PIL import Image

    h, w = rgb.shape[:2]
    dx, dy = (i * 7) % max(1, w // 12), (i * 5) % max(1, h // 12)
    out = rgb[dy:h - ((i * 3) % max(1, h // 14)), dx:w - ((i * 11) % max(1, w // 14))]
    if i % 2:
        out = out[:, ::-1]
    gain = 0.85 + (i % 7) * 0.05
    out = np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(out)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture
def sample_references(tmp_path: Path) -> Path:
    """A private copy of castkeep/samples/references (tests may add or break files in it)."""
    target = tmp_path / "references"
    shutil.copytree(SAMPLES, target)
    return target


@pytest.fixture(scope="session")
def sample_rgb() -> dict[str, Any]:
    from castkeep.models.imaging import load_image

    return {name: load_image(SAMPLES / name).rgb for name in ("obama.jpg", "obama2.jpg", "biden.jpg")}


@dataclass
class IngestedCatalogue:
    """The shipped samples ingested into a clean catalogue (CASTKEEP_HOME = `home`)."""

    home: Path
    result: Any  # castkeep.tasks.ingest.IngestResult
    talent_ids: dict[str, str] = field(default_factory=dict)  # external_ref -> talent id
    consent_ids: dict[str, str] = field(default_factory=dict)  # external_ref -> consent id
    reference_ids: dict[str, str] = field(default_factory=dict)  # file name -> reference id


@pytest.fixture
def ingested_catalogue(runtime_env: Path, prefect_harness) -> IngestedCatalogue:
    """Ingest castkeep/samples/references into the test's clean catalogue, through the real flow.
    Demo talent A (external ref "demo-talent-a", obama.jpg + obama2.jpg) and B ("demo-talent-b",
    biden.jpg), each with one active consent: web/social advertising in US, GB, FR, DE, edits
    lighting, camera, group_composite, synthetic likeness, valid 2025-01-01..2030-12-31."""
    from sqlalchemy import select

    from castkeep.db import schema
    from castkeep.flows.ingest_references import ingest_references
    from castkeep.flows.runtime import open_runtime

    result = ingest_references(str(SAMPLES))
    assert result.summary() == {"accepted": 3, "duplicates": 0, "rejected": []}
    cat = IngestedCatalogue(home=runtime_env, result=result)
    with open_runtime() as runtime:
        with runtime.sessions() as session:
            for t in session.scalars(select(schema.Talent)):
                cat.talent_ids[t.external_ref] = str(t.id)
            for c in session.scalars(select(schema.Consent)):
                ref = next(k for k, v in cat.talent_ids.items() if v == str(c.talent_id))
                cat.consent_ids[ref] = str(c.id)
            for r in session.scalars(select(schema.ReferencePortrait)):
                cat.reference_ids[r.source_name] = str(r.id)
    return cat
