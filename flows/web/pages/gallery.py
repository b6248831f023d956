"""The review gallery's view of a request document: each variant's scores in one fixed order
(identity distance per talent by display name, lighting error, camera error, quality) with
units, thresholds and pass/fail, the reason it failed, and what the viewer may do."""

from __future__ import annotations

from typing import Any

from castkeep.tasks.accounts import Identity
from castkeep.vocab import WITHDRAWN_ASSET_STATUSES, AssetStatus, RequestStatus, Role


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def score_rows(scores: dict[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    """[{"label", "value", "limit", "passed", "measured"}] in the gallery's fixed order."""
    rows = []
    for talent_id, s in sorted((scores.get("identity") or {}).items(),
                               key=lambda kv: names.get(kv[0], kv[0]).lower()):
        rows.append({"label": f"Identity distance · {names.get(talent_id, talent_id[:8])}",
                     "value": _number(s["value"], 3),
                     "limit": f"≤ {_number(s['threshold'], 3)}", "passed": s["passed"],
                     "measured": True})
    for kind, label in (("lighting", "Lighting error"), ("camera", "Camera error")):
        s = scores.get(kind)
        if s is None:
            continue
        measured = s["value"] is not None and s["value"] >= 0
        rows.append({"label": label,
                     "value": f"{s['value']:.1f}°" if measured else "not measured",
                     "limit": f"≤ {_number(s['threshold'], 0)}°", "passed": s["passed"],
                     "measured": measured})
    s = scores.get("quality")
    if s is not None:
        rows.append({"label": "Quality (sharpness)", "value": _number(s["value"], 1),
                     "limit": f"≥ {_number(s['threshold'], 1)}", "passed": s["passed"],
                     "measured": True})
    return rows


def context(doc: dict[str, Any], who: Identity) -> dict[str, Any]:
    names = doc.get("talent_names", {})
    variants = []
    for a in sorted(doc["assets"], key=lambda a: a["variant"]):
        withdrawn = a["status"] in WITHDRAWN_ASSET_STATUSES
        # Full size as the API serves files: requesters see published variants only.
        full = not withdrawn and (a["status"] == AssetStatus.PUBLISHED
                                  or who.has(Role.REVIEWER, Role.COMPLIANCE))
        variants.append({
            **a,
            "number": a["variant"] + 1,
            "rows": score_rows(a["scores"], names),
            "withdrawn": withdrawn,
            "full": full,
            "reason": "; ".join(a["reasons"]) if a["reasons"] else (
                "every score within its limit" if a["passed"] else "a score is outside its limit"),
            "filter": "rejected" if withdrawn or not a["passed"] else "passed",
        })
    reviewing = doc["status"] == RequestStatus.AWAITING_APPROVAL
    candidates = [v for v in variants if v["status"] == AssetStatus.CANDIDATE]
    published = [v for v in variants if v["status"] == AssetStatus.PUBLISHED]
    return {
        "variants": variants,
        "can_review": who.has(Role.REVIEWER) and reviewing and bool(candidates),
        "candidates": len(candidates),
        "published": len(published),
        "passed_count": sum(1 for v in variants if v["filter"] == "passed"),
        "rejected_count": sum(1 for v in variants if v["filter"] == "rejected"),
    }
