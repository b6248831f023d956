"""The asset page (/assets/{id}, any signed-in role): the image (the API's thumbnail, a click
opens it full size), its status, the Content Credentials panel (the `verify` summary of the
stored file), lineage (reference portraits and consents by name), history (who did what, when,
with comments), and a download button only while the asset may be used."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from castkeep.flows.web.pages.common import PageProblem, page_role, render, state
from castkeep.tasks.accounts import Identity
from castkeep.tasks.api_views import parse_id
from castkeep.vocab import AssetStatus, Role

router = APIRouter(include_in_schema=False)
VIEWERS = (Role.REQUESTER, Role.REVIEWER, Role.COMPLIANCE)
IPTC_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# History event kinds in words (others are shown as recorded).
EVENT_LABELS = {
    "asset.created": "Created", "asset.approved": "Approved", "asset.published": "Published",
    "asset.rejected": "Rejected", "asset.quarantined": "Quarantined",
    "asset.status_changed": "Status changed", "asset.legal_hold": "Put on legal hold",
}


def _agent(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(str(value.get(k)) for k in ("name", "version") if value.get(k))
    return str(value or "")


def _words(value: str) -> str:
    """`compositeWithTrainedAlgorithmicMedia` -> `composite with trained algorithmic media`."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in value).strip()


def credentials(c2pa: dict[str, Any]) -> dict[str, Any]:
    """The verify summary in words: state, signer, actions (with their AI source type),
    ingredients, training-and-mining entries, consent and score assertions."""
    signer = c2pa.get("signer") or {}
    actions = [{"action": str(a.get("action", "")).removeprefix("c2pa."),
                "source_type": _words(
                    str(a.get("digitalSourceType") or "").removeprefix(IPTC_PREFIX)),
                "agent": _agent(a.get("softwareAgent")), "when": a.get("when")}
               for a in c2pa.get("actions") or ()]
    return {
        "state": c2pa.get("state") or "Invalid",
        "failures": list(c2pa.get("failures") or ()),
        "has_manifest": bool(c2pa.get("has_manifest")),
        "signer": {"name": signer.get("common_name") or signer.get("issuer") or "",
                   "issuer": signer.get("issuer") or "", "alg": signer.get("alg") or ""},
        "signed_at": c2pa.get("signed_at"),
        "actions": actions,
        "source_types": sorted({a["source_type"] for a in actions if a["source_type"]}),
        "ingredients": list(c2pa.get("ingredients") or ()),
        # cawg.ai_generative_training: notAllowed -> "AI generative training": "not allowed"
        "training_mining": {k.split(".", 1)[-1].replace("_", " ").replace("ai ", "AI ", 1):
                            _words(str(v)) for k, v in (c2pa.get("training_mining") or {}).items()},
        "consent": c2pa.get("consent"),
        "scores": c2pa.get("scores"),
    }


def _document(request: Request, asset_id: str) -> dict[str, Any]:
    from castkeep.flows.components import build_components
    from castkeep.tasks import page_views_compliance as views
    from castkeep.tasks.api_views import asset_document

    aid = str(parse_id(asset_id, "asset"))
    app = state(request)
    anchors = build_components(app.settings).trust_anchors
    with app.runtime.sessions() as session:
        doc = asset_document(session, app.runtime.store, aid, trust_anchors=anchors)
        doc["named_lineage"] = views.asset_lineage(session, doc["lineage"])
        doc["talent_names"] = views.talent_names(session, set(doc["lineage"]["talents"]))
        doc["campaign"] = views.campaign_of(session, doc["request_id"])
    return doc


@router.get("/assets/{asset_id}")
def show_asset(asset_id: str, request: Request,
               who: Identity = Depends(page_role(*VIEWERS))) -> HTMLResponse:
    from castkeep.flows.web.pages.gallery import score_rows

    doc = _document(request, asset_id)
    withdrawn = doc["status"] in (AssetStatus.QUARANTINED, AssetStatus.REJECTED)
    # What the download button would get: requesters published assets only (as the API's file
    # route answers), reviewers and compliance also candidates.
    downloadable = not withdrawn and (doc["status"] == AssetStatus.PUBLISHED
                                      or who.has(Role.REVIEWER, Role.COMPLIANCE))
    history = [{**h, "label": EVENT_LABELS.get(h["event"], h["event"])}
               for h in reversed(doc["history"])]
    return render(request, "asset.html", title=f"Asset {doc['id'][:8]}", doc=doc,
                  withdrawn=withdrawn, downloadable=downloadable, history=history,
                  cc=credentials(doc["c2pa"]), rows=score_rows(doc["scores"], doc["talent_names"]),
                  compliance=who.has(Role.COMPLIANCE))


@router.get("/assets/{asset_id}/image")
def full_image(asset_id: str, request: Request,
               who: Identity = Depends(page_role(*VIEWERS))) -> Response:
    """The asset at full size, shown in the browser (refused once it is withdrawn)."""
    from castkeep.tasks.api_views import asset_download

    aid = str(parse_id(asset_id, "asset"))
    with state(request).runtime.sessions() as session:
        found = asset_download(session, state(request).runtime.store, aid)
    if found["withdrawn"]:
        raise PageProblem(410, f"Asset {aid} is {found['status']} and must not be used.")
    return Response(found["data"], media_type=found["media_type"], headers={
        "Content-Disposition": f'inline; filename="{found["filename"]}"',
        "Cache-Control": "private, max-age=600", "X-Content-Type-Options": "nosniff"})
