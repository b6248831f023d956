"""Signers: leaf checks that name the wrong property, callback (KMS/HSM) signers, resolution."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from castkeep.errors import ConfigurationError, SigningError
from castkeep.provenance import keys
from castkeep.provenance.keys import build_leaf, build_root, cert_pem, init_dev_ca, key_pem
from castkeep.provenance.manifest import sign_image
from castkeep.provenance.signing import (
    CallbackSignerConfig,
    SignerConfig,
    make_signer,
    resolve_signer_config,
    resolve_trust_anchors,
)
from castkeep.provenance.verify import verify_bytes

NOW = dt.datetime.now(dt.timezone.utc)


def _write_identity(tmp_path: Path, leaf_key=None, *, key_file_key=None, **leaf_kwargs):
    root_cert, root_key = build_root(NOW)
    leaf_key = leaf_key or ec.generate_private_key(ec.SECP256R1())
    leaf = build_leaf(root_cert, root_key, leaf_key, NOW, **leaf_kwargs)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(cert_pem(leaf) + cert_pem(root_cert))
    key = tmp_path / "signer.key"
    key.write_bytes(key_pem(key_file_key or leaf_key))
    return chain, key


@pytest.mark.parametrize(
    ("leaf_kwargs", "property_named"),
    [
        ({"eku": False}, "no ExtendedKeyUsage"),
        ({"ca": True}, "cA=true"),
        ({"digital_signature": False}, "lacks digitalSignature"),
        ({"not_before": NOW - dt.timedelta(days=30), "not_after": NOW - dt.timedelta(days=1)},
         "expired"),
        ({"not_before": NOW + dt.timedelta(days=1)}, "not valid before"),
    ],
)
def test_bad_leaf_names_property(tmp_path, leaf_kwargs, property_named):
    chain, key = _write_identity(tmp_path, **leaf_kwargs)
    with pytest.raises(SigningError) as err:
        make_signer(SignerConfig(chain, key))
    assert property_named in str(err.value)
    assert str(chain) in str(err.value)


def test_key_cert_mismatch(tmp_path):
    chain, key = _write_identity(tmp_path, key_file_key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(SigningError, match="key/cert mismatch"):
        make_signer(SignerConfig(chain, key))


def test_algorithm_key_mismatch(tmp_path):
    chain, key = _write_identity(tmp_path)
    with pytest.raises(SigningError, match=r"algorithm/key mismatch.*EC secp256r1.*ps256"):
        make_signer(SignerConfig(chain, key, algorithm="ps256"))


def test_rsa_key_with_es256(tmp_path):
    chain, key = _write_identity(tmp_path, leaf_key=rsa.generate_private_key(65537, 2048))
    with pytest.raises(SigningError, match=r"algorithm/key mismatch.*RSA-2048"):
        make_signer(SignerConfig(chain, key, algorithm="es256"))


def test_unreadable_files_name_setting(tmp_path):
    with pytest.raises(SigningError, match="CASTKEEP_SIGNING__CERT_CHAIN"):
        make_signer(SignerConfig(tmp_path / "none.pem", tmp_path / "none.key"))
    chain, _ = _write_identity(tmp_path)
    (tmp_path / "bad.key").write_text("not a key")
    with pytest.raises(SigningError, match="CASTKEEP_SIGNING__PRIVATE_KEY"):
        make_signer(SignerConfig(chain, tmp_path / "bad.key"))


def test_bad_tsa_url(dev_ca):
    with pytest.raises(SigningError, match="CASTKEEP_SIGNING__TSA_URL"):
        make_signer(SignerConfig(dev_ca.chain, dev_ca.private_key, tsa_url="ftp://tsa"))


def test_signer_repr_hides_key(dev_signer, dev_ca):
    text = repr(dev_signer)
    assert "castkeep development signer" in text
    assert "PRIVATE" not in text
    assert dev_signer.algorithm == "es256"


def test_signer_survives_pickling(dev_signer, dev_ca, manifest_input_factory, fixtures_dir):
    import pickle

    copy = pickle.loads(pickle.dumps(dev_signer))
    signed = sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg",
                        manifest_input_factory(), copy)
    assert verify_bytes(signed, "image/jpeg", trust_anchors=[dev_ca.root_cert]).state == "Trusted"
    copy.close()


def test_callback_signer_der_output_signs_trusted(dev_ca, manifest_input_factory, fixtures_dir):
    private = serialization.load_pem_private_key(dev_ca.private_key.read_bytes(), None)
    calls = []

    def kms_sign(data: bytes) -> bytes:  # what a KMS returns: DER-encoded ECDSA
        calls.append(len(data))
        return private.sign(data, ec.ECDSA(hashes.SHA256()))

    signer = make_signer(CallbackSignerConfig(dev_ca.chain, kms_sign))
    signed = sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg",
                        manifest_input_factory(), signer)
    report = verify_bytes(signed, "image/jpeg", trust_anchors=[dev_ca.root_cert])
    assert report.state == "Trusted", report.failures
    assert len(calls) == 2  # the probe, then the claim


def test_callback_with_wrong_key_is_refused(dev_ca):
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SigningError, match="key/cert mismatch"):
        make_signer(CallbackSignerConfig(dev_ca.chain,
                                         lambda data: other.sign(data, ec.ECDSA(hashes.SHA256()))))


def test_ps256_and_ed25519_dev_cas_sign_trusted(tmp_path, manifest_input_factory, fixtures_dir):
    image = (fixtures_dir / "obama3.jpg").read_bytes()
    for algorithm in ("ps256", "ed25519"):
        paths = init_dev_ca(tmp_path / algorithm, algorithm=algorithm)
        signer = make_signer(SignerConfig(paths.chain, paths.private_key, algorithm=algorithm))
        signed = sign_image(image, "image/jpeg", manifest_input_factory(), signer)
        report = verify_bytes(signed, "image/jpeg", trust_anchors=[paths.root_cert])
        assert report.state == "Trusted", (algorithm, report.failures)
        assert report.signer["alg"].lower() == algorithm


def test_resolve_signer_config(tmp_path):
    with pytest.raises(SigningError, match="castkeep keys init"):
        resolve_signer_config(keys_dir=tmp_path / "keys")
    with pytest.raises(ConfigurationError, match="CASTKEEP_SIGNING__PRIVATE_KEY"):
        resolve_signer_config(keys_dir=tmp_path / "keys", cert_chain=tmp_path / "c.pem")
    paths = init_dev_ca(tmp_path / "keys", algorithm="ed25519")
    config = resolve_signer_config(keys_dir=tmp_path / "keys", algorithm="es256")
    assert (config.chain_path, config.key_path, config.algorithm) == (
        paths.chain, paths.private_key, "ed25519")
    configured = resolve_signer_config(keys_dir=tmp_path / "keys", cert_chain=Path("/x/c.pem"),
                                       private_key=Path("/x/k.pem"), algorithm="ps256",
                                       tsa_url="http://tsa.example")
    assert configured == SignerConfig(Path("/x/c.pem"), Path("/x/k.pem"), "ps256",
                                      "http://tsa.example")


def test_resolve_trust_anchors(tmp_path):
    extra = tmp_path / "corp-root.pem"
    assert resolve_trust_anchors(keys_dir=tmp_path / "keys", configured=[extra]) == [extra]
    paths = init_dev_ca(tmp_path / "keys")
    assert resolve_trust_anchors(keys_dir=tmp_path / "keys", configured=[extra]) == [
        extra, paths.root_cert]
    assert keys.ROOT_CERT == paths.root_cert.name


def test_expired_while_running_is_refused_at_sign_time(tmp_path, manifest_input_factory, fixtures_dir):
    from castkeep.provenance.signing import Signer

    root_cert, root_key = build_root(NOW)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = build_leaf(root_cert, root_key, leaf_key, NOW, not_before=NOW - dt.timedelta(days=2),
                      not_after=NOW - dt.timedelta(seconds=1))
    # As if make_signer had validated it while it was still valid.
    signer = Signer(algorithm="es256", chain_pem=cert_pem(leaf) + cert_pem(root_cert), leaf=leaf,
                    tsa_url=None, key_pem=key_pem(leaf_key))
    with pytest.raises(SigningError, match="expired"):
        sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg",
                   manifest_input_factory(), signer)


def test_unreachable_tsa_names_setting(dev_ca, manifest_input_factory, fixtures_dir):
    import socket

    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    signer = make_signer(SignerConfig(dev_ca.chain, dev_ca.private_key,
                                      tsa_url=f"http://127.0.0.1:{port}/tsa"))
    with pytest.raises(SigningError, match="CASTKEEP_SIGNING__TSA_URL"):
        sign_image((fixtures_dir / "obama3.jpg").read_bytes(), "image/jpeg",
                   manifest_input_factory(), signer)
