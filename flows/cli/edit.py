"""`castkeep edit`: one edit of one or more portraits, with identity and adherence scores.

    castkeep edit PHOTO [PHOTO...] -o OUT --engine classical --light "azimuth=45,fill=0.2" \\
        --camera "roll=30,shot=medium" [--seed N] [--json]

Each photo's largest face is the person; several photos make a group shot. The output is
scored by the request pipeline's scorer, with the thresholds a request gets by default: identity
per person (distance to the input face), extra faces, lighting (key azimuth against the input),
camera (roll/yaw/pitch change and framing, for a group shot too) and basic quality. Nothing is
catalogued or signed: this is the single-shot tool; requests go through `castkeep request`.
"""

from __future__ import annotations

import json
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
    from castkeep.tasks.single_edit import (
        check_edit,
        edit_portraits,
        load_portraits,
        parse_specs,
        request_thresholds,
        write_image,
    )

    settings = load_settings()
    lighting, camera = parse_specs(light, camera_text)
    options = _parse_options(option)
    name = engine_name or settings.engines.default
    components = build_components(settings, name)
    check_edit(name, components.engine_options, options, scene)
    out = output_path(out, photos, name)  # decided before the work, not after it
    encoder = components.encoder
    portraits = load_portraits(encoder, photos)
    result = edit_portraits(
        name, components.engine_options, encoder, portraits, lighting=lighting, camera=camera,
        scene=scene, seed=seed, options=options,
        thresholds=request_thresholds(settings.thresholds.model_dump()),
    )
    write_image(result.image, out)
    scores = result.report()
    report = {
        "output": str(out),
        "engine": {"name": result.engine.name, "version": result.engine.version},
        "edit_kinds": list(result.edit_kinds),
        **scores,
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=float))
        return
    typer.echo(f"wrote {out} ({result.engine.name}, {result.image.shape[1]}x{result.image.shape[0]})")
    ident = scores["identity"]
    typer.echo(f"identity: {'pass' if ident['passed'] else 'FAIL'} "
               f"({len(ident['faces'])} person(s), threshold {ident['threshold']})")
    for kind in ("lighting", "camera"):
        part = scores[kind]
        if part is not None:
            typer.echo(f"{kind}: {'pass' if part['passed'] else 'FAIL'} (error deg: "
                       f"{part['value']:.1f}; threshold {part['threshold']})")
    for reason in scores["reasons"]:
        typer.echo(f"  {reason}")
