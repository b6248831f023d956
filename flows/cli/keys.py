"""`castkeep keys`: the signing identity (development CA or configured certificate).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


keys_app = typer.Typer(help="Signing keys: create the development CA, show the identity in use.",
                       no_args_is_help=True)


def keys_dir(settings) -> Path:
    return Path(settings.home) / "keys"


@keys_app.command("init")
def init(
    force: bool = typer.Option(False, "--force", help="Replace existing keys (old signatures stay "
                               "verifiable only while their root is a trust anchor)."),
    algorithm: str = typer.Option(None, "--algorithm",
                                  help="es256 (default), ps256 or ed25519; default: "
                                       "CASTKEEP_SIGNING__ALGORITHM."),
) -> None:
    """Create the development CA under <CASTKEEP_HOME>/keys (kept if it exists, unless --force)."""
    from castkeep.flows.runtime import load_settings
    from castkeep.provenance.keys import dev_ca_paths, init_dev_ca

    settings = load_settings()
    directory = keys_dir(settings)
    existed = dev_ca_paths(directory) is not None
    paths = init_dev_ca(directory, force=force, algorithm=(algorithm or settings.signing.algorithm).lower())
    verb = "kept existing" if existed and not force else "created"
    typer.echo(f"{verb} development CA ({paths.algorithm}) in {directory}")
    typer.echo(f"trust anchor: {paths.root_cert}")


@keys_app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """Show the signing identity castkeep uses and the trust anchors it verifies against."""
    from castkeep.flows.components import build_components
    from castkeep.flows.runtime import load_settings
    from castkeep.provenance.keys import dev_ca_paths
    from castkeep.provenance.signing import check_leaf, load_chain

    settings = load_settings()
    components = build_components(settings)
    config = components.signer_config
    chain = load_chain(config.chain_path)
    leaf = check_leaf(chain, config.chain_path, config.algorithm)
    dev = dev_ca_paths(keys_dir(settings))
    configured = settings.signing.cert_chain is not None
    info = {
        "source": "configured" if configured else "development",
        "root_cert": None if configured or dev is None else str(dev.root_cert),
        "chain": str(config.chain_path),
        "private_key": str(config.key_path),
        "algorithm": config.algorithm,
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "not_after": leaf.not_valid_after_utc.isoformat(),
        "tsa_url": config.tsa_url,
        "trust_anchors": [str(p) for p in components.trust_anchors],
    }
    if as_json:
        typer.echo(json.dumps(info))
        return
    for key, value in info.items():
        typer.echo(f"{key}: {value if not isinstance(value, list) else ', '.join(value) or '-'}")
