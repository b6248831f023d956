"""`castkeep score`: judge any image against reference portraits, as a request variant is judged.

    castkeep score IMAGE --reference REF [--reference REF...] [--light SPEC] [--camera SPEC]
        [--derived] [--json]

Identity per reference (each reference photo's largest face is a person who must be in IMAGE),
extra faces, lighting (key azimuth, measured from IMAGE alone by the independent estimator;
with --derived also against the reference), seams and halos (--derived only),
camera (roll/yaw/pitch change against the reference face, shot size) and basic quality, with
the thresholds a request gets by default. The verdict is the output ("passed" in --json); the
exit status is 0 whenever the image could be scored, as for `castkeep edit`.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def score(
    image: Path = typer.Argument(..., help="The image to judge (JPEG, PNG, WebP or TIFF)."),
    reference: list[Path] = typer.Option(..., "--reference", help=(
        "Reference portrait of a person who must appear (repeat for a group).")),
    light: str = typer.Option(None, "--light", help='Lighting spec asked for, e.g. "azimuth=45,fill=0.2".'),
    camera_text: str = typer.Option(None, "--camera", help='Camera spec asked for, e.g. "roll=10,shot=medium".'),
    derived: bool = typer.Option(False, "--derived", help=(
        "IMAGE is the references' own pixels edited (relit, recomposed, reframed), as the "
        "classical engine makes: also compare with them pixel for pixel (lighting ratio, "
        "seam and halo check).")),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict and scores as JSON only."),
) -> None:
    """Score IMAGE against the --reference portraits (and the --light/--camera specs)."""
    from castkeep.flows.components import build_components
    from castkeep.flows.runtime import load_settings
    from castkeep.tasks.score_image import score_image
    from castkeep.tasks.single_edit import parse_specs, request_thresholds

    settings = load_settings()
    lighting, camera = parse_specs(light, camera_text)
    encoder = build_components(settings).encoder
    result = score_image(encoder, image, list(reference), lighting=lighting, camera=camera,
                         thresholds=request_thresholds(settings.thresholds.model_dump()),
                         derived=derived)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=float))
    else:
        typer.echo(f"{image}: {'pass' if result['passed'] else 'FAIL'}")
        for kind, s in result["scores"].items():
            typer.echo(f"  {kind}: {'pass' if s['passed'] else 'FAIL'} value {s['value']:.3g} "
                       f"(threshold {s['threshold']}; {s['method']})")
        for reason in result["reasons"]:
            typer.echo(f"  {reason}")
