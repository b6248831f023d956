"""A small real catalogue for compliance tests: two talents (obama, biden) with one consent and
one reference portrait each, and signed assets in the object store with lineage and faces.

Assets (all signed by a development CA under <CASTKEEP_HOME>/keys, so the audit trusts them):
- a_obama:   obama2.jpg, lineage obama/consent A, published
- b_biden:   biden.jpg,  lineage biden/consent B, published
- untracked: obama3.jpg, lineage biden/consent B only, approved (shows obama without his consent)
Faces are real dlib detections of the fixture photos.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

USE = {"channel": "web", "territory": "FR", "purpose": "advertising", "edits": ["lighting"], "publish_date": "2026-12-01"}
SCOPE = {"channels": ["web"], "territories": ["FR", "DE"], "purposes": ["advertising"], "edits": ["lighting", "camera"]}


@dataclass
class Catalogue:
    runtime: Any
    home: Path
    talents: dict[str, uuid.UUID] = field(default_factory=dict)
    consents: dict[str, uuid.UUID] = field(default_factory=dict)
    references: dict[str, uuid.UUID] = field(default_factory=dict)
    assets: dict[str, uuid.UUID] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    signer: Any = None

    def asset_name(self, asset_id: str | uuid.UUID) -> str:
        return {str(v): k for k, v in self.assets.items()}[str(asset_id)]

    def names(self, ids) -> set[str]:
        return {self.asset_name(i) for i in ids}

    def status(self, name: str) -> str:
        from castkeep.db import schema

        with self.runtime.sessions() as s:
            return s.get(schema.Asset, self.assets[name]).status


def overwrite_object(store, key: str, data: bytes) -> None:
    """Replace an object's bytes under its key behind the store's back (simulated tampering):
    the file itself on the filesystem store, a new object version on S3."""
    if store.kind == "filesystem":
        (store.root / "objects" / key).write_bytes(data)
        return
    import base64
    import io

    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    store._client.put_object(
        store._bucket_for(key), key, io.BytesIO(data), len(data),
        metadata={"x-amz-checksum-sha256": checksum},
    )


@contextlib.contextmanager
def as_admin(engine):
    """A transaction in which UPDATE/DELETE get past the append-only triggers, as a database
    administrator's would: a superuser's replica session, else the table owner disabling them."""
    import sqlalchemy as sa

    with engine.begin() as conn:
        superuser = conn.execute(sa.text("SHOW is_superuser")).scalar_one() == "on"
        if superuser:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        else:
            for table in ("consent_event", "audit_event"):
                conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        yield conn
        if not superuser:
            for table in ("consent_event", "audit_event"):
                conn.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))


def delete_newest_audit_rows(engine, count: int) -> list[int]:
    """DELETE the newest `count` audit_event rows; returns their seqs."""
    import sqlalchemy as sa

    with as_admin(engine) as conn:
        newest = sa.text("SELECT seq FROM audit_event ORDER BY seq DESC LIMIT :n")
        seqs = list(conn.execute(newest, {"n": count}).scalars())
        conn.execute(sa.text("DELETE FROM audit_event WHERE seq = ANY(:s)"), {"s": seqs})
    return sorted(seqs)


def rewrite_audit_chain(engine, seq: int, **changes) -> None:
    """Change row `seq` and recompute every hash from there on with castkeep's own function, so
    the chain itself is consistent again (what anyone with the database password could do)."""
    import types

    import sqlalchemy as sa

    from castkeep.db.audit_log import GENESIS_HASH, event_hash
    from castkeep.db.schema import AuditEvent

    table = AuditEvent.__table__
    with as_admin(engine) as conn:
        prev = GENESIS_HASH
        for row in conn.execute(sa.select(table).order_by(table.c.seq)).all():
            values = {**row._asdict(), **(changes if row.seq == seq else {}), "prev_hash": prev}
            values["hash"] = event_hash(types.SimpleNamespace(**values))
            update = {"prev_hash": prev, "hash": values["hash"], **(changes if row.seq == seq else {})}
            conn.execute(sa.update(table).where(table.c.seq == row.seq).values(**update))
            prev = values["hash"]


def flip_byte(store, key: str) -> None:
    data = bytearray(store.get_bytes(key))
    data[len(data) // 2] ^= 0xFF
    overwrite_object(store, key, bytes(data))


def _face_row(face, *, asset_id=None, reference_portrait_id=None, face_index=0):
    from castkeep.db import schema

    return schema.Face(
        asset_id=asset_id,
        reference_portrait_id=reference_portrait_id,
        face_index=face_index,
        encoder=face.encoder,
        encoder_version=face.encoder_version,
        dim=int(face.embedding.shape[0]),
        embedding=[float(v) for v in face.embedding],
        box=[float(v) for v in face.box],
        landmarks=[[float(x), float(y)] for x, y in face.landmarks],
        quality=face.quality.as_dict(),
    )


def add_asset(
    cat: Catalogue,
    name: str,
    *,
    image: str,
    talent: str | None,
    status: str = "published",
    faces=(),
    parent: str | None = None,
    use: dict[str, Any] | None = None,
    manifest_factory=None,
    portrait_rgb=None,
) -> uuid.UUID:
    """Sign `image`, store it, and catalogue it with lineage (to `talent`'s reference under its
    consent, or to a `parent` asset) and the given detected faces."""
    from castkeep.db import schema
    from castkeep.db.audit_log import append_event
    from castkeep.models.imaging import encode_image
    from castkeep.provenance.manifest import sign_image

    jpeg = encode_image(portrait_rgb[image], "JPEG", quality=90)
    signed = sign_image(jpeg, "image/jpeg", manifest_factory(title=f"{name}.jpg"), cat.signer)
    stored = cat.runtime.store.put_bytes(signed, prefix="assets", ext="jpg", media_type="image/jpeg")
    rgb = portrait_rgb[image]
    with cat.runtime.sessions.begin() as s:
        row = schema.Asset(
            sha256=stored.sha256,
            object_key=stored.key,
            media_type="image/jpeg",
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            status=status,
            use=dict(use or USE),
        )
        s.add(row)
        s.flush()
        if talent is not None:
            s.add(
                schema.Lineage(
                    asset_id=row.id,
                    reference_portrait_id=cat.references[talent],
                    talent_id=cat.talents[talent],
                    consent_id=cat.consents[talent],
                    relationship="parentOf",
                )
            )
        if parent is not None:
            s.add(schema.Lineage(asset_id=row.id, parent_asset_id=cat.assets[parent], relationship="parentOf"))
        for i, face in enumerate(faces):
            s.add(_face_row(face, asset_id=row.id, face_index=i))
        s.flush()
        append_event(s, actor="test", kind="asset.created", entity_type="asset", entity_id=str(row.id),
                     payload={"sha256": stored.sha256, "status": status})
        asset_id = row.id
    cat.assets[name] = asset_id
    cat.keys[name] = stored.key
    return asset_id


@pytest.fixture
def compliance_catalogue(runtime_env, portrait_faces, portrait_rgb, manifest_input_factory, fixtures_dir):
    """Factory: build(untracked=True) -> Catalogue (see module docstring)."""
    from castkeep.db import schema
    from castkeep.db.audit_log import append_event
    from castkeep.db.consent_history import recorded_terms
    from castkeep.flows.runtime import open_runtime
    from castkeep.flows.settings import get_settings
    from castkeep.provenance.keys import init_dev_ca
    from castkeep.provenance.signing import SignerConfig, make_signer

    get_settings.cache_clear()
    runtime = open_runtime()
    ca = init_dev_ca(runtime_env / "keys")
    signer = make_signer(SignerConfig(chain_path=ca.chain, key_path=ca.private_key))
    now = dt.datetime.now(dt.timezone.utc)

    def build(*, untracked: bool = True) -> Catalogue:
        cat = Catalogue(runtime=runtime, home=runtime_env, signer=signer)
        with runtime.sessions.begin() as s:
            for person in ("obama", "biden"):
                talent = schema.Talent(external_ref=f"T-{person}", display_name=person.title())
                s.add(talent)
                s.flush()
                consent = schema.Consent(
                    talent_id=talent.id,
                    external_ref=f"C-{person}",
                    release_doc_sha256=hashlib.sha256(person.encode()).hexdigest(),
                    release_doc_key=f"restricted/release-docs/{person}.pdf",
                    valid_from=now - dt.timedelta(days=30),
                    valid_until=now + dt.timedelta(days=365),
                    scope=SCOPE,
                    status="active",
                )
                s.add(consent)
                s.flush()
                data = (fixtures_dir / f"{person}.jpg").read_bytes()
                stored = runtime.store.put_bytes(data, prefix="references", ext="jpg", media_type="image/jpeg")
                rgb = portrait_rgb[person]
                ref = schema.ReferencePortrait(
                    talent_id=talent.id, consent_id=consent.id, sha256=stored.sha256, object_key=stored.key,
                    media_type="image/jpeg", width=int(rgb.shape[1]), height=int(rgb.shape[0]),
                    source_name=f"{person}.jpg",
                )
                s.add(ref)
                s.flush()
                s.add(_face_row(portrait_faces[person][0], reference_portrait_id=ref.id))
                append_event(s, actor="test", kind="consent.granted", entity_type="consent",
                             entity_id=str(consent.id), payload=recorded_terms(consent))
                cat.talents[person], cat.consents[person], cat.references[person] = talent.id, consent.id, ref.id
        common = dict(manifest_factory=manifest_input_factory, portrait_rgb=portrait_rgb)
        add_asset(cat, "a_obama", image="obama2", talent="obama", faces=portrait_faces["obama2"][:1], **common)
        add_asset(cat, "b_biden", image="biden", talent="biden", faces=portrait_faces["biden"][:1], **common)
        if untracked:
            add_asset(cat, "untracked", image="obama3", talent="biden", status="approved",
                      faces=portrait_faces["obama3"][:1], **common)
        return cat

    yield build
    signer.close()
    runtime.engine.dispose()
