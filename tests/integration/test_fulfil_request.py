"""fulfil_request end to end through Prefect: the real catalogue (bundled PostgreSQL), the
ingested sample talents, the classical engine, dlib scoring, C2PA signing with the development CA.

Requests keep the default lighting threshold: lighting is scored against each talent's reference
photo, which is accurate enough that no test needs a looser one."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from castkeep.db import schema
from castkeep.db.audit_log import verify_chain
from castkeep.errors import SpecError
from tests.plugins.request import request_doc, write_request

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _session():
    from castkeep.flows.runtime import open_runtime

    rt = open_runtime()
    return rt, rt.sessions()


def _rows(stmt):
    rt, s = _session()
    try:
        return list(s.scalars(stmt))
    finally:
        s.close()
        rt.close()


def _verify(path: str, dev_ca):
    from castkeep.provenance.verify import verify_bytes

    return verify_bytes(Path(path).read_bytes(), trust_anchors=[dev_ca.root_cert])


def test_single_talent_request_is_scored_signed_catalogued_and_published(request_env, fulfil, dev_ca):
    cat = request_env
    talent, consent = cat.talent_ids["demo-talent-a"], cat.consent_ids["demo-talent-a"]
    result = fulfil(request_doc(lighting={"azimuth": 60}, thresholds={"lighting_azimuth_deg": 20}))

    assert result["status"] == "completed"
    assert result["refusals"] == []
    assert [a["variant"] for a in result["assets"]] == [0, 1]
    assert all(a["passed"] and a["status"] == "published" for a in result["assets"])
    for a in result["assets"]:
        ident = a["scores"]["identity"][talent]
        assert ident["passed"] and ident["value"] < ident["threshold"] == 0.6
        assert a["scores"]["camera"]["passed"] and a["scores"]["extra_faces"]["value"] == 0
        assert a["scores"]["lighting"]["passed"] and a["scores"]["lighting"]["value"] <= 20
        report = _verify(a["path"], dev_ca)
        assert report.state == "Trusted", report.failures
        assert report.consent["talents"] == [talent]
        assert report.consent["consents"] == [consent]
        assert [x["action"] for x in report.actions] == ["c2pa.opened", "c2pa.edited"]
        assert report.scores["identity"][0]["talent_id"] == talent
        assert report.scores["identity"][0]["passed"] is True
        dumped = json.dumps(report.to_dict(), default=str)
        assert "Demo Talent" not in dumped and "obama" not in dumped.lower()

    ids = [uuid.UUID(a["id"]) for a in result["assets"]]
    lineage = _rows(select(schema.Lineage).where(schema.Lineage.asset_id.in_(ids)))
    assert len(lineage) == 2
    assert {(str(x.talent_id), str(x.consent_id), x.relationship) for x in lineage} == {
        (talent, consent, "parentOf")
    }
    assert {str(x.reference_portrait_id) for x in lineage} <= {
        cat.reference_ids["obama.jpg"], cat.reference_ids["obama2.jpg"]
    }
    lighting = _rows(select(schema.Score).where(schema.Score.kind == "lighting"))
    assert len(lighting) == 2 and all(r.detail["relative_to_reference"] for r in lighting)
    gens = _rows(select(schema.Generation).order_by(schema.Generation.variant))
    assert [(g.variant, g.attempt, g.passed) for g in gens] == [(0, 0, True), (1, 0, True)]
    assert gens[0].seed != gens[1].seed and gens[0].engine == "classical"
    # The seed varies the classical engine's output: two variants, two different images.
    variations = [g.params["engine_metadata"]["variation"] for g in gens]
    assert variations[0] != variations[1]
    assert _rows(select(func.count()).select_from(schema.Face).where(schema.Face.asset_id.in_(ids))) == [2]
    kinds = _rows(select(schema.AuditEvent.kind).order_by(schema.AuditEvent.seq))
    assert kinds.count("asset.created") == 2 and kinds.count("asset.published") == 2
    assert kinds[-2:] == ["request.completed", "request.report"]
    rt, s = _session()
    try:
        assert verify_chain(s) == []
    finally:
        s.close()
        rt.close()
    sheet = Path(result["contact_sheet"])
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_group_request_composes_every_talent(request_env, fulfil, dev_ca):
    cat = request_env
    a, b = cat.talent_ids["demo-talent-a"], cat.talent_ids["demo-talent-b"]
    result = fulfil(request_doc(talents=["demo-talent-a", "demo-talent-b"], variants=1,
                                lighting={"azimuth": -60}))
    assert result["status"] == "completed"
    (asset,) = result["assets"]
    assert asset["passed"], asset
    assert set(asset["scores"]["identity"]) == {a, b}
    assert all(s["passed"] for s in asset["scores"]["identity"].values())
    assert asset["scores"]["extra_faces"]["value"] == 0
    report = _verify(asset["path"], dev_ca)
    assert report.state == "Trusted"
    assert sorted(report.consent["talents"]) == sorted([a, b])
    assert [x["action"] for x in report.actions] == ["c2pa.created", "c2pa.placed", "c2pa.placed"]
    assert len(report.ingredients) == 2
    lineage = _rows(select(schema.Lineage).where(schema.Lineage.asset_id == uuid.UUID(asset["id"])))
    assert {(str(x.talent_id), x.relationship) for x in lineage} == {
        (a, "componentOf"), (b, "componentOf")
    }
    assert {str(x.consent_id) for x in lineage} == set(cat.consent_ids.values())


def test_consent_refusal_names_every_failing_clause_before_any_model_runs(request_env, fulfil):
    result = fulfil(request_doc(talents=["demo-talent-a", "demo-talent-b", "nobody-x"],
                                territory="JP", channel="print"))
    assert result["status"] == "refused"
    assert result["assets"] == []
    text = "\n".join(result["refusals"])
    for talent in ("demo-talent-a", "demo-talent-b"):
        assert f"talent {talent}: territory JP not in consent" in text
        assert f"talent {talent}: channel print not in consent" in text
    assert "talent nobody-x: not in the catalogue" in text
    assert _rows(select(func.count()).select_from(schema.Generation)) == [0]
    assert _rows(select(func.count()).select_from(schema.Asset)) == [0]
    (req,) = _rows(select(schema.AssetRequest))
    assert req.status == "refused" and req.refusals == result["refusals"]


def test_edit_kind_outside_consent_is_refused(request_env, fulfil, tiny_qwen_dir, monkeypatch):
    from castkeep.flows.settings import get_settings

    # A configured engine that can change the scene (an unconfigured one is refused before the
    # request is catalogued); the sample consents allow lighting, camera and group_composite,
    # not background changes.
    monkeypatch.setenv("CASTKEEP_ENGINES__QWEN_MODEL_DIR", str(tiny_qwen_dir))
    get_settings.cache_clear()
    result = fulfil(request_doc(scene="on a beach at sunset", engine="qwen-image-edit"))
    assert result["status"] == "refused"
    assert any("edit background not allowed by consent" in r for r in result["refusals"])


def test_non_commercial_encoder_is_refused_for_advertising_unless_licensed(
    request_env, fulfil, monkeypatch, tmp_path
):
    from castkeep.flows.settings import get_settings
    from tests.plugins.insightface_packs import write_tiny_pack

    pack = write_tiny_pack(tmp_path / "packs" / "tinypack")
    monkeypatch.setenv("CASTKEEP_FACES__ENCODER", "insightface")
    monkeypatch.setenv("CASTKEEP_FACES__INSIGHTFACE_ROOT", str(pack.parent))
    monkeypatch.setenv("CASTKEEP_FACES__INSIGHTFACE_PACK", "tinypack")
    get_settings.cache_clear()

    result = fulfil(request_doc())
    assert result["status"] == "refused"
    (refusal,) = result["refusals"]
    assert "encoder insightface-tinypack" in refusal and "no commercial use" in refusal
    assert "CASTKEEP_FACES__INSIGHTFACE_LICENCE_ID" in refusal
    assert _rows(select(func.count()).select_from(schema.Generation)) == [0]

    # With a licence id the gate opens; the catalogue then has no references embedded by this
    # encoder, which is a clear failure of the request (not a refusal).
    monkeypatch.setenv("CASTKEEP_FACES__INSIGHTFACE_LICENCE_ID", "lic-42")
    get_settings.cache_clear()
    with pytest.raises(SpecError, match="embedded by insightface-tinypack"):
        fulfil(request_doc())
    statuses = _rows(select(schema.AssetRequest.status).order_by(schema.AssetRequest.created_at))
    assert statuses == ["refused", "failed"]


def test_variant_below_threshold_is_retried_with_new_seeds_then_rejected(request_env, fulfil, dev_ca):
    talent = request_env.talent_ids["demo-talent-a"]
    result = fulfil(request_doc(variants=1, engine_options={"scramble_face": True},
                                thresholds={"max_retries": 2}))
    assert result["status"] == "completed"
    (asset,) = result["assets"]
    assert not asset["passed"] and asset["status"] == "rejected"
    assert "identity: talent demo-talent-a not found" in asset["reason"]
    assert "after 3 attempt(s)" in asset["reason"]
    assert asset["scores"]["identity"][talent]["passed"] is False
    assert result["rejected_attempts"] == 2
    gens = _rows(select(schema.Generation).order_by(schema.Generation.attempt))
    assert [(g.attempt, g.passed) for g in gens] == [(0, False), (1, False), (2, False)]
    assert len({g.seed for g in gens}) == 3
    # Every attempt's scores are kept; only the last attempt became an asset.
    assert _rows(select(func.count()).select_from(schema.Score).where(
        schema.Score.kind == "identity")) == [3]
    assert _rows(select(func.count()).select_from(schema.Asset)) == [1]
    # A rejected variant is still signed (nothing leaves castkeep unsigned), never published.
    assert _verify(asset["path"], dev_ca).state == "Trusted"


def test_tiny_qwen_engine_end_to_end_is_rejected_for_identity(
    request_env, fulfil, tiny_qwen_dir, monkeypatch, dev_ca
):
    from castkeep.flows.settings import get_settings

    monkeypatch.setenv("CASTKEEP_ENGINES__QWEN_MODEL_DIR", str(tiny_qwen_dir))
    monkeypatch.setenv("CASTKEEP_ENGINES__QWEN_LICENCE_ID", "qwen-lic-7")
    get_settings.cache_clear()
    talent = request_env.talent_ids["demo-talent-a"]
    result = fulfil(request_doc(
        engine="qwen-image-edit", variants=1, camera=None,
        engine_options={"steps": 2, "true_cfg_scale": 1.0, "width": 64, "height": 64},
        thresholds={"max_retries": 0},
    ))
    (asset,) = result["assets"]
    assert asset["status"] == "rejected"
    assert asset["reason"].startswith("identity: talent demo-talent-a not found")
    assert asset["scores"]["identity"][talent]["passed"] is False
    (gen,) = _rows(select(schema.Generation))
    assert gen.engine == "qwen-image-edit" and gen.licence_id == "qwen-lic-7"
    assert gen.model_hashes["model_dir_fingerprint"].startswith("sha256:") or gen.model_hashes
    report = _verify(asset["path"], dev_ca)
    assert report.state == "Trusted"
    assert any("qwen-lic-7" in (x.get("description") or "") for x in report.actions)


def _child_env(home: Path) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if k.startswith(("CASTKEEP_", "PATH", "HOME", "LANG"))}
    env["CASTKEEP_HOME"] = str(home)
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()  # the test harness's API
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_crash_then_resume_keeps_finished_variants(request_env, tmp_path, dev_ca):
    """kill -9 a real `castkeep request` process after its first asset is catalogued; `resume`
    finishes the rest without recomputing what was done, and every asset is signed."""
    from castkeep.flows.fulfil_request import fulfil_request

    path = write_request(tmp_path, request_doc(variants=4, lighting={"azimuth": 60}))
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "castkeep"), "request", str(path), "--json"],
        env=_child_env(request_env.home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    done_before: list = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            done_before = _rows(select(schema.Asset))
            if done_before:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    (req,) = _rows(select(schema.AssetRequest))
    assert req.status == "running"
    before = {a.id: a.generation_id for a in _rows(select(schema.Asset))}
    assert 1 <= len(before) < 4
    gens_before = _rows(select(schema.Generation))

    result = fulfil_request(str(req.id))
    assert result["status"] == "completed"
    assert [a["variant"] for a in result["assets"]] == [0, 1, 2, 3]
    after = {uuid.UUID(a["id"]) for a in result["assets"]}
    assert set(before) <= after  # finished variants kept as they were
    gens_after = _rows(select(schema.Generation))
    finished_variants = {g.variant for g in gens_before if g.id in set(before.values())}
    for v in finished_variants:  # not recomputed
        assert [g.id for g in gens_after if g.variant == v] == [
            g.id for g in gens_before if g.variant == v
        ]
    for a in result["assets"]:
        assert _verify(a["path"], dev_ca).state == "Trusted"
    # Exactly one asset per variant, each with its generation, scores and lineage.
    assets = _rows(select(schema.Asset))
    assert len(assets) == 4
    for asset in assets:
        assert _rows(select(func.count()).select_from(schema.Lineage).where(
            schema.Lineage.asset_id == asset.id)) == [1]
        assert _rows(select(func.count()).select_from(schema.Score).where(
            schema.Score.asset_id == asset.id))[0] >= 4


def test_finished_request_is_not_run_again(request_env, fulfil):
    from castkeep.flows.fulfil_request import fulfil_request

    first = fulfil(request_doc(variants=1, lighting={"azimuth": 60}))
    again = fulfil_request(first["request_id"])
    assert again["assets"] == first["assets"] and again["status"] == "completed"
    assert _rows(select(func.count()).select_from(schema.Generation)) == [1]


def test_gpu_worker_variant_flow_takes_the_prefect_limit_and_is_idempotent(request_env):
    """What a `gpu` pool worker runs per variant when requests are scaled out (run here in
    process, against the test API): one variant, under the Prefect `gpu` limit."""
    from prefect.client.orchestration import get_client

    from castkeep.flows.fulfil_request import fulfil_variant, submit_request
    from castkeep.flows.runtime import open_runtime
    from castkeep.models.request_spec import request_from_mapping
    from castkeep.tasks.generate import ensure_gpu_limit

    spec = request_from_mapping(request_doc(variants=3, lighting={"azimuth": 60}))
    with open_runtime() as rt:
        rid = submit_request(rt, spec, actor="tests")
    ensure_gpu_limit(1)
    asset_id = fulfil_variant(str(rid), 2)
    assert fulfil_variant(str(rid), 2) == asset_id  # a re-delivered run recomputes nothing
    (gen,) = _rows(select(schema.Generation))
    assert gen.variant == 2
    assert [str(a.id) for a in _rows(select(schema.Asset))] == [asset_id]
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("gpu").active_slots == 0


def test_scale_out_without_the_variant_deployment_is_a_clear_error(request_env, fulfil, monkeypatch):
    from castkeep.errors import ConfigurationError
    from castkeep.flows.settings import get_settings

    monkeypatch.setenv("CASTKEEP_PREFECT__GPU_WORK_POOL", "gpu")
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="no deployment 'fulfil-variant/fulfil-variant'"):
        fulfil(request_doc(variants=1))
    (req,) = _rows(select(schema.AssetRequest))
    assert req.status == "failed"
    assert _rows(select(func.count()).select_from(schema.Generation)) == [0]


def _request_row():
    (row,) = _rows(select(schema.AssetRequest))
    return row


def test_unwritable_store_mid_run_fails_the_request_and_resume_completes_it(request_env, fulfil):
    """A store that cannot be written (a file where its temp folder belongs stops even root) ends
    the run with ObjectStoreError (exit 5) naming the path and setting; the request is `failed`
    with that reason, not left `running`, and a resume once the store is fixed completes it
    with the old reason cleared."""
    from castkeep.errors import ObjectStoreError
    from castkeep.flows.fulfil_request import fulfil_request

    tmp = request_env.home / "objects" / "tmp"
    for leftover in tmp.iterdir():
        leftover.unlink()
    tmp.rmdir()
    tmp.write_text("in the way")
    with pytest.raises(ObjectStoreError) as info:
        fulfil(request_doc(variants=1, lighting={"azimuth": 60}))
    assert info.value.exit_code == 5 and "CASTKEEP_HOME" in str(info.value)
    row = _request_row()
    assert row.status == "failed" and row.refusals == [str(info.value)]

    tmp.unlink()
    result = fulfil_request(str(row.id))
    assert result["status"] == "completed" and result["refusals"] == []
    assert _request_row().refusals == []


def test_database_lost_mid_run_fails_the_request_and_resume_completes_it(
    request_env, fulfil, asset_inserts_drop_the_connection
):
    from castkeep.errors import DatabaseError
    from castkeep.flows.fulfil_request import fulfil_request

    with pytest.raises(DatabaseError) as info:
        fulfil(request_doc(variants=1, lighting={"azimuth": 60}))
    msg = str(info.value)
    assert info.value.exit_code == 5 and "\n" not in msg
    assert "terminating connection" in msg and "CASTKEEP_DATABASE__URL" in msg
    assert "castkeep status" in msg
    row = _request_row()
    assert row.status == "failed" and row.refusals == [msg]
    assert _rows(select(func.count()).select_from(schema.Asset)) == [0]

    asset_inserts_drop_the_connection()  # the database is back
    result = fulfil_request(str(row.id))
    assert result["status"] == "completed" and result["refusals"] == []
    assert [a["status"] for a in result["assets"]] == ["published"]


# ---- two variants in flight: the engine of one overlaps the post-processing of the other ----


class RecordingEngine:
    """Builds a real classical engine that records each call: (seed, start, end) in epoch
    seconds, and the most calls it ever ran at once. `hold_s`: a wait inside each call before
    the classical work, the GIL free meanwhile, as a GPU engine's call waits for its device
    (so an engine call outlasts a variant's scoring and signing even on a busy machine).
    `during(i)`: run inside the i-th call (0-based), after the wait, before the work."""

    def __init__(self, hold_s: float = 0.0, during=None) -> None:
        import threading

        from castkeep.models.engines.engine_classical import ClassicalEngine

        recorder = self

        class _Engine(ClassicalEngine):
            def _predict(self, inp):
                with recorder.lock:
                    index = len(recorder.calls) + recorder.active
                    recorder.active += 1
                    recorder.max_active = max(recorder.max_active, recorder.active)
                start = time.time()
                try:
                    time.sleep(hold_s)
                    if during is not None:
                        during(index)
                    return super()._predict(inp)
                finally:
                    end = time.time()
                    with recorder.lock:
                        recorder.active -= 1
                        recorder.calls.append((inp.seed, start, end))

        self.lock = threading.Lock()
        self.calls: list[tuple[int, float, float]] = []
        self.active = 0
        self.max_active = 0
        self.engine = _Engine()


@pytest.fixture
def recording_engine():
    """Install a RecordingEngine as this process's `classical` engine (the model cache's entry
    fulfil_request uses); the real one is back after the test."""
    from castkeep.flows.components import engine_construct_options
    from castkeep.flows.settings import get_settings
    from castkeep.models.cache import models
    from castkeep.tasks.generate import forget_engines

    def install(**kwargs) -> RecordingEngine:
        recorder = RecordingEngine(**kwargs)
        forget_engines()
        construct = engine_construct_options("classical", get_settings())
        assert models.get("engine", "classical", construct, lambda: recorder.engine) is recorder.engine
        return recorder

    yield install
    forget_engines()


def _by_seed(gens) -> dict[int, schema.Generation]:
    assert len({g.seed for g in gens}) == len(gens)
    return {g.seed: g for g in gens}


def test_next_variants_engine_call_overlaps_the_previous_variants_post_processing(
    request_env, fulfil, recording_engine
):
    recorder = recording_engine(hold_s=1.0)
    result = fulfil(request_doc(variants=4, lighting={"azimuth": 60},
                                thresholds={"lighting_azimuth_deg": 60}))
    assert result["status"] == "completed"
    assert [a["variant"] for a in result["assets"]] == [0, 1, 2, 3]

    # Engine calls never overlapped each other: one at a time, in the order they started.
    assert recorder.max_active == 1
    calls = sorted(recorder.calls, key=lambda c: c[1])
    assert len(calls) == 4
    for (_, _, end), (_, start, _) in itertools.pairwise(calls):
        assert start >= end

    # Each engine call after the first started before the variant of the call before it was
    # catalogued (its asset row is created at the end of its scoring, signing and storing):
    # that variant's post-processing ran alongside the next engine call.
    gens = _by_seed(_rows(select(schema.Generation)))
    assets = {a.generation_id: a for a in _rows(select(schema.Asset))}
    catalogued = {g.variant: assets[g.id].created_at.timestamp() for g in gens.values()}
    for (seed, _, end), (_, start, _) in itertools.pairwise(calls):
        variant = gens[seed].variant
        assert end <= start < catalogued[variant], (variant, start, catalogued[variant])

    # Every variant catalogued under its own number, with its own seed, whatever order the
    # engine ran them in and they finished in.
    from castkeep.models.request_spec import RequestSpec

    (req,) = _rows(select(schema.AssetRequest))
    spec = RequestSpec.model_validate(dict(req.spec))
    assert sorted(g.variant for g in gens.values()) == [0, 1, 2, 3]
    variant_of = {a["id"]: a["variant"] for a in result["assets"]}
    for g in gens.values():
        assert g.seed == spec.seed_for(g.variant, 0) and g.attempt == 0
        assert variant_of[str(assets[g.id].id)] == g.variant
        # waiting for the other variant's engine call is recorded, not counted as engine time
        assert g.timings["engine_s"] >= 1.0 and g.timings["engine_queue_s"] >= 0.0
    assert set(variant_of) == {str(a.id) for a in assets.values()}
    # ... and the engine queue was actually waited on: variants were in flight two at a time.
    assert max(g.timings["engine_queue_s"] for g in gens.values()) > 0.1


def test_consent_revoked_while_a_variant_is_in_flight_refuses_the_request(
    request_env, fulfil, recording_engine
):
    """The consent is revoked (a real cascade, committed) late in the second engine call: the
    first variant is catalogued by then and the third has started (it waits for the engine).
    The variant in the engine finishes (catalogued quarantined: nothing is left half-made), the
    third stops at its turn without running the engine (no engine call starts after the
    revocation), and the request ends refused."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.revoke import revoke

    consent = request_env.consent_ids["demo-talent-a"]
    revoked_at: list[float] = []

    def revoke_in_second_call(index: int) -> None:
        if index == 1:
            with open_runtime() as rt:
                revoke(rt, consent_id=consent, reason="talent withdrew", face=None)
            revoked_at.append(time.time())

    recorder = recording_engine(hold_s=1.0, during=revoke_in_second_call)
    result = fulfil(request_doc(variants=6, approval_required=False, lighting={"azimuth": 60},
                                thresholds={"lighting_azimuth_deg": 60, "max_retries": 0}))

    assert result["status"] == "refused"
    assert any("is revoked" in r for r in result["refusals"]), result["refusals"]
    (refused,) = _rows(select(schema.AuditEvent).where(schema.AuditEvent.kind == "request.refused"))
    assert refused.payload["at"] == "generation" and refused.payload["gate"] == "consent"
    (when,) = revoked_at
    # No engine call started after the revocation committed.
    starts = sorted(start for _, start, _ in recorder.calls)
    assert len(starts) == 2 and all(s < when for s in starts)
    # The two variants that were in flight are whole: one generation, one asset, its scores,
    # its lineage and its signed object each; both quarantined; nothing else was made.
    gens = _rows(select(schema.Generation))
    assets = _rows(select(schema.Asset))
    assert len(gens) == 2 and len(assets) == 2
    assert {a.generation_id for a in assets} == {g.id for g in gens}
    assert {a.status for a in assets} == {"quarantined"}
    # The case under test: the first variant was done before the revocation, so the third
    # had been started (the window holds two) and was past its start when consent went.
    assert min(a.created_at.timestamp() for a in assets) < when
    rt, s = _session()
    try:
        for a in assets:
            assert s.scalar(select(func.count()).select_from(schema.Lineage).where(
                schema.Lineage.asset_id == a.id)) == 1
            assert s.scalar(select(func.count()).select_from(schema.Score).where(
                schema.Score.asset_id == a.id)) >= 4
            assert rt.store.exists(a.object_key)
        assert verify_chain(s) == []
    finally:
        s.close()
        rt.close()
    assert _rows(select(schema.AuditEvent).where(schema.AuditEvent.kind == "asset.published")) == []
