"""Settings -> the objects castkeep works with, in one place: the edit engine's construction
options, the face encoder, the signer, the trust anchors and the licence ids. Everything below
flows/ receives these objects and never reads settings.

    components = build_components(settings, spec.engine)
    components.encoder.load(); components.signer; components.trust_anchors

Loaded things (engines, encoders, signers) live in the process's ModelCache (models/cache.py),
so a worker loads each once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from castkeep.flows.settings import FacesSettings, Settings
from castkeep.vocab import EngineName

if TYPE_CHECKING:
    from castkeep.models.faces.face_types import EncoderInfo

INSIGHTFACE = "insightface"
# The setting that holds each licence id (named in refusals and errors).
LICENCE_SETTINGS = {
    EngineName.QWEN_IMAGE_EDIT.value: "CASTKEEP_ENGINES__QWEN_LICENCE_ID",
    INSIGHTFACE: "CASTKEEP_FACES__INSIGHTFACE_LICENCE_ID",
}


@dataclass(frozen=True)
class Components:
    """What one request (or audit, or edit) uses, built from settings."""

    engine_name: str
    engine_options: dict[str, Any]  # construction options (weights by local path)
    encoder_name: str
    encoder_options: dict[str, Any]
    licence_ids: dict[str, str | None]
    licence_settings: dict[str, str]  # model name -> CASTKEEP_ setting of its licence id
    keys_dir: Path
    signing: Any = field(repr=False)  # the settings' signing section
    configured_trust_anchors: tuple[str, ...] = ()

    @property
    def encoder(self):
        """The identity encoder (shared per process; call .load() before predicting)."""
        from castkeep.models.faces.encoders import shared_encoder

        return shared_encoder(self.encoder_name, **self.encoder_options)

    def licence_id(self, model_name: str) -> str | None:
        return self.licence_ids.get(model_name)

    @functools.cached_property
    def signer_config(self):
        from castkeep.provenance.signing import resolve_signer_config

        s = self.signing
        return resolve_signer_config(keys_dir=self.keys_dir, cert_chain=s.cert_chain,
                                     private_key=s.private_key, algorithm=s.algorithm,
                                     tsa_url=s.tsa_url)

    @property
    def signer(self):
        """The configured signer (certificate + key files, else the development CA)."""
        from castkeep.models.cache import models
        from castkeep.provenance.signing import make_signer

        config = self.signer_config
        key = {"chain": config.chain_path, "key": config.key_path, "alg": config.algorithm,
               "tsa": config.tsa_url}
        return models.get("signer", "c2pa", key, lambda: make_signer(config))

    @functools.cached_property
    def trust_anchors(self) -> list[Path]:
        from castkeep.provenance.signing import resolve_trust_anchors

        return resolve_trust_anchors(keys_dir=self.keys_dir,
                                     configured=[Path(p) for p in self.configured_trust_anchors])


def build_components(settings: Settings, engine_name: str | None = None, *,
                     encoder_name: str | None = None) -> Components:
    """Components for `engine_name` (default: CASTKEEP_ENGINES__DEFAULT) and the configured
    encoder (or `encoder_name`, e.g. a stored encoder name from the catalogue)."""
    engine = engine_name or settings.engines.default
    encoder = encoder_name or settings.faces.encoder
    return Components(
        engine_name=engine,
        engine_options=engine_construct_options(engine, settings),
        encoder_name=encoder,
        encoder_options=encoder_options(settings.faces, encoder, home=settings.home),
        licence_ids=licence_ids(settings, engine, encoder),
        licence_settings=licence_setting_names(engine, encoder),
        keys_dir=Path(settings.home) / "keys",
        signing=settings.signing,
        configured_trust_anchors=tuple(str(p) for p in settings.signing.trust_anchors or ()),
    )


def engine_construct_options(engine: str, settings: Settings) -> dict[str, Any]:
    """Constructor options for an engine, from settings (weights by local path only)."""
    if engine == EngineName.QWEN_IMAGE_EDIT:
        e = settings.engines
        return {
            "model_dir": str(e.qwen_model_dir) if e.qwen_model_dir else None,
            "lora_dir": str(e.lora_dir) if e.lora_dir else None,
            "cpu_offload": e.cpu_offload,
            "licence_id": e.qwen_licence_id,
        }
    return {}


def encoder_options(faces: FacesSettings, name: str | None = None, *,
                    home: Path | None = None) -> dict[str, Any]:
    """Constructor options for encoder `name` (default: CASTKEEP_FACES__ENCODER). A stored name
    such as "insightface-buffalo_l" carries its own pack, so the pack setting is not passed (the
    registry refuses a pack that disagrees with the name); the model folder, licence id and
    detection size still come from settings. An unknown name gets no options; the registry then
    names the known encoders. With `home` (the data dir), dlib keeps its ResNet converted to
    ONNX under <home>/models."""
    name = name or faces.encoder
    if name == "dlib-resnet-v1":
        dlib_options: dict[str, Any] = {"max_side": faces.detect_max_side}
        if home is not None:
            dlib_options["cache_dir"] = str(Path(home) / "models")
        return dlib_options
    if name == INSIGHTFACE or name.startswith(INSIGHTFACE + "-"):
        options: dict[str, Any] = {
            "root": faces.insightface_root,
            "licence_id": faces.insightface_licence_id,
            "max_side": faces.detect_max_side,
        }
        if name == INSIGHTFACE:
            options["pack"] = faces.insightface_pack
        return options
    return {}


def configured_encoder(faces: FacesSettings, *, name: str | None = None, load: bool = True,
                       home: Path | None = None):
    """The encoder, one instance per process and options (weights load once)."""
    from castkeep.models.faces.encoders import shared_encoder

    name = name or faces.encoder
    encoder = shared_encoder(name, **encoder_options(faces, name, home=home))
    if load:
        encoder.load()
    return encoder


def encoder_profile(faces: FacesSettings, name: str | None = None) -> EncoderInfo:
    """Name, version, metric and same-person threshold of the encoder (what audit and revocation
    compare faces with). insightface reads these from its pack, so the pack folder must exist."""
    from castkeep.tasks.audit import encoder_profile as profile_of

    name = name or faces.encoder
    return profile_of(name, **encoder_options(faces, name))


def licence_ids(settings: Settings, engine: str, encoder_name: str) -> dict[str, str | None]:
    ids: dict[str, str | None] = {}
    if engine == EngineName.QWEN_IMAGE_EDIT:
        ids[engine] = settings.engines.qwen_licence_id
    if encoder_name.startswith(INSIGHTFACE):
        ids[encoder_name] = settings.faces.insightface_licence_id
    return ids


def licence_setting_names(engine: str, encoder_name: str) -> dict[str, str]:
    names = {}
    if engine in LICENCE_SETTINGS:
        names[engine] = LICENCE_SETTINGS[engine]
    if encoder_name.startswith(INSIGHTFACE):
        names[encoder_name] = LICENCE_SETTINGS[INSIGHTFACE]
    return names


def request_defaults(settings: Settings) -> dict[str, Any]:
    """What settings fill in where a request leaves it out: the engine and the thresholds."""
    return {"default_engine": settings.engines.default,
            "default_thresholds": settings.thresholds.model_dump()}


def load_request_file(path: Path | str, settings: Settings):
    """Read and check a request file: its fields (with the defaults from settings), then what
    check_request checks. Light to import, so a bad file is refused before Prefect loads."""
    from castkeep.models.request_spec import load_request

    spec = load_request(path, **request_defaults(settings))
    check_request(spec, settings)
    return spec


def request_from_document(doc: dict[str, Any], settings: Settings):
    """A request document (the parsed JSON of a request file, e.g. an API body) -> RequestSpec,
    with the same defaults and checks as a request file."""
    from castkeep.models.request_spec import request_from_mapping

    spec = request_from_mapping(doc, **request_defaults(settings))
    check_request(spec, settings)
    return spec


def check_request(spec, settings: Settings) -> None:
    """Everything about a request that can be checked before it is catalogued: the engine's
    name, settings and options, and the signing identity. Consent and licences are the flow's
    gates (a refusal is an outcome recorded on the request, not an input error)."""
    from castkeep.tasks.generate import check_engine_request

    components = build_components(settings, spec.engine)
    check_engine_request(
        spec.engine, components.engine_options, dict(spec.engine_options), spec.scene
    )
    components.signer  # noqa: B018 - builds (and keeps) the signer: a missing key fails here
