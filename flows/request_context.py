"""What a request run needs from settings, read once at the flow's entry and passed down:
engine and encoder construction options, licence ids, the signer, and the gates' outcome.

A process keeps its engine, encoder and signer between variants and requests (see tasks/).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from castkeep.db.object_store import object_location  # noqa: F401 (flows use rc.object_location)
from castkeep.flows.settings import Settings
from castkeep.models.request_spec import RequestSpec
from castkeep.provenance.policy import Use

LICENCE_SETTINGS = {
    "qwen-image-edit": "CASTKEEP_ENGINES__QWEN_LICENCE_ID",
    "insightface": "CASTKEEP_FACES__INSIGHTFACE_LICENCE_ID",
}
# Engines that transform the photograph itself (relight, reframe, montage); every other engine
# synthesises a new image of the person, which needs the consent's synthetic-likeness grant.
PHOTOGRAPHIC_ENGINES = frozenset({"classical"})


def engine_construct_options(engine: str, settings: Settings) -> dict[str, Any]:
    """Constructor options for an engine, from settings (weights by local path only)."""
    if engine == "qwen-image-edit":
        e = settings.engines
        return {
            "model_dir": str(e.qwen_model_dir) if e.qwen_model_dir else None,
            "lora_dir": str(e.lora_dir) if e.lora_dir else None,
            "cpu_offload": e.cpu_offload,
            "licence_id": e.qwen_licence_id,
        }
    return {}


def scoring_encoder(settings: Settings, *, load: bool = True):
    """The configured identity encoder, one instance per process."""
    from castkeep.flows.face_encoder import configured_encoder

    return configured_encoder(settings.faces, load=load)


def licence_ids(settings: Settings, engine: str, encoder_name: str) -> dict[str, str | None]:
    ids: dict[str, str | None] = {}
    if engine == "qwen-image-edit":
        ids[engine] = settings.engines.qwen_licence_id
    if encoder_name.startswith("insightface"):
        ids[encoder_name] = settings.faces.insightface_licence_id
    return ids


def licence_setting_names(engine: str, encoder_name: str) -> dict[str, str]:
    names = {}
    if engine in LICENCE_SETTINGS:
        names[engine] = LICENCE_SETTINGS[engine]
    if encoder_name.startswith("insightface"):
        names[encoder_name] = LICENCE_SETTINGS["insightface"]
    return names


def use_of(spec: RequestSpec) -> Use:
    return Use(
        channel=spec.channel,
        territory=spec.territory,
        purpose=spec.purpose,
        edits=spec.edit_kinds(),
        synthetic_likeness=spec.engine not in PHOTOGRAPHIC_ENGINES,
    )


def use_record(spec: RequestSpec) -> dict[str, Any]:
    """The use an asset was made for, as the catalogue records it (audits re-check it)."""
    return {
        "channel": spec.channel,
        "territory": spec.territory,
        "purpose": spec.purpose,
        "edits": list(spec.edit_kinds()),
        "synthetic_likeness": spec.engine not in PHOTOGRAPHIC_ENGINES,
        "publish_date": spec.publish_date.isoformat(),
    }


_SIGNERS: dict[tuple, Any] = {}
_SIGNERS_LOCK = threading.Lock()


def signer_from_settings(settings: Settings):
    """The configured signer (certificate + key files, else the development CA), per process."""
    from castkeep.provenance.signing import make_signer, resolve_signer_config

    s = settings.signing
    config = resolve_signer_config(
        keys_dir=Path(settings.home) / "keys",
        cert_chain=s.cert_chain,
        private_key=s.private_key,
        algorithm=s.algorithm,
        tsa_url=s.tsa_url,
    )
    key = (str(config.chain_path), str(config.key_path), config.algorithm, config.tsa_url)
    with _SIGNERS_LOCK:
        signer = _SIGNERS.get(key)
        if signer is None:
            signer = make_signer(config)
            _SIGNERS[key] = signer
        return signer


def load_request_file(path: Path | str, settings: Settings) -> RequestSpec:
    """Read and check a request file: its fields (with the defaults from settings), then what
    check_request checks. Light to import, so a bad file is refused before Prefect loads."""
    from castkeep.models.request_spec import load_request

    spec = load_request(
        path,
        default_engine=settings.engines.default,
        default_thresholds=settings.thresholds.model_dump(),
    )
    check_request(spec, settings)
    return spec


def check_request(spec: RequestSpec, settings: Settings) -> None:
    """Everything about a request that can be checked before it is catalogued: the engine's
    name, settings and options, and the signing identity. Consent and licences are the flow's
    gates (a refusal is an outcome recorded on the request, not an input error)."""
    from castkeep.tasks.generate import check_engine_request

    check_engine_request(
        spec.engine, engine_construct_options(spec.engine, settings), dict(spec.engine_options),
        spec.scene,
    )
    signer_from_settings(settings)


@contextlib.contextmanager
def failed_unless_finished(runtime, request_id: uuid.UUID, *, actor: str, logger):
    """A run that ends in an error (or Ctrl-C) leaves its request `failed` with the error as its
    reason, resumable, never `running`. A run that recorded its own outcome (refused, failed)
    keeps it. With the database down nothing can be recorded: the row stays `running` and
    `castkeep request resume` continues it (a resume accepts a `running` request)."""
    try:
        yield
    except (Exception, KeyboardInterrupt) as exc:
        _mark_failed(runtime, request_id, exc, actor=actor, logger=logger)
        raise


def _mark_failed(runtime, request_id: uuid.UUID, exc: BaseException, *, actor: str, logger) -> None:
    from castkeep.db import assets_repo
    from castkeep.errors import CastkeepError, NotFoundError

    reason = str(exc) if isinstance(exc, CastkeepError) else f"{type(exc).__name__}: {exc}"
    try:
        with runtime.sessions.begin() as session:
            if assets_repo.get_request(session, request_id, lock=True).status != "running":
                return
            assets_repo.set_request_status(session, request_id, "failed", actor=actor,
                                           refusals=[reason])
    except NotFoundError:
        return
    except Exception as mark_exc:  # noqa: BLE001 - the run's own error is the one to report
        logger.warning("request %s could not be marked failed (%s); `castkeep request resume %s` "
                       "continues it", request_id, mark_exc, request_id)


def trust_anchors(settings: Settings) -> list[Path]:
    from castkeep.provenance.signing import resolve_trust_anchors

    return resolve_trust_anchors(
        keys_dir=Path(settings.home) / "keys", configured=settings.signing.trust_anchors
    )


@dataclass
class RunStats:
    """Seconds per stage, summed over a request run (the overhead benchmark reads it)."""

    stages: dict[str, float] = field(default_factory=dict)
    variants: int = 0
    attempts: int = 0

    def add(self, stage: str, seconds: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + float(seconds)


def parse_request_id(value: str | uuid.UUID) -> uuid.UUID:
    from castkeep.errors import NotFoundError

    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip())
    except ValueError:
        raise NotFoundError(f"{value!r} is not a request id (a UUID)") from None


def patient_prefect(seconds: int = 120):
    """Give Prefect's embedded API longer to start than its 20 s default (a first start on a
    busy 2-core machine migrates its database and can take longer). An explicit
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS wins."""
    import contextlib
    import os

    if "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in os.environ:
        return contextlib.nullcontext()
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    return temporary_settings(updates={PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: seconds})
