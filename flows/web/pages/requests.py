"""Request pages: the request form (/requests/new: talents pickable only when their consent
covers the use, lighting and camera with the CLI specs' ranges and words), a request's page
(/requests/{id}: live progress, then the review gallery), the gallery fragment the page swaps in
while it polls, full-size variants, a zip of selected published assets, and reference portrait
thumbnails."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from castkeep import errors
from castkeep.flows.web.pages import request_form
from castkeep.flows.web.pages.common import PageProblem, csrf_form, page_role, render, state
from castkeep.flows.web.problems import SafeJSONResponse
from castkeep.tasks.accounts import Identity
from castkeep.tasks.api_views import parse_id
from castkeep.vocab import FINAL_REQUEST_STATUSES, AssetStatus, Role

router = APIRouter(include_in_schema=False)
VIEWERS = (Role.REQUESTER, Role.REVIEWER, Role.COMPLIANCE)
MAX_ZIP_ASSETS = 100
THUMBNAIL_PX = 256
THUMBNAILS_KEPT = 512


# -- the form ----------------------------------------------------------------------------------

@router.get("/requests/new")
def new_request(request: Request, who: Identity = Depends(page_role(Role.REQUESTER))):
    values = request_form.defaults()
    values.update(request_form.from_query(request.query_params))
    return _form_page(request, values)


def _form_page(request: Request, values: dict[str, Any], *, error: str = "",
               status_code: int = 200) -> HTMLResponse:
    from castkeep.tasks import page_views

    use, publish = request_form.use_of(values, state(request).settings)
    with state(request).runtime.sessions() as session:
        choices = page_views.form_choices(session)
        talents = page_views.talent_availability(session, use, publish)
    return render(request, "request_form.html", status_code=status_code, title="New request",
                  values=values, choices=choices, talents=talents, error=error,
                  ranges=request_form.ranges(), shots=page_views.shot_sizes(),
                  hardness=page_views.hardness_words(), labels=request_form.LABELS,
                  max_variants=request_form.MAX_VARIANTS_FORM)


@router.get("/requests/new/talents")
def talents_for_use(request: Request, who: Identity = Depends(page_role(Role.REQUESTER))):
    """The form's live check: every talent, available or not with the failing clauses."""
    from castkeep.tasks import page_views

    values = request_form.defaults()
    values.update(request_form.from_query(request.query_params))
    use, publish = request_form.use_of(values, state(request).settings)
    with state(request).runtime.sessions() as session:
        found = page_views.talent_availability(session, use, publish)
    return SafeJSONResponse([{k: t[k] for k in ("id", "display_name", "available", "pending",
                                                "reasons")}
                             for t in found])


@router.post("/requests/new")
async def submit_form(request: Request, who: Identity = Depends(page_role(Role.REQUESTER))):
    form = await csrf_form(request)
    values = request_form.from_form(form)
    try:
        doc = request_form.document(values, requester=who.username)
        rid = await run_in_threadpool(_submit, request, values, doc, who)
    except errors.CastkeepError as exc:
        # The form again, as typed, with the one-line reason on top.
        return await run_in_threadpool(_form_page, request, values, error=str(exc),
                                       status_code=422)
    return RedirectResponse(f"/requests/{rid}", status_code=303)


def _submit(request: Request, values: dict[str, Any], doc: dict[str, Any], who: Identity) -> str:
    from castkeep.flows.web import routes_requests
    from castkeep.tasks import page_views

    use, publish = request_form.use_of(values, state(request).settings)
    with state(request).runtime.sessions() as session:
        known = {t["id"]: t for t in page_views.talent_availability(session, use, publish)}
    for tid in doc["talents"]:
        talent = known.get(tid)
        if talent is None:
            raise errors.RequestFormError("a chosen talent is not in the catalogue; reload the "
                                         "form and choose again")
        if not talent["available"]:
            raise errors.RequestFormError(f"{talent['display_name']} cannot be used for this: "
                                         + "; ".join(talent["reasons"]))
    # The API's own submit: the same checks, catalogue row and background fulfilment.
    answer = routes_requests.submit(request, doc, who)
    return json.loads(answer.body)["id"]


# -- a request and its gallery -----------------------------------------------------------------

def _visible_request(request: Request, request_id: str, who: Identity) -> dict[str, Any]:
    """The request's API document plus what the gallery shows, or a 404 page for a request the
    user may not see (a requester sees own and team requests)."""
    from castkeep.tasks import page_views
    from castkeep.tasks.api_views import request_document

    rid = parse_id(request_id, "request")
    with state(request).runtime.sessions() as session:
        doc = request_document(session, rid)  # its submitter and team decide who sees it
        if not who.has(Role.REVIEWER, Role.COMPLIANCE) and doc["submitted_by"] != who.username \
                and (doc["team"] is None or doc["team"] != who.team):
            raise PageProblem(404, f"There is no request {rid} that you can see.")
        doc.update(page_views.gallery_extras(session, rid, doc))
    return doc


def _gallery_context(doc: dict[str, Any], who: Identity) -> dict[str, Any]:
    from castkeep.flows.web.pages import gallery

    return {**gallery.context(doc, who), "final": doc["status"] in FINAL_REQUEST_STATUSES}


@router.get("/requests/{request_id}")
def show_request(request_id: str, request: Request,
                 who: Identity = Depends(page_role(*VIEWERS))) -> HTMLResponse:
    doc = _visible_request(request, request_id, who)
    return render(request, "request.html", title=doc["campaign"], doc=doc,
                  **_gallery_context(doc, who))


@router.get("/requests/{request_id}/gallery")
def gallery_fragment(request_id: str, request: Request,
                     who: Identity = Depends(page_role(*VIEWERS))) -> HTMLResponse:
    doc = _visible_request(request, request_id, who)
    return render(request, "_gallery.html", doc=doc, **_gallery_context(doc, who))


def _asset_file(request: Request, doc: dict[str, Any], asset_id: str,
                who: Identity) -> dict[str, Any]:
    """A variant's signed file, checked as the API's download checks it: part of this request,
    not withdrawn, its bytes the catalogued ones; requesters get published variants only."""
    import hashlib

    from castkeep.tasks.api_views import asset_download

    aid = str(parse_id(asset_id, "asset"))
    if aid not in {a["id"] for a in doc["assets"]}:
        raise PageProblem(404, f"Request {doc['id']} has no asset {aid}.")
    with state(request).runtime.sessions() as session:
        found = asset_download(session, state(request).runtime.store, aid)
    if found["withdrawn"]:
        raise PageProblem(410, f"Asset {aid} is {found['status']} and must not be used.")
    if hashlib.sha256(found["data"]).hexdigest() != found["sha256"]:
        raise PageProblem(500, f"The stored file of asset {aid} does not match the catalogue; "
                        "ask compliance to run an audit.")
    if found["status"] != AssetStatus.PUBLISHED and not who.has(Role.REVIEWER, Role.COMPLIANCE):
        raise PageProblem(403, f"Asset {aid} is {found['status']}: requesters see published "
                        "variants in full (a reviewer approves them first).")
    return found


@router.get("/requests/{request_id}/images/{asset_id}")
def full_image(request_id: str, asset_id: str, request: Request,
               who: Identity = Depends(page_role(*VIEWERS))) -> Response:
    """A variant at full size, shown in the browser (downloads go through the API's file)."""
    found = _asset_file(request, _visible_request(request, request_id, who), asset_id, who)
    return Response(found["data"], media_type=found["media_type"], headers={
        "Content-Disposition": f'inline; filename="{found["filename"]}"',
        "Cache-Control": "private, max-age=600"})


@router.get("/requests/{request_id}/download.zip")
def download_zip(request_id: str, request: Request,
                 asset: list[str] = Query(default_factory=list, max_length=MAX_ZIP_ASSETS),
                 who: Identity = Depends(page_role(*VIEWERS))) -> StreamingResponse:
    """The selected published assets of a request as one zip, each under its readable name."""
    from castkeep.flows.web.pages.zipstream import zip_chunks

    doc = _visible_request(request, request_id, who)
    wanted = list(dict.fromkeys(str(parse_id(a, "asset")) for a in asset))
    published = {a["id"] for a in doc["assets"] if a["status"] == AssetStatus.PUBLISHED}
    if not wanted:
        raise PageProblem(400, "Select one or more published variants to download.")
    unusable = [a for a in wanted if a not in published]
    if unusable:
        raise PageProblem(409, f"Only published variants can be downloaded; {len(unusable)} of "
                        "the selected are not published.")
    # Read one asset at a time as the archive is sent (each checked again when it is read).
    files = (_asset_file(request, doc, aid, who) for aid in wanted)
    name = _zip_name(doc)
    return StreamingResponse(zip_chunks((f["filename"], f["data"]) for f in files),
                             media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _zip_name(doc: dict[str, Any]) -> str:
    from castkeep.tasks.api_views import safe_filename

    return safe_filename(f"{doc['campaign']}-published") + ".zip"


@router.get("/references/{reference_id}/thumbnail")
def reference_thumbnail(reference_id: str, request: Request,
                        who: Identity = Depends(page_role(*VIEWERS))) -> Response:
    """A reference portrait, small (read by its catalogued key only)."""
    from castkeep.tasks import page_views
    from castkeep.tasks.api_views import thumbnail_bytes

    app = state(request)
    with app.runtime.sessions() as session:
        found = page_views.reference_bytes(session, app.runtime.store, reference_id)
    data = app.thumbnails.get(found["sha256"])
    if data is None:
        data = thumbnail_bytes(found["data"], THUMBNAIL_PX)
        if len(app.thumbnails) >= THUMBNAILS_KEPT:
            app.thumbnails.pop(next(iter(app.thumbnails)))
        app.thumbnails[found["sha256"]] = data
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})

