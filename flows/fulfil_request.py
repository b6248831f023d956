"""Flow: fulfil one asset request.

    1 consent gate for every talent at the publish date (refusal before any model runs)
    2 licence gate for the engine and the identity encoder
    3 reference selection (best portrait per talent under an allowing consent)
    4 generation per variant (seeded, under the `gpu` concurrency limit, transient retries)
    5 scoring (identity per talent, extra faces, lighting, camera, quality); a variant below a
      threshold is retried with a new seed, then catalogued as rejected with its scores
    6 signing (C2PA with consent + score assertions), storage, rows in one transaction per asset
    7 approval: with `approval_required` the request ends `awaiting_approval` and
      `castkeep approve` publishes the chosen assets (flows/approve.py); else passing assets are
      published at once
    8 artifacts: contact sheet PNG (stored under reports/) and a score table

The request row is created before the flow runs (`submit_request`), so a crash at any point
leaves a resumable request: running the flow again with the same id (`castkeep request resume`)
skips finished variants and continues a variant after its last recorded attempt. An asset exists
only with its rows and its signature (stored first, then catalogued in one transaction).

Scale-out: when CASTKEEP_PREFECT__GPU_WORK_POOL is set, variants are dispatched as runs of the
`fulfil-variant` deployment (this module's `fulfil_variant` flow) on that pool, so N GPU workers
share one request; each engine call there holds a slot of the Prefect global concurrency limit
`gpu` (CASTKEEP_PREFECT__GPU_CONCURRENCY slots; 60 s leases, renewed while held, so the server
repossesses a dead worker's slot). Otherwise variants run in this process, where the engine stays
loaded, under a machine-wide file-lock slot (see tasks/generate.local_gpu_slot for why not the
ephemeral API's limit).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from castkeep.db import assets_repo
from castkeep.db.assets_repo import GenerationRecord
from castkeep.errors import CastkeepError, ConsentError, DatabaseError, LicenceError
from castkeep.db.ids import parse_id
from castkeep.db.object_store import object_location
from castkeep.flows import request_status
from castkeep.flows.components import (
    build_components,
    check_request,
    licence_ids,
    licence_setting_names,
)
from castkeep.flows.run_stats import RunStats
from castkeep.flows.settings import Settings, get_settings
from castkeep.models.engines.base import EditInput
from castkeep.models.request_spec import RequestSpec
from castkeep.provenance.policy import use_of, use_record
from castkeep.vocab import AssetStatus, RequestStatus
from castkeep.tasks.consent_gate import (
    ModelLicence,
    TalentClearance,
    check_consent,
    check_consent_for_publish,
    consent_gate_task,
    licence_gate_task,
)
from castkeep.tasks.generate import (
    GPU_LIMIT,
    engine_info,
    ensure_gpu_limit,
    generate_task,
    local_gpu_slot,
)
from castkeep.tasks.references import ReferenceSet, select_references_task
from castkeep.tasks.report import publish_report
from castkeep.tasks.score import score_task
from castkeep.tasks.sign import build_manifest, edit_description, finish_variant_task

VARIANT_DEPLOYMENT = "fulfil-variant/fulfil-variant"


# ---- submitting ------------------------------------------------------------------------------


def submit_request(runtime, spec: RequestSpec, *, actor: str) -> uuid.UUID:
    """Catalogue a validated request (status received); the flow then fulfils it by id. A request
    the engine or the signer cannot serve is refused here, before it has a row."""
    check_request(spec, runtime.settings)
    with runtime.sessions.begin() as session:
        row = assets_repo.create_request(
            session, spec=spec.canonical(), spec_sha256=spec.sha256(), actor=actor
        )
        return row.id


# ---- context ---------------------------------------------------------------------------------


@dataclass
class Prepared:
    request_id: uuid.UUID
    spec: RequestSpec
    settings: Settings
    runtime: Any
    encoder: Any
    construct: dict[str, Any]
    engine_version: str
    engine_device: str
    licence_id: str | None
    clearances: tuple[TalentClearance, ...]
    refs: ReferenceSet
    signer: Any
    actor: str
    stats: RunStats


class Refused(Exception):
    def __init__(self, refusals: list[str], kind: str) -> None:
        super().__init__("; ".join(refusals))
        self.refusals = refusals
        self.kind = kind  # consent | licence


def prepare(runtime, settings: Settings, request_id: uuid.UUID, spec: RequestSpec,
            stats: RunStats) -> Prepared:
    """Gates 1-2 and reference selection (3). Raises Refused before any model runs."""
    with stats.stage("consent"), runtime.sessions() as session:
        gate = consent_gate_task(session, list(spec.talents), use_of(spec), spec.publish_date)
    if not gate.allowed:
        raise Refused(list(gate.refusals), "consent")

    components = build_components(settings, spec.engine)
    construct = components.engine_options
    with stats.stage("consent"):
        info = engine_info(spec.engine, construct)
        encoder = components.encoder
        enc = encoder.info
        lic = licence_gate_task(
            [
                ModelLicence("engine", info.name, info.version, info.licence, info.commercial_use),
                ModelLicence("encoder", enc.name, enc.version, enc.licence, enc.commercial_use),
            ],
            spec.purpose,
            # keyed by the encoder's full name (e.g. insightface-<pack>)
            licence_ids(settings, spec.engine, enc.name),
            licence_setting_names(spec.engine, enc.name),
        )
    if not lic.allowed:
        raise Refused(list(lic.refusals), "licence")

    encoder.load()
    with stats.stage("references"), runtime.sessions() as session:
        refs = select_references_task(
            session, runtime.store, encoder, gate.clearances, info.max_references, info.name
        )
    return Prepared(
        request_id=request_id,
        spec=spec,
        settings=settings,
        runtime=runtime,
        encoder=encoder,
        construct=construct,
        engine_version=info.version,
        engine_device=info.device,
        licence_id=lic.licence_ids.get(info.name),
        clearances=gate.clearances,
        refs=refs,
        signer=components.signer,
        actor=settings.acting_user,
        stats=stats,
    )


# ---- one variant -----------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    from castkeep.tasks.score import jsonable as j

    return j(value)


def run_variant(
    p: Prepared, variant: int, first_attempt: int = 0, *, limit: str | None = GPU_LIMIT
) -> uuid.UUID:
    """Generate, score and retry one variant; sign, store and catalogue its final attempt.
    Each engine call holds a slot of `limit` (None: the caller already holds one)."""
    spec = p.spec
    refs = p.refs.references
    labels = {r.talent_id: c.ref for r, c in zip(refs, p.clearances)}
    consents = [
        next(t for t in c.consents if t.id == r.consent_id) for r, c in zip(refs, p.clearances)
    ]
    last = spec.thresholds.max_retries
    attempt = min(first_attempt, last)
    while True:
        # Consent may be revoked while the request runs: stop before spending the engine on it.
        recheck_consent(p)
        seed = spec.seed_for(variant, attempt)
        inp = EditInput(
            references=[r.rgb for r in refs],
            faces=[r.face for r in refs],
            lighting=spec.lighting,
            camera=spec.camera,
            scene=spec.scene,
            seed=seed,
            options=dict(spec.engine_options),
        )
        t0 = time.perf_counter()
        gen = generate_task(spec.engine, p.construct, inp, limit)
        p.stats.add("engine", gen.engine_seconds)
        p.stats.add("gpu_wait", gen.wait_seconds)
        p.stats.add("orchestration", time.perf_counter() - t0 - gen.engine_seconds - gen.wait_seconds)
        p.stats.attempts += 1

        scores = score_task(
            gen.output.image,
            encoder=p.encoder,
            talent_embeddings=p.refs.talent_embeddings,
            talent_labels=labels,
            reference_faces={r.talent_id: r.face for r in refs},
            reference_images={r.talent_id: r.rgb for r in refs},
            lighting=spec.lighting,
            camera=spec.camera,
            thresholds=spec.thresholds,
            allow_extra_faces=spec.allow_extra_faces,
        )
        p.stats.add("scoring", scores.seconds - scores.detect_seconds)
        p.stats.add("identity_model", scores.detect_seconds)
        metadata = _jsonable(dict(gen.output.metadata or {}))
        record = GenerationRecord(
            variant=variant,
            attempt=attempt,
            seed=seed,
            engine=spec.engine,
            engine_version=p.engine_version,
            device=str(metadata.get("device") or p.engine_device),
            passed=scores.passed,
            model_hashes=_model_hashes(metadata),
            params={
                "options": dict(spec.engine_options),
                "lighting": spec.lighting.model_dump(mode="json") if spec.lighting else None,
                "camera": spec.camera.model_dump(mode="json") if spec.camera else None,
                "scene_given": spec.scene is not None,
                "edit_kinds": list(gen.output.edit_kinds),
                "engine_metadata": metadata,
                "reasons": list(scores.reasons),
            },
            timings={
                "engine_s": round(gen.engine_seconds, 4),
                "gpu_wait_s": round(gen.wait_seconds, 4),
                "score_s": round(scores.seconds, 4),
            },
            licence_id=p.licence_id,
        )
        if not scores.passed and attempt < last:
            with p.stats.stage("db"), p.runtime.sessions.begin() as session:
                assets_repo.record_attempt(session, p.request_id, record, scores.records)
            attempt += 1
            continue

        manifest = build_manifest(
            title=f"castkeep-{str(p.request_id)[:8]}-v{variant:03d}.jpg",
            references=refs,
            consents=consents,
            engine_name=spec.engine,
            engine_version=p.engine_version,
            description=edit_description(
                spec.engine, spec.lighting, spec.camera, spec.scene is not None, len(refs) > 1,
                p.licence_id,
            ),
            scores=_scores_assertion(p, scores.records),
        )
        reason = None if scores.passed else "; ".join(scores.reasons) + (
            f" (after {attempt + 1} attempt(s))"
        )
        t0 = time.perf_counter()
        done = finish_variant_task(
            gen.output.image,
            manifest,
            p.signer,
            p.runtime.store,
            p.runtime.sessions,
            p.request_id,
            generation=record,
            scores=scores.records,
            status=AssetStatus.CANDIDATE if scores.passed else AssetStatus.REJECTED,
            status_reason=reason,
            use=use_record(spec),
            references=refs,
            faces=scores.faces,
            actor=p.actor,
        )
        signed = done.signed
        p.stats.add("signing", signed.sign_seconds)
        p.stats.add("storage", signed.store_seconds)
        p.stats.add("db", done.db_seconds)
        p.stats.add("orchestration", time.perf_counter() - t0 - signed.sign_seconds
                    - signed.store_seconds - done.db_seconds)
        asset_id = done.asset_id
        p.stats.variants += 1
        return asset_id


def recheck_consent(p: Prepared) -> None:
    """Raises Refused when a talent's consent no longer covers the request."""
    with p.stats.stage("consent"), p.runtime.sessions() as session:
        gate = check_consent(session, list(p.spec.talents), use_of(p.spec), p.spec.publish_date)
    if not gate.allowed:
        raise Refused(list(gate.refusals), "consent")


def _model_hashes(metadata: dict[str, Any]) -> dict[str, Any]:
    if isinstance(metadata.get("model_hashes"), dict):
        return metadata["model_hashes"]
    keys = ("model_dir_fingerprint", "fingerprint", "loras")
    return {k: metadata[k] for k in keys if metadata.get(k)}


def _scores_assertion(p: Prepared, records):
    from castkeep.provenance.manifest import AdherenceEntry, IdentityScore, ScoresAssertion

    enc = p.encoder.info
    identity = tuple(
        IdentityScore(
            talent_id=str(r.talent_id),
            distance=float(r.value),
            threshold=float(r.threshold),
            passed=r.passed,
            similarity=r.detail.get("similarity"),
            face_index=r.face_index,
        )
        for r in records
        if r.kind == "identity"
    )
    adherence = {
        r.kind: AdherenceEntry(error=float(r.value), threshold=float(r.threshold), passed=r.passed,
                               unit="deg")
        for r in records
        if r.kind in ("lighting", "camera")
    }
    return ScoresAssertion(
        encoder=f"{enc.name} {enc.version}",
        identity=identity,
        lighting=adherence.get("lighting"),
        camera=adherence.get("camera"),
    )


# ---- the flows -------------------------------------------------------------------------------


@contextlib.contextmanager
def request_lock(runtime, request_id: uuid.UUID):
    """One fulfilment of a request at a time, across processes. A session-level advisory lock
    dies with its connection, so a crashed run never blocks its resume."""
    with runtime.engine.connect() as conn:
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": f"request:{request_id}"}
        ).scalar()
        conn.commit()
        if not got:
            raise CastkeepError(
                f"request {request_id} is being fulfilled by another process; wait for it to "
                "finish, then `castkeep request show` it"
            )
        try:
            yield
        finally:
            # A dropped connection took the lock with it; its error is not the run's outcome.
            with contextlib.suppress(DatabaseError, DBAPIError):
                conn.execute(
                    text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": f"request:{request_id}"}
                )
                conn.commit()


def _current_flow_run_id() -> str | None:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx and ctx.flow_run else None


def _dispatch_remote(p: Prepared, pending: list[int]) -> None:
    """Run pending variants as `fulfil-variant` deployment runs on the GPU work pool."""
    from prefect.deployments import run_deployment
    from prefect.flow_runs import wait_for_flow_run

    from prefect.exceptions import ObjectNotFound

    from castkeep.errors import ConfigurationError

    try:
        runs = [
            run_deployment(
                VARIANT_DEPLOYMENT,
                parameters={"request_id": str(p.request_id), "variant": v},
                timeout=0,
                as_subflow=True,
            )
            for v in pending
        ]
    except ObjectNotFound:
        raise ConfigurationError(
            f"CASTKEEP_PREFECT__GPU_WORK_POOL is set but the Prefect API has no deployment "
            f"{VARIANT_DEPLOYMENT!r} (flows/fulfil_request.py:fulfil_variant on the "
            f"{p.settings.prefect.gpu_work_pool!r} pool): deploy it, or unset the setting to "
            "run variants in this process"
        ) from None
    failed = []
    for v, run in zip(pending, runs):
        final = wait_for_flow_run(run.id, timeout=24 * 3600, poll_interval=2)
        if not final.state or not final.state.is_completed():
            failed.append(v)
    if failed:
        recheck_consent(p)  # a revocation stops the variants: the request is refused, not failed
        raise CastkeepError(
            f"variants {failed} failed on work pool {p.settings.prefect.gpu_work_pool}; "
            f"`castkeep request resume {p.request_id}` retries them"
        )


@flow(name="fulfil-request", persist_result=False, validate_parameters=True)
def fulfil_request(request_id: str) -> dict[str, Any]:
    """Fulfil (or resume) a catalogued request. Returns the request summary (see `summarise`)."""
    logger = get_run_logger()
    settings = get_settings()
    from castkeep.flows.runtime import open_runtime

    rid = parse_id(request_id)
    runtime = open_runtime(settings)
    stats = RunStats()
    try:
        with request_lock(runtime, rid), request_status.failed_unless_finished(
            runtime, rid, actor=settings.acting_user, logger=logger
        ):
            with runtime.sessions() as session:
                row = assets_repo.get_request(session, rid)
                status, spec_doc = row.status, dict(row.spec)
            if request_status.is_final(status):
                logger.info("request %s is already %s", rid, status)
                return summarise(runtime, settings, rid)
            spec = RequestSpec.model_validate(spec_doc)
            actor = settings.acting_user
            with stats.stage("db"), runtime.sessions.begin() as session:
                assets_repo.set_request_status(session, rid, RequestStatus.RUNNING, actor=actor)
                assets_repo.set_flow_run(session, rid, _current_flow_run_id())
            try:
                p = prepare(runtime, settings, rid, spec, stats)
            except Refused as refused:
                request_status.set_status(runtime, rid, RequestStatus.REFUSED, actor=actor,
                                          refusals=refused.refusals, detail={"gate": refused.kind})
                logger.warning("request %s refused: %s", rid, "; ".join(refused.refusals))
                publish_report(runtime, rid)
                return summarise(runtime, settings, rid)

            with stats.stage("orchestration"):
                if settings.prefect.gpu_work_pool:
                    ensure_gpu_limit(settings.prefect.gpu_concurrency)
                with runtime.sessions() as session:
                    progress = assets_repo.variant_progress(session, rid)
            pending = [v for v in range(spec.variants) if v not in progress.finished]
            logger.info("request %s: %d variant(s) to make, %d already done", rid, len(pending),
                        spec.variants - len(pending))
            try:
                if settings.prefect.gpu_work_pool and pending:
                    _dispatch_remote(p, pending)
                elif pending:
                    # In process (the embedded default) the run holds one machine-wide `gpu`
                    # slot (a file lock: freed by the kernel if this process dies) for all its
                    # variants. Workers of a `gpu` pool take the Prefect limit instead.
                    t0 = time.perf_counter()
                    with local_gpu_slot(Path(settings.home) / "locks",
                                        settings.prefect.gpu_concurrency):
                        stats.add("gpu_wait", time.perf_counter() - t0)
                        for v in pending:
                            run_variant(p, v, progress.next_attempt.get(v, 0), limit=None)
            except Refused as refused:
                request_status.set_status(runtime, rid, RequestStatus.REFUSED, actor=actor,
                                          refusals=refused.refusals,
                                          detail={"gate": refused.kind, "at": "generation"})
                logger.warning("request %s stopped: %s", rid, "; ".join(refused.refusals))
                publish_report(runtime, rid)
                return summarise(runtime, settings, rid)
            finish(runtime, rid, spec, actor=actor)
            with stats.stage("report"):
                publish_report(runtime, rid)
            result = summarise(runtime, settings, rid)
            result["stats"] = {"stages": stats.stages, "variants": stats.variants,
                               "attempts": stats.attempts}
            return result
    finally:
        close = getattr(runtime, "close", None)
        if callable(close):
            close()


def finish(runtime, rid: uuid.UUID, spec: RequestSpec, *, actor: str) -> None:
    """Step 7: publish passing variants at once, or wait for a reviewer. Consent is checked again
    in the publishing transaction, with the consent rows locked against a concurrent revocation."""
    with runtime.sessions.begin() as session:
        if spec.approval_required:
            assets_repo.set_request_status(session, rid, RequestStatus.AWAITING_APPROVAL,
                                           actor=actor)
            return
        views = assets_repo.request_assets(session, rid)
        check = check_consent_for_publish(
            session, list(spec.talents), use_of(spec), spec.publish_date,
            [a.id for a in views],
        )
        if not check.allowed:
            assets_repo.set_request_status(session, rid, RequestStatus.REFUSED, actor=actor,
                                           refusals=list(check.refusals),
                                           detail={"gate": "consent", "at": "publish"})
            return
        # Re-read under the locks: a cascade that committed first has quarantined some.
        ids = [a.id for a in assets_repo.request_assets(session, rid)
               if a.status == AssetStatus.CANDIDATE]
        assets_repo.set_asset_status(session, ids, AssetStatus.APPROVED, actor=actor,
                                     reason="approval not required by the request")
        assets_repo.set_asset_status(session, ids, AssetStatus.PUBLISHED, actor=actor)
        assets_repo.set_request_status(session, rid, RequestStatus.COMPLETED, actor=actor)


@flow(name="fulfil-variant", persist_result=False, validate_parameters=True)
def fulfil_variant(request_id: str, variant: int) -> str:
    """One variant of a running request (what a GPU worker runs when requests are scaled out).
    Idempotent: a finished variant returns its asset id without recomputing."""
    settings = get_settings()
    from castkeep.flows.runtime import open_runtime

    rid = parse_id(request_id)
    runtime = open_runtime(settings)
    try:
        with runtime.sessions() as session:
            spec = RequestSpec.model_validate(dict(assets_repo.get_request(session, rid).spec))
            progress = assets_repo.variant_progress(session, rid)
        if variant in progress.finished:
            return str(progress.finished[variant])
        try:
            p = prepare(runtime, settings, rid, spec, RunStats())
        except Refused as refused:
            cls = ConsentError if refused.kind == "consent" else LicenceError
            raise cls("; ".join(refused.refusals)) from None
        return str(run_variant(p, variant, progress.next_attempt.get(variant, 0)))
    finally:
        close = getattr(runtime, "close", None)
        if callable(close):
            close()


def summarise(runtime, settings: Settings, rid: uuid.UUID) -> dict[str, Any]:
    """{"request_id", "status", "assets": [{"id","path","passed","status","scores"}], "refusals",
    "contact_sheet"}"""
    from castkeep.tasks.report import report_keys

    with runtime.sessions() as session:
        view = assets_repo.request_view(session, rid)
        keys = report_keys(session, rid) or {}
    sheet_key = keys.get("contact_sheet")
    return {
        "request_id": view.id,
        "status": view.status,
        "campaign": view.campaign,
        "assets": [
            {
                "id": a.id,
                "variant": a.variant,
                "path": object_location(runtime.store, a.object_key),
                "passed": a.passed,
                "status": a.status,
                "reason": a.status_reason,
                "scores": a.scores_summary(),
            }
            for a in view.assets
        ],
        "refusals": list(view.refusals),
        "rejected_attempts": view.rejected_attempts,
        "contact_sheet": object_location(runtime.store, sheet_key) if sheet_key else None,
    }
