"""Assets: details with history, the signed file, a small thumbnail."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from castkeep.flows.web.auth import require
from castkeep.flows.web.problems import Problem
from castkeep.tasks.accounts import Identity
from castkeep.tasks.api_views import parse_id
from castkeep.vocab import AssetStatus, Role

router = APIRouter(tags=["assets"])
READERS = (Role.REQUESTER, Role.REVIEWER, Role.COMPLIANCE)
THUMBNAIL_PX = 256
_THUMBNAILS_KEPT = 512


def _state(request: Request):
    return request.app.state.castkeep


@router.get("/assets/{asset_id}")
def show(asset_id: str, request: Request, who: Identity = Depends(require())) -> dict[str, Any]:
    """Status, scores, lineage, Content Credentials summary and history (any role)."""
    from castkeep.flows.components import build_components
    from castkeep.tasks.api_views import asset_document

    aid = parse_id(asset_id, "asset")
    state = _state(request)
    anchors = build_components(state.settings).trust_anchors
    with state.runtime.sessions() as session:
        return asset_document(session, state.runtime.store, str(aid), trust_anchors=anchors)


def _download(request: Request, asset_id: str) -> dict[str, Any]:
    from castkeep.tasks.api_views import asset_download

    aid = parse_id(asset_id, "asset")
    state = _state(request)
    with state.runtime.sessions() as session:
        found = asset_download(session, state.runtime.store, str(aid))
    if found["withdrawn"]:
        raise Problem(410, f"asset {aid} is {found['status']} and must not be used")
    if hashlib.sha256(found["data"]).hexdigest() != found["sha256"]:
        raise Problem(500, f"the stored file of asset {aid} does not match the catalogue; "
                      "run an audit")
    return found


@router.get("/assets/{asset_id}/file")
def file(asset_id: str, request: Request,
         who: Identity = Depends(require(*READERS))) -> Response:
    """The signed file (410 when quarantined or rejected). Requesters download published assets
    only; reviewers and compliance also candidates (to review them)."""
    found = _download(request, asset_id)
    if found["status"] != AssetStatus.PUBLISHED and not who.has(Role.REVIEWER, Role.COMPLIANCE):
        raise Problem(403, f"asset {found['id']} is {found['status']}: requesters download "
                      "published assets only (a reviewer approves it first)")
    return Response(found["data"], media_type=found["media_type"], headers={
        "Content-Disposition": f'attachment; filename="{found["filename"]}"',
        "X-Content-Type-Options": "nosniff",
    })


@router.get("/assets/{asset_id}/thumbnail")
def thumbnail(asset_id: str, request: Request,
              who: Identity = Depends(require(*READERS))) -> Response:
    """A small JPEG rendition (at most 256 px a side), cached by the file's sha256."""
    from castkeep.tasks.api_views import thumbnail_bytes

    found = _download(request, asset_id)
    cache = _state(request).thumbnails
    data = cache.get(found["sha256"])
    if data is None:
        data = thumbnail_bytes(found["data"], THUMBNAIL_PX)
        if len(cache) >= _THUMBNAILS_KEPT:
            cache.pop(next(iter(cache)))
        cache[found["sha256"]] = data
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})
