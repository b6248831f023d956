"""`castkeep demo`: the whole product on a fresh machine, with nothing configured.

1. data dir + development signing CA (kept if present)
2. ingest the sample portraits shipped in the package (public-domain photos, fictional consent)
3. a single-person request and a group request with the `classical` engine
4. verify every output's Content Credentials against the development root
5. one more request that consent refuses (a territory outside the consents' scope)

Safe to re-run: the ingest finds duplicates, the keys are kept, each run adds new requests.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from prefect import get_run_logger

import castkeep
from castkeep.flows.flow_type import flow
from castkeep.flows.components import build_components
from castkeep.flows.settings import Settings, get_settings

DEMO_TALENT_A = "demo-talent-a"
DEMO_TALENT_B = "demo-talent-b"


def samples_dir() -> Path:
    return Path(castkeep.__file__).resolve().parent / "samples" / "references"


def demo_requests(today: dt.date | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(label, request document) for the demo's three requests."""
    publish = ((today or dt.date.today()) + dt.timedelta(days=14)).isoformat()
    common = {
        "requester": "castkeep demo",
        "engine": "classical",
        "channel": "social",
        "purpose": "advertising",
        "publish_date": publish,
    }
    return [
        (
            "single",
            {
                **common,
                "campaign": "Demo: single portrait",
                "talents": [DEMO_TALENT_A],
                "lighting": {"azimuth": 60, "elevation": 30, "fill": 0.2, "temp": 4500},
                "camera": {"roll": 8},
                "variants": 2,
                "territory": "FR",
            },
        ),
        (
            "group",
            {
                **common,
                "campaign": "Demo: group shot",
                "talents": [DEMO_TALENT_A, DEMO_TALENT_B],
                "lighting": {"azimuth": -60, "elevation": 30, "fill": 0.3},
                "variants": 1,
                "territory": "DE",
            },
        ),
        (
            "refused",
            {
                **common,
                "campaign": "Demo: out-of-scope territory",
                "talents": [DEMO_TALENT_A],
                "lighting": {"azimuth": 45},
                "variants": 1,
                "territory": "JP",
            },
        ),
    ]


def ensure_keys(settings: Settings) -> str:
    """The development CA under <home>/keys unless a signer is configured."""
    if settings.signing.cert_chain or settings.signing.private_key:
        return "configured"
    from castkeep.provenance.keys import dev_ca_paths, init_dev_ca

    keys = Path(settings.home) / "keys"
    if dev_ca_paths(keys) is not None:
        return "existing"
    init_dev_ca(keys)
    return "created"


def _rgb(data: bytes):
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@flow(name="castkeep-demo", persist_result=False)
def demo() -> dict[str, Any]:
    from castkeep.flows.fulfil_request import fulfil_request, submit_request
    from castkeep.flows.ingest_references import ingest_references
    from castkeep.flows.runtime import open_runtime
    from castkeep.models.request_spec import request_from_mapping
    from castkeep.models.scoring.variety import mean_pairwise_difference
    from castkeep.progress import report as report_progress
    from castkeep.provenance.verify import verify_bytes

    logger = get_run_logger()
    settings = get_settings()
    Path(settings.home).mkdir(parents=True, exist_ok=True)
    keys = ensure_keys(settings)
    logger.info("signing keys: %s", keys)
    planned = demo_requests()
    steps = 1 + len(planned)  # the ingest, then each request (with its verification)
    report_progress("demo steps", 0, steps)
    ingest = ingest_references(str(samples_dir())).summary()
    logger.info("ingested samples: %s", ingest)
    report_progress("demo steps", 1, steps)

    requests, assets, sheets, refusals = [], [], [], []
    anchors = build_components(settings).trust_anchors
    with open_runtime(settings) as runtime:
        for step, (label, doc) in enumerate(planned, start=2):
            spec = request_from_mapping(
                doc, source=f"demo {label} request", default_engine="classical",
                default_thresholds=settings.thresholds.model_dump(),
            )
            request_id = submit_request(runtime, spec, actor=settings.acting_user)
            result = fulfil_request(str(request_id))
            requests.append({"label": label, "request_id": result["request_id"],
                             "status": result["status"], "refusals": result["refusals"]})
            refusals.extend(result["refusals"])
            if result.get("contact_sheet"):
                sheets.append(result["contact_sheet"])
            passing = []
            for a in result["assets"]:
                from castkeep.db.assets_repo import get_asset

                with runtime.sessions() as session:
                    key = get_asset(session, a["id"]).object_key
                data = runtime.store.get_bytes(key)
                report = verify_bytes(data, trust_anchors=anchors)
                if a["passed"]:
                    passing.append(_rgb(data))
                assets.append({
                    "id": a["id"],
                    "request": label,
                    "variant": a["variant"],
                    "path": a["path"],
                    "status": a["status"],
                    "state": report.state,
                    "failures": report.failures,
                    "passed": a["passed"],
                    "scores": a["scores"],
                    "reason": a.get("reason"),
                })
            # How different the passing variants look (grey levels at 256x320; the engine aims
            # for at least MIN_MEAN_DIFFERENCE so ten variants are not one picture ten times).
            requests[-1]["variety"] = mean_pairwise_difference(passing)
            report_progress("demo steps", step, steps)
    return {
        "home": str(settings.home),
        "keys": keys,
        "ingest": ingest,
        "requests": requests,
        "assets": assets,
        "contact_sheets": sheets,
        "refusals": refusals,
    }
