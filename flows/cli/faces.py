"""`castkeep faces ...`: detect, compare, search and calibrate with the configured encoder
(CASTKEEP_FACES__ENCODER; dlib-resnet-v1 by default)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

faces_app = typer.Typer(
    help="Face detection, identity comparison, catalogue search and threshold calibration.",
    no_args_is_help=True,
)


def _encoder():
    from castkeep.flows.components import configured_encoder
    from castkeep.flows.runtime import load_settings

    # One instance per process and options: repeated commands in one process load weights once.
    settings = load_settings()
    return configured_encoder(settings.faces, home=settings.home)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, allow_nan=False))


@faces_app.command("detect")
def detect(
    photo: Path = typer.Argument(..., help="Image file (JPEG, PNG, WebP, TIFF)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """List the faces in PHOTO, largest first: box, 5 landmarks, quality."""
    from castkeep.tasks.face_tools import faces_in

    encoder = _encoder()
    img, faces = faces_in(encoder, photo)
    if as_json:
        _print_json(
            {
                "encoder": encoder.info.name,
                "image": {"width": img.width, "height": img.height, "format": img.format},
                "faces": [{"index": i, **f.as_dict()} for i, f in enumerate(faces)],
            }
        )
        return
    typer.echo(f"{photo}: {img.width}x{img.height} {img.format}, {len(faces)} face(s) ({encoder.info.name})")
    for i, f in enumerate(faces):
        q = f.quality
        x0, y0, x1, y1 = (round(v) for v in f.box)
        typer.echo(
            f"  [{i}] box ({x0},{y0})-({x1},{y1})  {q.face_px} px  sharpness {q.sharpness:.0f}  "
            f"score {q.det_score:.2f}  yaw {q.yaw:+.0f}  roll {q.roll:+.0f}"
        )


@faces_app.command("compare")
def compare(
    a: Path = typer.Argument(..., help="First image."),
    b: Path = typer.Argument(..., help="Second image."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
    face_a: int | None = typer.Option(None, "--face-a", help="Face of A to use (0 = largest)."),
    face_b: int | None = typer.Option(None, "--face-b", help="Face of B to use (0 = largest)."),
    largest: bool = typer.Option(False, "--largest", help="Use the largest face when there are several."),
    min_face_px: int = typer.Option(48, "--min-face-px", help="Smallest usable face (box side, px)."),
) -> None:
    """Are A and B the same person? Exit 3 when an image has no usable face or several faces
    and no choice was given."""
    from castkeep.tasks.face_tools import choose_face, faces_in

    encoder = _encoder()
    chosen = []
    for path, index, option in ((a, face_a, "--face-a N"), (b, face_b, "--face-b N")):
        _, faces = faces_in(encoder, path)
        chosen.append(
            choose_face(faces, index=index, largest=largest, min_face_px=min_face_px, what=str(path), index_option=option)
        )
    info = encoder.info
    distance = encoder.distance(chosen[0], chosen[1])
    result = {
        "encoder": info.name,
        "distance": round(distance, 6),
        "similarity": round(encoder.similarity(chosen[0], chosen[1]), 6),
        "threshold": info.threshold,
        "same_person": distance <= info.threshold,
    }
    if as_json:
        _print_json(result)
        return
    verdict = "same person" if result["same_person"] else "different people"
    op = "<=" if result["same_person"] else ">"
    typer.echo(
        f"{verdict}: distance {distance:.3f} {op} threshold {info.threshold} "
        f"(cosine similarity {result['similarity']:.3f}, {info.name})"
    )


@faces_app.command("search")
def search_cmd(
    photo: Path = typer.Argument(..., help="Image with the face to look for."),
    k: int = typer.Option(10, "--k", min=1, max=1000, help="How many nearest faces."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
    face: int | None = typer.Option(None, "--face", help="Face of PHOTO to use (0 = largest)."),
    largest: bool = typer.Option(False, "--largest", help="Use the largest face when there are several."),
) -> None:
    """The catalogued faces (reference portraits and assets) nearest to the face in PHOTO."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.flows.settings import get_settings
    from castkeep.tasks.face_tools import choose_face, faces_in, search_catalogue

    encoder = _encoder()
    _, faces = faces_in(encoder, photo)
    query = choose_face(faces, index=face, largest=largest, what=str(photo), index_option="--face N")
    info = encoder.info
    with open_runtime(get_settings()) as runtime, runtime.sessions() as session:
        hits = search_catalogue(session, query, k=k, metric=info.metric)
    rows = [{**h.as_dict(), "same_person": h.distance <= info.threshold} for h in hits]
    if as_json:
        _print_json({"encoder": info.name, "threshold": info.threshold, "hits": rows})
        return
    typer.echo(f"{len(rows)} nearest face(s) ({info.name}, threshold {info.threshold}):")
    for r in rows:
        owner = f"reference {r['reference_portrait_id']}" if r["reference_portrait_id"] else f"asset {r['asset_id']}"
        talent = f" talent {r['talent_id']}" if r["talent_id"] else ""
        mark = "*" if r["same_person"] else " "
        typer.echo(f" {mark} {r['distance']:.3f}  {owner}{talent}")


@faces_app.command("calibrate")
def calibrate(
    pairs_csv: Path = typer.Argument(..., help="CSV of image pairs (paths relative to the CSV's folder) and labels."),
    a_col: str = typer.Option("a", "--a-col", help="Column of the first image."),
    b_col: str = typer.Option("b", "--b-col", help="Column of the second image."),
    label_col: str = typer.Option("same", "--label-col", help="Column of the label (yes/no, true/false, 1/0)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Check the same-person threshold on your own labelled photos: accuracy at the encoder's
    threshold, the best threshold, ROC AUC, and the pairs that had no usable face."""
    from castkeep.tasks.face_tools import calibrate_csv

    encoder = _encoder()
    result = calibrate_csv(pairs_csv, encoder, a_col=a_col, b_col=b_col, label_col=label_col)
    if as_json:
        _print_json(result.as_dict())
        return
    auc = "n/a (one label only)" if result.auc is None else f"{result.auc:.3f}"
    typer.echo(f"{result.pairs} pairs, encoder {result.encoder}")
    typer.echo(f"  accuracy at threshold {result.threshold}: {result.accuracy:.3f}")
    typer.echo(f"  best threshold {result.best_threshold:.4f}: accuracy {result.best_accuracy:.3f}")
    typer.echo(f"  ROC AUC: {auc}")
    for f in result.failed:
        typer.echo(f"  failed: {f.a} / {f.b}: {f.reason}")
