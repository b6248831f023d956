"""Gates a request must pass before any model runs: consent for every talent, and model licences.

Plain functions (testable without Prefect) with thin Prefect task wrappers. A refusal lists every
failing clause for every talent, so the requester sees the whole picture at once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from castkeep.db import catalogue, compliance
from castkeep.errors import NotFoundError
from castkeep.provenance.consent import ConsentTerms
from castkeep.provenance.policy import Use, evaluate

# Purposes that are not commercial exploitation of a model; every other purpose is treated as
# commercial (advertising, packaging, ecommerce, ...), the safe default for a licence check.
NON_COMMERCIAL_PURPOSES = frozenset({"editorial", "internal", "research"})


@dataclass(frozen=True)
class TalentClearance:
    """One talent cleared for the use: the talent's catalogue id and the consents that allow it."""

    ref: str  # as the request named the talent
    talent_id: str
    consents: tuple[ConsentTerms, ...]  # every consent of this talent that allows the use

    @property
    def consent_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.consents)


@dataclass(frozen=True)
class ConsentGate:
    allowed: bool
    refusals: tuple[str, ...]
    clearances: tuple[TalentClearance, ...]  # in request order, only when allowed


def publish_instant(publish_date: dt.date) -> dt.datetime:
    """Consent is checked for the whole publish day: it must hold at the day's last second."""
    return dt.datetime.combine(publish_date, dt.time(23, 59, 59), tzinfo=dt.timezone.utc)


def check_consent(
    session: Session, talents: Sequence[str], use: Use, publish_date: dt.date
) -> ConsentGate:
    """Every talent needs at least one consent that allows `use` at the publish date (and now:
    a request for a future date is still made today)."""
    at_publish = publish_instant(publish_date)
    now = dt.datetime.now(dt.timezone.utc)
    refusals: list[str] = []
    clearances: list[TalentClearance] = []
    for ref in talents:
        try:
            talent = catalogue.resolve_talent(session, ref)
        except NotFoundError:
            refusals.append(
                f"talent {ref}: not in the catalogue (ingest the talent's portraits and consent "
                "first; `castkeep talent list` shows known talents)"
            )
            continue
        terms = catalogue.consents_of_talent(session, talent.id)
        if not terms:
            refusals.append(f"talent {ref}: no consent recorded")
            continue
        allowing, reasons = [], []
        for t in terms:
            decision = evaluate(t, use, at_publish)
            if decision.allowed and now > t.valid_until:
                decision = evaluate(t, use, now)
            if decision.allowed:
                allowing.append(t)
            else:
                reasons.extend(decision.reasons)
        if allowing:
            clearances.append(TalentClearance(ref=ref, talent_id=str(talent.id), consents=tuple(allowing)))
        else:
            refusals.extend(f"talent {ref}: {reason}" for reason in dict.fromkeys(reasons))
    if refusals:
        return ConsentGate(allowed=False, refusals=tuple(refusals), clearances=())
    return ConsentGate(allowed=True, refusals=(), clearances=tuple(clearances))


@dataclass(frozen=True)
class PublishCheck:
    """The consent check made in the transaction that publishes (consent rows locked)."""

    allowed: bool
    refusals: tuple[str, ...]
    withdrawn_assets: tuple[str, ...]  # assets whose own lineage names a withdrawn consent


def check_consent_for_publish(
    session: Session,
    talents: Sequence[str],
    use: Use,
    publish_date: dt.date,
    asset_ids: Sequence[str],
) -> PublishCheck:
    """Call inside the publishing transaction, before any asset status changes. Locks (FOR SHARE)
    every consent of the request's talents and of the assets' lineage, so a revocation waits for
    this transaction or this check sees it; then the request's consent gate runs again and each
    asset's own lineage consents must still be in force."""
    talent_ids = []
    for ref in talents:
        talent = catalogue.find_talent(session, ref)
        if talent is not None:
            talent_ids.append(talent.id)
    compliance.lock_talent_consents(session, talent_ids)
    lineage = compliance.lineage_consent_ids(session, list(asset_ids))
    linked = compliance.lock_consents(session, sorted({c for ids in lineage.values() for c in ids}))
    gate = check_consent(session, talents, use, publish_date)
    now = dt.datetime.now(dt.timezone.utc)
    withdrawn = {c.id: c for c in compliance.withdrawn_consents(linked, now=now)}
    refusals = list(gate.refusals)
    bad_assets = []
    for asset_id, consent_ids in sorted(lineage.items(), key=lambda kv: str(kv[0])):
        hit = sorted(str(c) for c in consent_ids if c in withdrawn)
        if hit:
            bad_assets.append(str(asset_id))
            refusals.append(
                f"asset {asset_id}: derived under consent {', '.join(hit)}, which is "
                f"{', '.join(sorted({withdrawn[uuid.UUID(c)].status for c in hit}))} or past its end"
            )
    return PublishCheck(allowed=not refusals, refusals=tuple(dict.fromkeys(refusals)),
                        withdrawn_assets=tuple(bad_assets))


@dataclass(frozen=True)
class ModelLicence:
    kind: str  # "engine" | "encoder"
    name: str
    version: str
    licence: str
    commercial_use: bool


@dataclass(frozen=True)
class LicenceGate:
    allowed: bool
    refusals: tuple[str, ...]
    licence_ids: dict[str, str]  # model name -> the licence id settings record for it


def is_commercial(purpose: str) -> bool:
    return purpose.strip().lower() not in NON_COMMERCIAL_PURPOSES


def check_licences(
    models: Sequence[ModelLicence],
    purpose: str,
    licence_ids: Mapping[str, str | None],
    settings_names: Mapping[str, str] | None = None,
) -> LicenceGate:
    """A model whose licence forbids commercial use is refused for a commercial purpose, unless a
    licence id for it is configured. `settings_names` maps a model name to the CASTKEEP_ setting
    that holds its licence id, for the message."""
    refusals: list[str] = []
    used: dict[str, str] = {}
    for m in models:
        held = licence_ids.get(m.name)
        if held:
            used[m.name] = held
        if m.commercial_use or not is_commercial(purpose):
            continue
        if held:
            continue
        setting = (settings_names or {}).get(m.name)
        how = f"set {setting} to the licence id you hold" if setting else (
            "configure a licence id for it"
        )
        refusals.append(
            f"{m.kind} {m.name} {m.version} is licensed {m.licence} (no commercial use) and purpose "
            f"{purpose} is commercial: {how}, choose a commercially licensed {m.kind}, or use a "
            f"non-commercial purpose ({', '.join(sorted(NON_COMMERCIAL_PURPOSES))})"
        )
    return LicenceGate(allowed=not refusals, refusals=tuple(refusals), licence_ids=used)
