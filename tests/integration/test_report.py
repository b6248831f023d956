"""The request report: contact sheet + score table in the object store, Prefect artifacts."""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid

import pytest
from PIL import Image

from tests.plugins.request import request_doc

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_report_objects_and_artifacts(request_env, fulfil):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.report import report_keys

    result = fulfil(request_doc(variants=2, engine_options={"scramble_face": True},
                                thresholds={"max_retries": 0}))
    rid = result["request_id"]
    with open_runtime() as rt:
        with rt.sessions() as s:
            keys = report_keys(s, uuid.UUID(rid))
        rows = list(csv.DictReader(io.StringIO(rt.store.get_bytes(keys["score_table"]).decode())))
        sheet = rt.store.get_bytes(keys["contact_sheet"])
    assert sheet[:8] == b"\x89PNG\r\n\x1a\n"
    assert {r["variant"] for r in rows} == {"0", "1"}
    identity = [r for r in rows if r["kind"] == "identity"]
    assert len(identity) == 2 and all(r["passed"] == "False" for r in identity)
    assert all(r["status"] == "rejected" for r in rows)

    keys = [f"request-{rid}-scores", f"request-{rid}-summary", f"request-{rid}-contact-sheet"]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
            any_=keys)))
    by_key = {a.key: a for a in found}
    assert set(by_key) == set(keys)
    assert "variant 1: rejected (fail)" in by_key[f"request-{rid}-summary"].data
    # The contact sheet shows in the Prefect UI: an image artifact whose URL carries the image
    # (a small JPEG of the stored sheet), so it renders without access to the object store.
    image = by_key[f"request-{rid}-contact-sheet"]
    assert image.type == "image" and image.flow_run_id is not None
    prefix = "data:image/jpeg;base64,"
    assert image.data.startswith(prefix)
    jpeg = base64.b64decode(image.data[len(prefix):], validate=True)
    assert jpeg[:3] == b"\xff\xd8\xff" and len(jpeg) <= 150_000
    with Image.open(io.BytesIO(jpeg)) as shown, Image.open(io.BytesIO(sheet)) as stored:
        assert shown.width / shown.height == pytest.approx(stored.width / stored.height, rel=0.02)
    table = by_key[f"request-{rid}-scores"]
    assert table.type == "table"
    assert {row["variant"] for row in json.loads(table.data)} == {0, 1}
