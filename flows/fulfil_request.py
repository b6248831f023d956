"""Flow: fulfil one asset request.

    1 consent gate for every talent at the publish date (refusal before any model runs)
    2 licence gate for the engine and the identity encoder
    3 reference selection (best portrait per talent under an allowing consent)
    4 generation per variant (seeded, under the `gpu` concurrency limit, transient retries);
      in this process the next variant's engine call runs while the previous variant goes
      through 5 and 6 (see below)
    5 scoring (identity per talent, extra faces, lighting, camera, quality); a variant below a
      threshold is retried with a new seed, then catalogued as rejected with its scores
    6 signing (C2PA with consent + score assertions), storage, rows in one transaction per asset
    7 approval: with `approval_required` the request ends `awaiting_approval` and
      `castkeep approve` publishes the chosen assets (flows/approve.py); else passing assets are
      published at once
    8 artifacts: contact sheet PNG (stored under reports/) and a score table

Steps 4-6 of one variant are one Prefect task run (`run_variant`). In this process two variants'
task runs are in flight at once (`run_pipelined`), so the engine is kept busy: while variant v is
scored, signed and catalogued (CPU work), variant v+1's engine call runs; on a GPU the device no
longer idles through each variant's post-processing. Engine calls stay one at a time (the
process's engine turn, tasks/generate.run_engine), each after a last consent check made once the
turn is taken. A refusal or an error starts no further variant: the one in flight is finished,
then the request ends as it would have. Variants may finish out of order; each is catalogued
under its own number.

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
import itertools
import queue
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from castkeep.flows.flow_type import flow
from castkeep.db import assets_repo
from castkeep.db.ids import parse_id
from castkeep.errors import CastkeepError, ConsentError, DatabaseError, LicenceError, Refused
from castkeep.flows import request_status
from castkeep.flows.components import (
    build_components,
    check_request,
    licence_ids,
    licence_setting_names,
)
from castkeep.flows.settings import Settings, get_settings
from castkeep.models.request_spec import RequestSpec
from castkeep.progress import report as report_progress
from castkeep.provenance.policy import use_of
from castkeep.tasks.consent_gate import (
    ModelLicence,
    check_consent,
    check_consent_for_publish,
    check_licences,
)
from castkeep.tasks.generate import GPU_LIMIT, engine_info, ensure_gpu_limit, local_gpu_slot
from castkeep.tasks.references import select_references
from castkeep.tasks.sign import RightsConfig
from castkeep.tasks.report import publish_report
from castkeep.tasks.retry import retry_unless_user_error
from castkeep.tasks.run_stats import RunStats
from castkeep.tasks.variant import Prepared, recheck_consent, run_variant
from castkeep.vocab import AssetStatus, RequestStatus

VARIANT_DEPLOYMENT = "fulfil-variant/fulfil-variant"

# The request's steps as Prefect task runs (in-process objects as arguments: never cached).
consent_gate_task = task(name="consent-gate", cache_policy=NO_CACHE,
                         persist_result=False)(check_consent)
licence_gate_task = task(name="licence-gate", cache_policy=NO_CACHE,
                         persist_result=False)(check_licences)
select_references_task = task(name="select-references", cache_policy=NO_CACHE,
                              persist_result=False)(select_references)
# One task run per variant; its sub-steps (generate, score, sign, catalogue) are plain calls.
# A retry is safe: run_variant continues after the variant's last recorded attempt.
variant_task = task(name="variant", cache_policy=NO_CACHE, persist_result=False, retries=2,
                    retry_delay_seconds=1, retry_condition_fn=retry_unless_user_error,
                    task_run_name="variant-{variant}")(run_variant)


# ---- submitting ------------------------------------------------------------------------------


def submit_request(runtime, spec: RequestSpec, *, actor: str, team: str | None = None) -> uuid.UUID:
    """Catalogue a validated request (status received) submitted by `actor` (of `team`, through
    the API); the flow then fulfils it by id. A request the engine or the signer cannot serve is
    refused here, before it has a row."""
    check_request(spec, runtime.settings)
    with runtime.sessions.begin() as session:
        row = assets_repo.create_request(
            session, spec=spec.canonical(), spec_sha256=spec.sha256(), actor=actor, team=team
        )
        return row.id


# ---- context ---------------------------------------------------------------------------------


def rights_config(settings: Settings) -> RightsConfig:
    """The signing settings that shape a public file (consent detail, creator, credit, rights URL)."""
    s = settings.signing
    return RightsConfig(consent_detail=s.consent_detail, creator=s.creator, credit=s.credit,
                        rights_url=s.rights_url)


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
        rights=rights_config(settings),
    )


def run_timed(p: Prepared, variant: int, *, limit: str | None) -> uuid.UUID:
    """The variant task; the time it takes beyond its timed sub-steps is orchestration."""
    t0 = time.perf_counter()
    try:
        # quote: Prefect would otherwise walk the whole Prepared graph (spec, references,
        # arrays) looking for futures to resolve, on every variant; it holds none.
        return variant_task(quote(p), variant, limit=limit)
    finally:
        p.stats.add("orchestration", time.perf_counter() - t0 - p.stats.take_timed(variant))


# Variants in flight at once in this process: one in the engine, one in post-processing.
IN_FLIGHT = 2


def run_pipelined(p: Prepared, pending: list[int],
                  on_done: Callable[[int], None] | None = None) -> None:
    """Run the `pending` variants as task runs of this flow run, IN_FLIGHT at a time, on a
    thread pool of this process (whatever task runner the flow has: the engine is this
    process's), so that one variant's engine call overlaps the previous one's scoring, signing
    and cataloguing. `on_done(variant)` after each finished variant, in the order they finish.

    After a failure no variant is started; the ones in flight are waited for (not abandoned),
    then the failure is raised: Refused when any variant was refused (a revoked consent ends
    the request refused, whatever else failed meanwhile), else the first error."""
    from prefect.task_runners import ThreadPoolTaskRunner

    finished: queue.SimpleQueue = queue.SimpleQueue()
    in_flight: dict[Any, tuple[int, float]] = {}
    todo = iter(pending)
    failures: list[BaseException] = []

    def submit(runner, variant: int) -> None:
        t0 = time.perf_counter()
        # quote: see run_timed.
        future = runner.submit(variant_task, {"p": quote(p), "variant": variant, "limit": None})
        in_flight[future] = (variant, t0)
        future.add_done_callback(lambda f: finished.put((f, time.perf_counter())))

    with ThreadPoolTaskRunner(max_workers=IN_FLIGHT) as runner:
        for variant in itertools.islice(todo, IN_FLIGHT):
            submit(runner, variant)
        while in_flight:
            future, t_done = finished.get()
            variant, t0 = in_flight.pop(future)
            p.stats.add("orchestration", t_done - t0 - p.stats.take_timed(variant))
            try:
                future.result()
            except BaseException as exc:  # noqa: BLE001 - raised below, once nothing runs
                failures.append(exc)
                continue
            if on_done is not None:
                on_done(variant)
            if not failures:
                for nxt in itertools.islice(todo, 1):
                    submit(runner, nxt)
    if failures:
        raise next((f for f in failures if isinstance(f, Refused)), failures[0])


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


def _dispatch_remote(p: Prepared, pending: list[int], pool: str) -> None:
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
            f"{VARIANT_DEPLOYMENT!r} (castkeep.flows.fulfil_request:fulfil_variant on the "
            f"{pool!r} pool): deploy it, or unset the setting to "
            "run variants in this process"
        ) from None
    failed = []
    total = p.spec.variants
    for i, (v, run) in enumerate(zip(pending, runs)):
        final = wait_for_flow_run(run.id, timeout=24 * 3600, poll_interval=2)
        if not final.state or not final.state.is_completed():
            failed.append(v)
        report_progress("variants", total - len(pending) + i + 1, total)
    if failed:
        recheck_consent(p)  # a revocation stops the variants: the request is refused, not failed
        raise CastkeepError(
            f"variants {failed} failed on work pool {pool}; "
            f"`castkeep request resume {p.request_id}` retries them"
        )


@flow(name="fulfil-request", persist_result=False, validate_parameters=True)
def fulfil_request(request_id: str, actor: str | None = None) -> dict[str, Any]:
    """Fulfil (or resume) a catalogued request. Returns the request summary (see `summarise`).
    `actor`: who the run acts for in the audit log (the API's signed-in user); default the
    acting user of the settings (the CLI's OS user)."""
    t_body = time.perf_counter()  # the flow function's own time (stats: body_s)
    logger = get_run_logger()
    settings = get_settings()
    if actor:
        settings = settings.model_copy(update={"actor": actor})
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
            _report_variants(stats, spec.variants - len(pending), spec.variants)
            try:
                if settings.prefect.gpu_work_pool and pending:
                    _dispatch_remote(p, pending, settings.prefect.gpu_work_pool)
                elif pending:
                    # In process (the embedded default) the run holds one machine-wide `gpu`
                    # slot (a file lock: freed by the kernel if this process dies) for all its
                    # variants. Workers of a `gpu` pool take the Prefect limit instead.
                    t0 = time.perf_counter()
                    with local_gpu_slot(Path(settings.home) / "locks",
                                        settings.prefect.gpu_concurrency):
                        stats.add("gpu_wait", time.perf_counter() - t0)
                        done = [spec.variants - len(pending)]

                        def one_done(_variant: int) -> None:
                            done[0] += 1
                            _report_variants(stats, done[0], spec.variants)

                        run_pipelined(p, pending, on_done=one_done)
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
            snap = stats.snapshot()
            result["stats"] = {"stages": snap["stages"], "cpu": snap["cpu"],
                               "variants": snap["variants"], "attempts": snap["attempts"],
                               "body_s": time.perf_counter() - t_body}
            return result
    finally:
        close = getattr(runtime, "close", None)
        if callable(close):
            close()


def _report_variants(stats: RunStats, done: int, total: int) -> None:
    """Variants done of the request's total, with this run's outcomes (castkeep.progress)."""
    report_progress("variants", done, total, passed=stats.passed, rejected=stats.rejected,
                    retries=stats.retries)


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
        return str(run_timed(p, variant, limit=GPU_LIMIT))
    finally:
        close = getattr(runtime, "close", None)
        if callable(close):
            close()


def summarise(runtime, settings: Settings, rid: uuid.UUID) -> dict[str, Any]:
    """The request document (tasks/catalogue_views.request_summary): the same one
    `castkeep request show --json` prints."""
    from castkeep.tasks.catalogue_views import request_summary

    with runtime.sessions() as session:
        return request_summary(session, runtime.store, rid)
