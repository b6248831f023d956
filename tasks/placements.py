"""The publication register: record where a published asset went live, and list its placements.

A placement is recorded only for a published asset that is not withdrawn, with the consent of
every depicted talent checked again for that channel and territory at that moment (and until the
placement's end, when given), under the same row locks a publish takes: a revocation either
commits first (and the placement is refused) or waits and then opens a takedown for it.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from castkeep.db import compliance, placements
from castkeep.db.assets_repo import get_asset
from castkeep.db.ids import parse_id
from castkeep.errors import ApprovalError, Refused, SpecError, WithdrawnError
from castkeep.provenance.consent import CHANNELS, ISO_3166_ALPHA2, WORLD

MAX_URL = 2000


def validate_url(url: str) -> str:
    """An absolute http(s) URL with a host, no credentials, no whitespace or control
    characters; SpecError otherwise."""
    value = (url or "").strip()
    fix = "give the page's absolute http(s) address, e.g. https://example.com/campaign"
    if not value or len(value) > MAX_URL or re.search(r"[\s\x00-\x1f\x7f]", value):
        raise SpecError(f"--url must be one http(s) URL of at most {MAX_URL} characters without "
                        f"spaces; {fix}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise SpecError(f"--url {value[:80]!r} is not a valid URL; {fix}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SpecError(f"--url {value[:80]!r} is not an http(s) URL with a host; {fix}")
    if parts.username is not None or parts.password is not None:
        raise SpecError("--url must not carry a user name or password; give the public address")
    return value


def validate_channel(channel: str) -> str:
    value = (channel or "").strip().lower()
    if value not in CHANNELS:
        raise SpecError(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    return value


def validate_territory(territory: str) -> str:
    value = (territory or "").strip().upper()
    if value != WORLD and value not in ISO_3166_ALPHA2:
        raise SpecError(f"unknown territory {territory!r}: use an ISO 3166-1 alpha-2 code "
                        f"(e.g. FR, DE, US) or {WORLD}")
    return value


def _end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.timezone.utc)


def _consent_refusals(rows, asset_id, use, until: dt.date | None, now: dt.datetime) -> list[str]:
    """Every failing clause of the asset's lineage consents for `use`, now and at `until`."""
    from castkeep.provenance.consent import ConsentTerms
    from castkeep.provenance.policy import evaluate

    if not rows:
        return [f"asset {asset_id} has no consent in its lineage; it cannot be placed"]
    refusals = []
    for row in rows:
        terms = ConsentTerms.from_row(row)
        for at in (now, _end_of(until)) if until else (now,):
            refusals += [r for r in evaluate(terms, use, at).reasons if r not in refusals]
    return refusals


def publish(runtime, *, asset_id: str, channel: str, url: str, territory: str | None = None,
            until: dt.date | None = None, actor: str) -> dict[str, Any]:
    """Record a placement of a published asset (one transaction, with an audit event). The same
    asset, channel and URL again returns the placement already recorded."""
    from castkeep.provenance.policy import Use

    aid = parse_id(asset_id, "asset")
    channel = validate_channel(channel)
    url = validate_url(url)
    now = dt.datetime.now(dt.timezone.utc)
    if until is not None and until < now.date():
        raise SpecError(f"--until {until.isoformat()} is in the past; give the last day the "
                        "asset stays live")
    with runtime.sessions.begin() as session:
        # Consents first (FOR SHARE), then the asset: the order a revocation takes them in
        # (consent FOR UPDATE, then its assets), so the two never deadlock.
        lineage = compliance.lineage_consent_ids(session, [aid]).get(aid, set())
        consents = compliance.lock_consents(session, sorted(lineage))
        asset = get_asset(session, aid, lock=True)
        if asset.status in ("quarantined", "rejected"):
            raise WithdrawnError(f"asset {aid} is {asset.status} and must not be used; it cannot "
                                 "be placed")
        if asset.status != "published":
            raise ApprovalError(f"asset {aid} is {asset.status}; only published assets are placed "
                                "(approve and publish it first: `castkeep approve`)")
        recorded = dict(asset.use or {})
        where = validate_territory(territory or str(recorded.get("territory", "")))
        for p in placements.placements_of(session, [aid]):
            if p.channel == channel and p.url == url:
                return {**placements.placement_view(p).as_dict(), "recorded": False}
        use = Use(channel=channel, territory=where, purpose=str(recorded.get("purpose", "")),
                  edits=tuple(recorded.get("edits") or ()),
                  synthetic_likeness=bool(recorded.get("synthetic_likeness", False)))
        refusals = _consent_refusals(consents, aid, use, until, now)
        if refusals:
            raise Refused(refusals, "consent")
        view = placements.add_placement(session, aid, channel=channel, url=url, territory=where,
                                        until=until, actor=actor)
    return {**view.as_dict(), "recorded": True}


def asset_placements(runtime, asset_id: str) -> list[dict[str, Any]]:
    """Every placement of an asset, oldest first (NotFoundError for an unknown asset)."""
    aid = parse_id(asset_id, "asset")
    with runtime.sessions() as session:
        get_asset(session, aid)
        return [placements.placement_view(p).as_dict()
                for p in placements.placements_of(session, [aid])]


def placements_by_asset(session, asset_ids: list[uuid.UUID]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in placements.placements_of(session, asset_ids):
        out.setdefault(str(p.asset_id), []).append(placements.placement_view(p).as_dict())
    return out
