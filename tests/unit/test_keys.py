"""Development CA: certificate profile, file modes, idempotence."""

from __future__ import annotations

import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from castkeep.errors import SigningError
from castkeep.provenance.keys import dev_ca_paths, init_dev_ca


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_conformant_root_and_leaf(tmp_path):
    paths = init_dev_ca(tmp_path / "keys")
    assert paths.algorithm == "es256"
    root = x509.load_pem_x509_certificate(paths.root_cert.read_bytes())
    chain = x509.load_pem_x509_certificates(paths.chain.read_bytes())
    assert len(chain) == 2 and chain[1] == root
    leaf = chain[0]

    root_bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert root_bc.value.ca is True
    root_ku = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert root_ku.key_cert_sign and root_ku.crl_sign

    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert leaf.issuer == root.subject
    leaf.verify_directly_issued_by(root)
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"


def test_private_keys_are_0600(tmp_path):
    paths = init_dev_ca(tmp_path / "keys")
    assert _mode(paths.private_key) == 0o600
    assert _mode(paths.root_key) == 0o600
    assert _mode(tmp_path / "keys") == 0o700


def test_rerun_keeps_keys_unless_forced(tmp_path):
    first = init_dev_ca(tmp_path / "keys")
    key_bytes = first.private_key.read_bytes()
    root_bytes = first.root_cert.read_bytes()
    again = init_dev_ca(tmp_path / "keys")
    assert again == first
    assert again.private_key.read_bytes() == key_bytes
    assert again.root_cert.read_bytes() == root_bytes
    forced = init_dev_ca(tmp_path / "keys", force=True)
    assert forced.private_key.read_bytes() != key_bytes
    assert forced.root_cert.read_bytes() != root_bytes
    assert _mode(forced.private_key) == 0o600


def test_incomplete_key_set_is_not_overwritten(tmp_path):
    paths = init_dev_ca(tmp_path / "keys")
    paths.chain.unlink()
    key_bytes = paths.private_key.read_bytes()
    assert dev_ca_paths(tmp_path / "keys") is None
    with pytest.raises(SigningError, match="--force"):
        init_dev_ca(tmp_path / "keys")
    assert paths.private_key.read_bytes() == key_bytes


@pytest.mark.parametrize(
    ("algorithm", "key_type"),
    [("ps256", rsa.RSAPublicKey), ("ed25519", ed25519.Ed25519PublicKey)],
)
def test_other_algorithms(tmp_path, algorithm, key_type):
    paths = init_dev_ca(tmp_path / "keys", algorithm=algorithm)
    assert paths.algorithm == algorithm
    assert dev_ca_paths(tmp_path / "keys").algorithm == algorithm
    leaf = x509.load_pem_x509_certificates(paths.chain.read_bytes())[0]
    assert isinstance(leaf.public_key(), key_type)


def test_unknown_algorithm_names_setting(tmp_path):
    with pytest.raises(SigningError, match="CASTKEEP_SIGNING__ALGORITHM"):
        init_dev_ca(tmp_path / "keys", algorithm="es999")
    assert not (tmp_path / "keys" / "signer.key").exists()


def test_dev_ca_paths_missing_dir(tmp_path):
    assert dev_ca_paths(tmp_path / "nothing") is None
