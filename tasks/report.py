"""A request's report: contact sheet PNG and score table (CSV), stored under reports/ and
published as Prefect artifacts. Built from the catalogue and the stored assets, so a resumed or
re-reported request shows every variant, including ones made by an earlier (crashed) run."""

from __future__ import annotations

import csv
import io
import logging
import threading
import uuid
from collections import OrderedDict
from typing import Any

from castkeep.db import assets_repo
from castkeep.db.audit_log import append_event
from castkeep.models.contact_sheet import ScoreLine, SheetEntry, contact_sheet_image, sheet_png
from castkeep.models.imaging import decode_image
from castkeep.tasks.catalogue_views import report_keys  # noqa: F401 - used by the request flow

log = logging.getLogger(__name__)
REPORTS_PREFIX = "reports"
THUMB_SIDE = 256
# The contact sheet travels to the Prefect UI inside its image artifact, as a data: URL (the UI
# shows it offline; a link to the store would not open in a browser elsewhere): a JPEG this size.
PREVIEW_MAX_BYTES = 150_000
PREVIEW_MAX_SIDE = 1600
PREVIEW_QUALITY = 70


# Thumbnails of assets this process just made, by object key (content-addressed, so an entry
# never goes stale): the report of a request run here needs no read and decode of its outputs.
# Bounded; a request larger than this, or resumed elsewhere, reads the rest from the store.
_KEPT_THUMBNAILS = 64
_kept: OrderedDict[str, Any] = OrderedDict()
_kept_lock = threading.Lock()


def keep_thumbnail(key: str, rgb) -> None:
    """Remember the contact-sheet thumbnail of the asset stored under `key`, made from `rgb`
    (HxWx3 uint8, the pixels just stored)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, THUMB_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else rgb.copy()
    with _kept_lock:
        _kept[key] = small
        _kept.move_to_end(key)
        while len(_kept) > _KEPT_THUMBNAILS:
            _kept.popitem(last=False)


def _thumbnail(store, key: str):
    import numpy as np
    from PIL import Image, ImageOps

    with _kept_lock:
        kept = _kept.get(key)
    if kept is not None:
        return kept
    try:
        data = store.get_bytes(key)
        if data[:3] == b"\xff\xd8\xff":
            # Our outputs are JPEG: decode straight at thumbnail scale (DCT scaling, several
            # times faster than decoding every pixel only to shrink them).
            with Image.open(io.BytesIO(data)) as src:
                src.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
                img = ImageOps.exif_transpose(src).convert("RGB")
        else:
            img = Image.fromarray(decode_image(data).rgb)
    except Exception as exc:  # noqa: BLE001 - a missing object shows as a crossed tile
        log.warning("cannot read %s for the contact sheet: %s", key, exc)
        return None
    img.thumbnail((THUMB_SIDE, THUMB_SIDE))
    return np.asarray(img)


def _score_lines(view: assets_repo.AssetView, labels: dict[str, str]) -> tuple[ScoreLine, ...]:
    lines = []
    for s in view.scores:
        if s.kind == "identity":
            label = f"identity {labels.get(s.talent_id or '', (s.talent_id or '?')[:8])}"
            if not s.detail.get("found", True):
                lines.append(ScoreLine(s.kind, label + " (not found)", 0.0, s.threshold, False))
                continue
        elif s.kind == "extra_faces":
            label = "extra faces"
        else:
            label = s.kind
        lines.append(ScoreLine(s.kind, label, s.value, s.threshold, s.passed))
    return tuple(lines)


def score_table(view: assets_repo.RequestView) -> list[dict[str, Any]]:
    rows = []
    for a in view.assets:
        for s in a.scores:
            rows.append(
                {
                    "variant": a.variant,
                    "asset": a.id,
                    "status": a.status,
                    "kind": s.kind,
                    "talent": s.talent_id or "",
                    "value": round(s.value, 4),
                    "threshold": "" if s.threshold is None else round(s.threshold, 4),
                    "passed": s.passed,
                }
            )
    return rows


def publish_report(runtime, request_id: uuid.UUID, *, artifacts: bool = True) -> dict[str, str]:
    """Render, store and announce the report. Returns {"contact_sheet": key, "score_table": key}."""
    with runtime.sessions() as session:
        view = assets_repo.request_view(session, request_id)
    labels = {}
    talents = view.spec.get("talents", [])
    for a in view.assets:
        # The lineage order follows the request's talent order (one reference per talent).
        for ref, tid in zip(talents, a.talent_ids):
            labels.setdefault(tid, ref)
    entries = [
        SheetEntry(
            title=f"variant {a.variant} (attempt {a.attempt})",
            passed=a.passed,
            image=_thumbnail(runtime.store, a.object_key),
            scores=_score_lines(a, labels),
            note=(a.status_reason if not a.passed else a.status) + f"; seed {a.seed}",
        )
        for a in view.assets
    ]
    title = f"{view.campaign} - request {view.id[:8]} - {view.status}"
    if view.refusals:
        entries = [SheetEntry(title="refused", passed=False, note="; ".join(view.refusals))]
    image = contact_sheet_image(entries, title=title)
    sheet = runtime.store.put_bytes(sheet_png(image), prefix=REPORTS_PREFIX, ext="png",
                                    media_type="image/png")
    table = score_table(view)
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=["variant", "asset", "status", "kind", "talent", "value", "threshold", "passed"]
    )
    writer.writeheader()
    writer.writerows(table)
    csv_obj = runtime.store.put_bytes(
        buf.getvalue().encode(), prefix=REPORTS_PREFIX, ext="csv", media_type="text/csv"
    )
    keys = {"contact_sheet": sheet.key, "score_table": csv_obj.key}
    with runtime.sessions.begin() as session:
        append_event(
            session,
            actor="castkeep",
            kind="request.report",
            entity_type="asset_request",
            entity_id=str(request_id),
            payload=keys,
        )
    if artifacts:
        _artifacts(runtime, view, table, keys, image)
    return keys


def sheet_preview(sheet, *, max_bytes: int = PREVIEW_MAX_BYTES) -> bytes:
    """The contact sheet (PNG bytes, or the PIL image before encoding) as a JPEG of at most
    `max_bytes`, no larger than PREVIEW_MAX_SIDE: scaled down until it fits. The scale comes
    from a measured size (JPEG bytes grow about with the pixel count), so a large sheet takes
    two or three encodes rather than a walk down qualities and sizes."""
    import math

    import cv2
    import numpy as np
    from PIL import Image

    if isinstance(sheet, (bytes, bytearray)):
        with Image.open(io.BytesIO(sheet)) as src:
            img = src.convert("RGB")
    else:
        img = sheet if sheet.mode == "RGB" else sheet.convert("RGB")
    scale = min(1.0, PREVIEW_MAX_SIDE / max(img.size))
    # Bytes per full-size pixel at the preview quality (an unoptimised encode: quick).
    per_pixel = len(_jpeg(img, optimize=False)) / (img.width * img.height)
    while True:
        # Aim at 80 %: smaller pictures cost more bytes per pixel.
        fits = math.sqrt(0.8 * max_bytes / (per_pixel * img.width * img.height))
        scale = min(scale, fits)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        out = img if size == img.size else Image.fromarray(
            cv2.resize(np.asarray(img), size, interpolation=cv2.INTER_AREA))  # fast and smooth
        data = _jpeg(out, optimize=True)
        if len(data) <= max_bytes or min(out.size) < 64:
            return data
        # Measure again at this size, and step down.
        per_pixel = max(per_pixel, len(data) / (img.width * img.height * scale * scale))
        scale *= 0.9


def _jpeg(img, *, optimize: bool) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=PREVIEW_QUALITY, optimize=optimize)
    return buf.getvalue()


def _artifacts(runtime, view, table, keys, sheet) -> None:
    import base64

    from prefect.artifacts import (
        create_image_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:  # artifacts belong to a flow run
        return
    from castkeep.db.object_store import object_location

    key = f"request-{view.id}"
    preview = base64.b64encode(sheet_preview(sheet)).decode("ascii")
    create_image_artifact(
        image_url=f"data:image/jpeg;base64,{preview}", key=f"{key}-contact-sheet",
        description=f"Contact sheet of request {view.id} ({view.campaign}): {view.status}",
    )
    if table:
        create_table_artifact(
            key=f"{key}-scores", table=table,
            description=f"Scores of request {view.id} ({view.campaign})",
        )
    lines = [
        f"# Request {view.id}: {view.status}",
        "",
        f"Contact sheet: `{object_location(runtime.store, keys['contact_sheet'])}`",
        f"Score table: `{object_location(runtime.store, keys['score_table'])}`",
        "",
    ]
    lines += [f"- refused: {r}" for r in view.refusals]
    lines += [
        f"- variant {a.variant}: {a.status} ({'pass' if a.passed else 'fail'}) asset `{a.id}`"
        for a in view.assets
    ]
    create_markdown_artifact(key=f"{key}-summary", markdown="\n".join(lines))
