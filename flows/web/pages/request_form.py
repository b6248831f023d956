"""The request form's values: read from the query (live talent check) or the posted form, and
turned into a request document (the JSON of a request file) for the API's submit. Ranges and
words come from the specs the CLI parses (tasks/page_views.spec_ranges)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

from castkeep.errors import RequestFormError

MAX_VARIANTS_FORM = 50
LIGHTING_FIELDS = ("key_azimuth", "key_elevation", "fill_ratio", "colour_temperature",
                   "key_intensity")
CAMERA_FIELDS = ("roll", "yaw", "pitch", "focal_length")
TEXT_LIMITS = {"campaign": 300, "brief": 4000, "scene": 2000, "channel": 50, "territory": 10,
               "purpose": 50, "publish_date": 10, "hardness": 10, "shot": 20}


@functools.cache
def ranges() -> dict[str, dict[str, Any]]:
    """field -> {"min", "max", "default", "description"} of the lighting and camera specs."""
    from castkeep.tasks.page_views import spec_ranges

    return spec_ranges()


def defaults() -> dict[str, Any]:
    values: dict[str, Any] = {
        "campaign": "", "brief": "", "scene": "", "talents": [], "channel": "",
        "territory": "", "purpose": "",
        "publish_date": (dt.date.today() + dt.timedelta(days=14)).isoformat(),
        "variants": "2", "approval_required": True, "lighting": True, "camera": False,
        "hardness": "soft", "shot": "",
    }
    for name in LIGHTING_FIELDS + CAMERA_FIELDS:
        values[name] = _fmt(ranges()[name]["default"])
    return values


def _fmt(number: float) -> str:
    return f"{number:g}"


def _clip(name: str, value: str) -> str:
    return value.strip()[:TEXT_LIMITS.get(name, 32)]


def from_query(params: Any) -> dict[str, Any]:
    """The use fields (and the edit switches) from a query string; anything else is ignored."""
    out: dict[str, Any] = {}
    for name in ("channel", "territory", "purpose", "publish_date"):
        if params.get(name) is not None:
            out[name] = _clip(name, params.get(name))
    for name in ("lighting", "camera"):
        if params.get(name) is not None:
            out[name] = params.get(name) in ("1", "on", "true")
    if params.get("group") is not None:
        out["group"] = params.get("group") in ("1", "on", "true")
    if params.get("scene") is not None:
        out["scene"] = _clip("scene", params.get("scene"))
    return out


def from_form(form: dict[str, list[str]]) -> dict[str, Any]:
    """Every field as the user typed it (kept for re-showing the form after an error)."""
    def one(name: str) -> str:
        return _clip(name, (form.get(name) or [""])[0])

    values = defaults()
    for name in ("campaign", "brief", "scene", "channel", "territory", "purpose",
                 "publish_date", "variants", "hardness", "shot", *LIGHTING_FIELDS,
                 *CAMERA_FIELDS):
        if name in form:  # a disabled section sends nothing: its values stay the defaults
            values[name] = one(name)
    values["talents"] = [t.strip()[:64] for t in form.get("talents", [])[:20] if t.strip()]
    for name in ("approval_required", "lighting", "camera"):
        values[name] = bool(form.get(name))
    return values


def edits_of(values: Mapping[str, Any]) -> tuple[str, ...]:
    """The edit kinds the form asks for, as RequestSpec.edit_kinds() names them."""
    kinds = []
    if values.get("lighting"):
        kinds.append("lighting")
    if values.get("camera"):
        kinds.append("camera")
    if (values.get("scene") or "").strip():
        kinds.append("background")
    if values.get("group") or len(values.get("talents") or ()) > 1:
        kinds.append("group_composite")
    return tuple(kinds)


def use_of(values: Mapping[str, Any], settings) -> tuple[Any, dt.date | None]:
    """(Use, publish date) for the talent check; (None, None) while incomplete or invalid."""
    from castkeep.tasks.page_views import form_use

    try:
        publish = dt.date.fromisoformat(values.get("publish_date") or "")
    except ValueError:
        return None, None
    use = form_use(channel=values.get("channel") or "", territory=values.get("territory") or "",
                   purpose=values.get("purpose") or "", edits=edits_of(values),
                   engine=settings.engines.default)
    return use, publish if use is not None else None


def _number(values: Mapping[str, Any], name: str, label: str) -> float:
    text = str(values.get(name) or "").strip()
    try:
        number = float(text)
    except ValueError:
        raise RequestFormError(f"{label}: enter a number") from None
    lo, hi = ranges()[name]["min"], ranges()[name]["max"]
    if not lo <= number <= hi:
        raise RequestFormError(f"{label}: {text} is outside {lo:g} to {hi:g}")
    return number


LABELS = {"key_azimuth": "Key light azimuth", "key_elevation": "Key light elevation",
          "fill_ratio": "Fill", "colour_temperature": "Colour temperature",
          "key_intensity": "Key intensity", "roll": "Camera roll", "yaw": "Camera yaw",
          "pitch": "Camera pitch", "focal_length": "Focal length"}


def document(values: Mapping[str, Any], *, requester: str) -> dict[str, Any]:
    """The request document (what POST /api/v1/requests takes); RequestFormError for what the form
    itself can tell is wrong. The spec's own validation runs on submit."""
    if not values.get("campaign"):
        raise RequestFormError("Campaign: give the request a name")
    talents = list(dict.fromkeys(values.get("talents") or ()))
    if not talents:
        raise RequestFormError("Talents: choose at least one talent whose consent covers the use")
    for name, label in (("channel", "Channel"), ("territory", "Territory"),
                        ("purpose", "Purpose"), ("publish_date", "Publish date")):
        if not values.get(name):
            raise RequestFormError(f"{label}: this is required")
    try:
        variants = int(str(values.get("variants") or ""))
    except ValueError:
        raise RequestFormError("Variants: enter a whole number") from None
    if not 1 <= variants <= MAX_VARIANTS_FORM:
        raise RequestFormError(f"Variants: choose 1 to {MAX_VARIANTS_FORM}")
    doc: dict[str, Any] = {
        "campaign": values["campaign"], "requester": requester, "talents": talents,
        "channel": values["channel"], "territory": values["territory"],
        "purpose": values["purpose"], "publish_date": values["publish_date"],
        "variants": variants, "approval_required": bool(values.get("approval_required")),
    }
    for name in ("brief", "scene"):
        if values.get(name):
            doc[name] = values[name]
    if values.get("lighting"):
        doc["lighting"] = {name: _number(values, name, LABELS[name]) for name in LIGHTING_FIELDS}
        doc["lighting"]["hardness"] = values.get("hardness") or "soft"
    if values.get("camera"):
        doc["camera"] = {name: _number(values, name, LABELS[name]) for name in CAMERA_FIELDS}
        if values.get("shot"):
            doc["camera"]["shot"] = values["shot"]
    return doc
