"""Signing fixtures: a development CA for the whole session, its signer, and a manifest factory.

Other areas sign with `dev_signer` and verify with `[dev_ca.root_cert]` as trust anchors.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def dev_ca(tmp_path_factory: pytest.TempPathFactory):
    """DevCAPaths of a fresh ES256 development CA (root_cert is the trust anchor)."""
    from castkeep.provenance.keys import init_dev_ca

    return init_dev_ca(tmp_path_factory.mktemp("dev-ca") / "keys")


@pytest.fixture(scope="session")
def dev_signer(dev_ca):
    """A castkeep Signer for the development CA's leaf."""
    from castkeep.provenance.signing import SignerConfig, make_signer

    signer = make_signer(SignerConfig(chain_path=dev_ca.chain, key_path=dev_ca.private_key))
    yield signer
    signer.close()


@pytest.fixture
def manifest_input_factory(fixtures_dir: Path):
    """Builds a ManifestInput over the fixture portraits; keyword arguments override fields."""
    from castkeep.provenance.manifest import (
        ConsentAssertion,
        IngredientRef,
        ManifestInput,
        ScopeSummary,
    )

    def make(kind: str = "edit", refs: tuple[str, ...] = ("obama.jpg",), **overrides):
        fields = dict(
            title="castkeep-output.jpg",
            media_type="image/jpeg",
            kind=kind,
            engine_name="classical",
            engine_version="0.1.0",
            description="relight: key light azimuth 45 deg, elevation 30 deg",
            ingredients=tuple(
                IngredientRef(media_type="image/jpeg", title=f"reference-{i}", path=fixtures_dir / r)
                for i, r in enumerate(refs)
            ),
            consent=ConsentAssertion(
                talents=tuple(f"tal_{i:04d}" for i in range(len(refs))),
                consents=tuple(f"con_{i:04d}" for i in range(len(refs))),
                scope=ScopeSummary(channels=("web",), territories=("EU",), purposes=("advertising",),
                                   edits=("lighting", "camera")),
                valid_until="2030-12-31",
                release_doc_sha256s=("0" * 64,),
            ),
        )
        fields.update(overrides)
        return ManifestInput(**fields)

    return make
