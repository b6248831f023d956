"""One variant of a request: generate, score (and retry with a new seed below a threshold),
then sign, store and catalogue the final attempt. Plain, timed sub-steps; the request flow runs
a variant as one Prefect task run (flows/fulfil_request.py)."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from castkeep.db import assets_repo
from castkeep.db.assets_repo import GenerationRecord
from castkeep.errors import Refused
from castkeep.models.engines.base import EditInput
from castkeep.models.request_spec import RequestSpec
from castkeep.models.scoring.variant import jsonable, score_variant
from castkeep.provenance.policy import use_of, use_record
from castkeep.tasks.consent_gate import TalentClearance, check_consent
from castkeep.tasks.generate import GPU_LIMIT, run_engine
from castkeep.tasks.references import ReferenceSet
from castkeep.tasks.report import keep_thumbnail
from castkeep.tasks.run_stats import RunStats
from castkeep.tasks.sign import (
    RightsConfig,
    build_manifest,
    edit_description,
    finish_variant,
    unused_watermark_key_in,
)
from castkeep.vocab import AssetStatus, ScoreKind


@dataclass
class Prepared:
    request_id: uuid.UUID
    spec: RequestSpec
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
    rights: RightsConfig = RightsConfig()  # what the public file says (signing settings)


def run_variant(p: Prepared, variant: int, *, limit: str | None = GPU_LIMIT) -> uuid.UUID:
    """Generate, score and retry one variant; sign, store and catalogue its final attempt.
    Each engine call holds a slot of `limit` (None: the caller already holds one) and this
    process's engine turn (tasks/generate.run_engine), so two variants can run at once in one
    process: one in the engine, the other scored, signed and catalogued.

    Idempotent, so a retry or a resume is safe: a finished variant returns its asset, an
    unfinished one continues after its last recorded attempt. The time of its timed sub-steps
    is noted for the caller (RunStats.note_timed): the rest of the task run's time is
    orchestration."""
    timed0 = p.stats.own_seconds()
    try:
        return _run_variant(p, variant, limit=limit)
    finally:
        p.stats.note_timed(variant, p.stats.own_seconds() - timed0)


def _run_variant(p: Prepared, variant: int, *, limit: str | None) -> uuid.UUID:
    # The progress read (this variant's rows only) and the watermark key of the signed file
    # share one session (one pool checkout and one round trip to end it, instead of two).
    with p.runtime.sessions() as session:
        with p.stats.stage("db"):
            progress = assets_repo.variant_progress(session, p.request_id, variant)
        if variant in progress.finished:
            return progress.finished[variant]
        with p.stats.stage("db"):
            watermark_key = unused_watermark_key_in(session)
    first_attempt = progress.next_attempt.get(variant, 0)
    spec = p.spec
    refs = p.refs.references
    labels = {r.talent_id: c.ref for r, c in zip(refs, p.clearances)}
    consents = [
        next(t for t in c.consents if t.id == r.consent_id) for r, c in zip(refs, p.clearances)
    ]
    last = spec.thresholds.max_retries
    attempt = min(first_attempt, last)
    while True:
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
        # Consent may be revoked while the request runs: checked once the engine is this
        # call's (after any wait for the other variant's engine call), so no engine call starts
        # after a revocation has committed.
        gen = run_engine(spec.engine, p.construct, inp, limit=limit,
                         before=lambda: recheck_consent(p))
        p.stats.add_cpu("engine", gen.cpu_seconds)
        p.stats.add("engine", gen.engine_seconds)
        p.stats.add("gpu_wait", gen.wait_seconds)
        p.stats.add("engine_queue", gen.queue_seconds)
        p.stats.count(attempts=1)

        c0 = time.thread_time()
        scores = score_variant(
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
            # The ratio-against-reference lighting check only where the engine says the output
            # is the reference under a similarity transform.
            preserves_geometry=bool((gen.output.metadata or {}).get("preserves_geometry")),
        )
        p.stats.add_cpu("scoring+identity_model", time.thread_time() - c0)
        p.stats.add("scoring", scores.seconds - scores.detect_seconds)
        p.stats.add("identity_model", scores.detect_seconds)
        # The fine detection pass ran alongside the scorers: time beside the critical path.
        p.stats.add("identity_model_overlapped", scores.overlapped_detect_seconds,
                    alongside=True)
        metadata = jsonable(dict(gen.output.metadata or {}))
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
                "engine_queue_s": round(gen.queue_seconds, 4),
                "score_s": round(scores.seconds, 4),
            },
            licence_id=p.licence_id,
        )
        if not scores.passed and attempt < last:
            with p.stats.stage("db"), p.runtime.sessions.begin() as session:
                assets_repo.record_attempt(session, p.request_id, record, scores.records)
            attempt += 1
            p.stats.count(retries=1)
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
            use=use_record(spec),
            rights=p.rights,
        )
        reason = None if scores.passed else "; ".join(scores.reasons) + (
            f" (after {attempt + 1} attempt(s))"
        )
        c0 = time.thread_time()
        done = finish_variant(
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
            watermark_key=watermark_key,
        )
        p.stats.add_cpu("signing+storage+db", time.thread_time() - c0)
        signed = done.signed
        with p.stats.stage("report"):  # the contact sheet's tile, while the pixels are here
            keep_thumbnail(signed.object_key, gen.output.image)
        p.stats.add("signing", signed.sign_seconds)
        p.stats.add("storage", signed.store_seconds)
        p.stats.add("db", done.db_seconds)
        p.stats.count(variants=1, **{"passed" if scores.passed else "rejected": 1})
        return done.asset_id


def recheck_consent(p: Prepared, session=None) -> None:
    """Raises Refused when a talent's consent no longer covers the request. `session`: an open
    session to read in (default: a new one)."""
    with p.stats.stage("consent"), contextlib.ExitStack() as stack:
        if session is None:
            session = stack.enter_context(p.runtime.sessions())
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
        if r.kind == ScoreKind.IDENTITY
    )
    adherence = {
        r.kind: AdherenceEntry(error=float(r.value), threshold=float(r.threshold), passed=r.passed,
                               unit="deg")
        for r in records
        if r.kind in (ScoreKind.LIGHTING, ScoreKind.CAMERA)
    }
    return ScoresAssertion(
        encoder=f"{enc.name} {enc.version}",
        identity=identity,
        lighting=adherence.get("lighting"),
        camera=adherence.get("camera"),
    )
