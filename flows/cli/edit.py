"""`castkeep edit`: one edit of one or more portraits, with identity and adherence scores.

    castkeep edit PHOTO [PHOTO...] -o OUT --engine classical --light "azimuth=45,fill=0.2" \\
        --camera "roll=30,shot=medium" [--seed N] [--json]

Each photo's largest face is the person; several photos make a group shot. The output face(s)
are detected again and scored: identity (distance to the input face, encoder threshold),
lighting (key azimuth from the relight ratio against the input), camera (roll/yaw/pitch change
and framing). Nothing is catalogued or signed: this is the single-shot tool; requests go
through `castkeep request`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import typer


def _parse_options(items: list[str]) -> dict[str, Any]:
    from castkeep.errors import SpecError

    options: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise SpecError(f"--option {item!r} is not KEY=VALUE (VALUE may be JSON, e.g. steps=8)")
        key, raw = item.split("=", 1)
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    return options


def output_path(out: Path, photos: list[Path], engine: str) -> Path:
    """OUT itself, or OUT/<photo names>-<engine>.jpg when OUT is an existing folder."""
    if not out.is_dir():
        return out
    stems = "-".join(p.stem for p in photos)[:120] or "edit"
    return out / f"{stems}-{engine}.jpg"


def _write_image(rgb, out: Path) -> None:
    from castkeep.models.imaging import encode_image

    fmt = "PNG" if out.suffix.lower() == ".png" else "JPEG"
    data = encode_image(rgb, fmt=fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: a failed write never leaves half an image.
    fd, tmp = tempfile.mkstemp(prefix=".castkeep-", suffix=out.suffix, dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def score_edit(encoder, inputs, faces, output, lighting, camera, thresholds) -> dict[str, Any]:
    """Identity, lighting and camera scores of an edit output against its inputs."""
    from castkeep.models.scoring.adherence import detect_with_roll_hint, score_camera, score_lighting
    from castkeep.models.faces.assign import assign_faces

    found = detect_with_roll_hint(encoder, output, camera.roll if camera else 0.0)
    refs = {str(i): [f.embedding] for i, f in enumerate(faces)}
    assignment = assign_faces(refs, found, encoder.info)
    identity: dict[str, Any] = {
        "encoder": encoder.info.name,
        "threshold": encoder.info.threshold,
        "faces_found": len(found),
        "faces": [],
        "passed": assignment.all_passed,
    }
    lit: dict[str, Any] | None = None
    cam: dict[str, Any] | None = None
    if lighting is not None:
        lit = {"threshold": thresholds.lighting_azimuth_deg, "faces": [], "passed": True}
    if camera is not None:
        cam = {"threshold": thresholds.camera_roll_deg, "faces": [], "passed": True}
    group = len(inputs) > 1
    for i, match in enumerate(assignment.matches):
        identity["faces"].append({"reference": i, "distance": match.distance,
                                  "passed": match.passed})
        if match.face_index is None:
            for part in (lit, cam):
                if part is not None:
                    part["faces"].append({"reference": i, "error": None, "passed": False})
                    part["passed"] = False
            continue
        face = found[match.face_index]
        if lit is not None:
            s = score_lighting(output, face, lighting, reference=inputs[i], reference_face=faces[i],
                               threshold=thresholds.lighting_azimuth_deg)
            lit["faces"].append({"reference": i, "error": s.error, "passed": s.passed, **s.detail})
            lit["passed"] = lit["passed"] and s.passed
        if cam is not None:
            # A montage tile's framing is the montage's, not the shot's: score roll/turns only.
            spec = camera.model_copy(update={"shot": None}) if group else camera
            s = score_camera(output, face, spec, reference_face=faces[i],
                             threshold=thresholds.camera_roll_deg)
            cam["faces"].append({"reference": i, "error": s.error, "passed": s.passed, **s.detail})
            cam["passed"] = cam["passed"] and s.passed
    return {"identity": identity, "lighting": lit, "camera": cam}


def edit(
    photos: list[Path] = typer.Argument(..., help="Reference portrait(s); several make a group shot."),
    out: Path = typer.Option(..., "-o", "--out", help=(
        "Output image (.jpg or .png), or an existing folder to write <photo>-<engine>.jpg in."
    )),
    engine_name: str = typer.Option(None, "--engine", help="Edit engine (default: CASTKEEP_ENGINES__DEFAULT)."),
    light: str = typer.Option(None, "--light", help='Lighting spec, e.g. "azimuth=45,elevation=30,fill=0.2,temp=3200".'),
    camera_text: str = typer.Option(None, "--camera", help='Camera spec, e.g. "roll=30,shot=medium".'),
    scene: str = typer.Option(None, "--scene", help="Scene/background change (generative engines only)."),
    seed: int = typer.Option(0, "--seed", min=0, help=(
        "Random seed: the same seed gives the same image (classical: small light and framing "
        "variations; --option variation=0 turns them off)."
    )),
    option: list[str] = typer.Option([], "--option", help="Engine option KEY=VALUE (repeatable), e.g. steps=8."),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON only."),
) -> None:
    """Edit PHOTO(s) under a lighting/camera spec, write OUT, and score the result."""
    from castkeep.flows.components import build_components
    from castkeep.flows.runtime import load_settings
    from castkeep.models.faces.encoders import select_face
    from castkeep.models.engines.base import EditInput, get_engine
    from castkeep.models.imaging import load_image
    from castkeep.models.specs import parse_camera, parse_lighting

    settings = load_settings()
    lighting = parse_lighting(light) if light else None
    camera = parse_camera(camera_text) if camera_text else None
    name = engine_name or settings.engines.default
    components = build_components(settings, name)
    engine = get_engine(name, **components.engine_options)
    out = output_path(out, photos, name)  # decided before the work, not after it
    encoder = components.encoder
    encoder.load()
    images, faces = [], []
    for path in photos:
        rgb = load_image(path).rgb
        images.append(rgb)
        faces.append(select_face(encoder.detect(rgb, embed=True), largest=True, what=str(path)))
    result = engine.predict(EditInput(
        references=images, faces=faces, lighting=lighting, camera=camera, scene=scene, seed=seed,
        options=_parse_options(option),
    ))
    _write_image(result.image, out)
    scores = score_edit(encoder, images, faces, result.image, lighting, camera, settings.thresholds)
    report = {
        "output": str(out),
        "engine": {"name": engine.info.name, "version": engine.info.version},
        "edit_kinds": list(result.edit_kinds),
        **scores,
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=float))
        return
    typer.echo(f"wrote {out} ({engine.info.name}, {result.image.shape[1]}x{result.image.shape[0]})")
    ident = scores["identity"]
    typer.echo(f"identity: {'pass' if ident['passed'] else 'FAIL'} "
               f"({len(ident['faces'])} person(s), threshold {ident['threshold']})")
    for kind in ("lighting", "camera"):
        part = scores[kind]
        if part is not None:
            errs = ", ".join(f"{f['error']}" for f in part["faces"])
            typer.echo(f"{kind}: {'pass' if part['passed'] else 'FAIL'} (error deg: {errs}; "
                       f"threshold {part['threshold']})")
