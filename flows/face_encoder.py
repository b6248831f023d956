"""The face encoder as configured (CASTKEEP_FACES__*), built the same way by every caller: ingest,
request scoring, `castkeep faces`, `castkeep edit`, audit and revocation.

`name` may be the configured encoder or a stored encoder name from the catalogue such as
"insightface-buffalo_l": that name carries its own pack, so the CASTKEEP_FACES__INSIGHTFACE_PACK
setting is not passed (get_encoder refuses a pack that disagrees with the name), while the model
folder, licence id and detection size still come from settings.
"""

from __future__ import annotations

from typing import Any

from castkeep.flows.settings import FacesSettings, get_settings

INSIGHTFACE = "insightface"


def encoder_options(faces: FacesSettings | None = None, name: str | None = None) -> dict[str, Any]:
    """Constructor options for encoder `name` (default: CASTKEEP_FACES__ENCODER) from settings.
    An unknown name gets no options; get_encoder then names the known encoders."""
    faces = faces if faces is not None else get_settings().faces
    name = name or faces.encoder
    if name == "dlib-resnet-v1":
        return {"max_side": faces.detect_max_side}
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


def configured_encoder(faces: FacesSettings | None = None, *, name: str | None = None,
                       load: bool = True) -> Any:
    """The encoder, one instance per process and options (weights load once)."""
    from castkeep.models.encoders import shared_encoder

    faces = faces if faces is not None else get_settings().faces
    name = name or faces.encoder
    encoder = shared_encoder(name, **encoder_options(faces, name))
    if load:
        encoder.load()
    return encoder


def encoder_profile(faces: FacesSettings | None = None, name: str | None = None) -> dict[str, Any]:
    """Name, version, metric and same-person threshold of the encoder (what audit and revocation
    compare faces with). insightface reads these from its pack, so the pack folder must exist."""
    from castkeep.tasks.audit import encoder_profile as profile_of

    faces = faces if faces is not None else get_settings().faces
    name = name or faces.encoder
    return profile_of(name, **encoder_options(faces, name))
