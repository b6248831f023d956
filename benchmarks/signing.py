"""Sign + verify a 2 MP JPEG through castkeep vs a bare c2pa-python Builder/Reader call.

Both sides use the same manifest definition, ingredient, signer and trust settings, measured
interleaved in one run. Goal: castkeep <= 1.2x the bare call. Prints JSON with medians.

    python benchmarks/signing.py [--rounds 25]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import c2pa
from PIL import Image

from castkeep.provenance.keys import init_dev_ca
from castkeep.provenance.manifest import (
    ConsentAssertion,
    IngredientRef,
    ManifestInput,
    ScopeSummary,
    build_manifest_json,
    ingredient_json,
    sign_image,
)
from castkeep.provenance.signing import SignerConfig, make_signer
from castkeep.provenance.verify import verify_bytes

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def two_megapixel_jpeg() -> bytes:
    img = Image.open(FIXTURES / "obama3.jpg").convert("RGB").resize((1732, 1155), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()

    image = two_megapixel_jpeg()
    reference = (FIXTURES / "obama.jpg").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        ca = init_dev_ca(Path(tmp) / "keys")
        anchors = [ca.root_cert]
        signer = make_signer(SignerConfig(ca.chain, ca.private_key))
        manifest = ManifestInput(
            title="bench.jpg", media_type="image/jpeg", kind="edit", engine_name="classical",
            engine_version="0.1.0", description="relight: azimuth 45, elevation 30",
            ingredients=(IngredientRef(media_type="image/jpeg", title="reference-0", data=reference),),
            consent=ConsentAssertion(talents=("tal_0001",), consents=("con_0001",),
                                     scope=ScopeSummary(channels=("web",)), valid_until="2030-12-31",
                                     release_doc_sha256s=("0" * 64,)),
        )

        # The bare reference: the same definition and ingredient, straight through c2pa-python.
        definition = build_manifest_json(manifest)
        ing = ingredient_json(manifest, 0)
        bare_signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(b"es256", ca.chain.read_bytes(), ca.private_key.read_bytes(), None))
        build_ctx = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
        read_ctx = c2pa.Context.from_dict({
            "trust": {"trust_anchors": ca.root_cert.read_text()},
            "verify": {"verify_trust": True, "ocsp_fetch": False, "remote_manifest_fetch": False},
        })

        def bare() -> str:
            builder = c2pa.Builder(definition, context=build_ctx)
            builder.add_ingredient(ing, "image/jpeg", io.BytesIO(reference))
            out = io.BytesIO()
            builder.sign(bare_signer, "image/jpeg", io.BytesIO(image), out)
            with c2pa.Reader("image/jpeg", io.BytesIO(out.getvalue()), context=read_ctx) as reader:
                json.loads(reader.json())
                return reader.get_validation_state()

        def bare_with_thumbnails() -> str:
            builder = c2pa.Builder(definition)  # c2pa defaults: thumbnails on
            builder.add_ingredient(ing, "image/jpeg", io.BytesIO(reference))
            out = io.BytesIO()
            builder.sign(bare_signer, "image/jpeg", io.BytesIO(image), out)
            with c2pa.Reader("image/jpeg", io.BytesIO(out.getvalue()), context=read_ctx) as reader:
                return reader.get_validation_state()

        def castkeep() -> str:
            signed = sign_image(image, "image/jpeg", manifest, signer)
            return verify_bytes(signed, "image/jpeg", trust_anchors=anchors).state

        cases = {"castkeep": castkeep, "bare": bare, "bare_thumbnails_on": bare_with_thumbnails}
        times: dict[str, list[float]] = {name: [] for name in cases}
        for name, fn in cases.items():  # warm up; every path must end Trusted
            state = fn()
            assert state == "Trusted", (name, state)
        for _ in range(args.rounds):
            for name, fn in cases.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)

    med = {name: statistics.median(values) for name, values in times.items()}
    print(json.dumps({
        "image": {"width": 1732, "height": 1155, "bytes": len(image)},
        "rounds": args.rounds,
        "castkeep_median_s": round(med["castkeep"], 5),
        "bare_median_s": round(med["bare"], 5),
        "ratio_castkeep_over_bare": round(med["castkeep"] / med["bare"], 3),
        "goal_ratio": 1.2,
        "bare_thumbnails_on_median_s": round(med["bare_thumbnails_on"], 5),
        "thumbnail_share_of_bare_default": round(1 - med["bare"] / med["bare_thumbnails_on"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
