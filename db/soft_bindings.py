"""Soft bindings in the catalogue: the watermark key each signed asset carries, and what a copy
found by it shows an operator (the asset's status, its talents and their consents now)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from castkeep.db import schema
from sqlalchemy import select
from sqlalchemy.orm import Session


def add_soft_binding(session: Session, asset_id: uuid.UUID, *, alg: str, value: int) -> None:
    session.add(schema.SoftBinding(asset_id=asset_id, alg=alg, value=value))
    session.flush()


def soft_binding_in_use(session: Session, *, alg: str, value: int) -> bool:
    return session.scalar(select(schema.SoftBinding.id).where(
        schema.SoftBinding.alg == alg, schema.SoftBinding.value == value).limit(1)) is not None


def asset_by_soft_binding(session: Session, *, alg: str, value: int) -> schema.Asset | None:
    return session.scalars(
        select(schema.Asset).join(schema.SoftBinding, schema.SoftBinding.asset_id == schema.Asset.id)
        .where(schema.SoftBinding.alg == alg, schema.SoftBinding.value == value)).one_or_none()


def asset_by_sha256(session: Session, sha256: str) -> schema.Asset | None:
    return session.scalars(select(schema.Asset).where(schema.Asset.sha256 == sha256)).first()


@dataclass(frozen=True)
class AssetStanding:
    """An asset as it stands now: status, its talents (id, display name) and their consents."""

    asset_id: str
    status: str
    status_reason: str | None
    talents: list[dict] = field(default_factory=list)
    consents: list[dict] = field(default_factory=list)


def _consent_state(consent: schema.Consent, now: dt.datetime) -> str:
    if consent.status == "active" and consent.valid_until < now:
        return "expired"
    return consent.status


def asset_standing(session: Session, asset: schema.Asset, *, now: dt.datetime) -> AssetStanding:
    rows = session.execute(
        select(schema.Lineage, schema.Talent, schema.Consent)
        .outerjoin(schema.Talent, schema.Talent.id == schema.Lineage.talent_id)
        .outerjoin(schema.Consent, schema.Consent.id == schema.Lineage.consent_id)
        .where(schema.Lineage.asset_id == asset.id)
        .order_by(schema.Lineage.id)).all()
    talents: dict[str, dict] = {}
    consents: dict[str, dict] = {}
    for _link, talent, consent in rows:
        if talent is not None:
            talents.setdefault(str(talent.id), {"id": str(talent.id),
                                                "display_name": talent.display_name})
        if consent is not None:
            consents.setdefault(str(consent.id), {
                "id": str(consent.id), "talent_id": str(consent.talent_id),
                "status": _consent_state(consent, now),
                "valid_until": consent.valid_until.astimezone(dt.UTC).isoformat()})
    return AssetStanding(asset_id=str(asset.id), status=asset.status,
                         status_reason=asset.status_reason, talents=list(talents.values()),
                         consents=list(consents.values()))
