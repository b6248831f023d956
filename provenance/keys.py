"""Development signing identity: a local CA whose leaf c2pa-rs accepts.

`init_dev_ca` writes, under ``keys_dir``:
  root.pem / root.key     self-signed CA (CA:TRUE, keyCertSign + cRLSign)
  signer.pem / signer.key end-entity cert (cA=false, digitalSignature, EKU emailProtection, AKI/SKI)
  chain.pem               signer + root, the chain handed to the C2PA signer
Private keys are written 0600. Existing keys are kept unless ``force``.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from castkeep.errors import SigningError

Algorithm = Literal["es256", "ps256", "ed25519"]
ALGORITHMS: tuple[str, ...] = ("es256", "ps256", "ed25519")

ROOT_CERT = "root.pem"
ROOT_KEY = "root.key"
LEAF_CERT = "signer.pem"
LEAF_KEY = "signer.key"
CHAIN = "chain.pem"
_ALL = (ROOT_CERT, ROOT_KEY, LEAF_CERT, LEAF_KEY, CHAIN)

_ROOT_DAYS = 3650
_LEAF_DAYS = 825


@dataclass(frozen=True)
class DevCAPaths:
    root_cert: Path
    chain: Path
    private_key: Path
    algorithm: str
    leaf_cert: Path
    root_key: Path


def _paths(keys_dir: Path, algorithm: str) -> DevCAPaths:
    return DevCAPaths(
        root_cert=keys_dir / ROOT_CERT,
        chain=keys_dir / CHAIN,
        private_key=keys_dir / LEAF_KEY,
        algorithm=algorithm,
        leaf_cert=keys_dir / LEAF_CERT,
        root_key=keys_dir / ROOT_KEY,
    )


def algorithm_for_key(key: object) -> str:
    """The C2PA algorithm name castkeep uses for a private or public key."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "es256"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "ps256"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    raise SigningError(f"unsupported key type {type(key).__name__}; use EC P-256, RSA or Ed25519")


def dev_ca_paths(keys_dir: Path) -> DevCAPaths | None:
    """Paths of an existing development CA, or None when it is missing or incomplete."""
    keys_dir = Path(keys_dir)
    if not all((keys_dir / name).is_file() for name in _ALL):
        return None
    leaf = x509.load_pem_x509_certificate((keys_dir / LEAF_CERT).read_bytes())
    return _paths(keys_dir, algorithm_for_key(leaf.public_key()))


def _new_key(algorithm: str):
    if algorithm == "es256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ps256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise SigningError(
        f"unknown signing algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)} "
        "(CASTKEEP_SIGNING__ALGORITHM)"
    )


def _sign_hash(key) -> hashes.HashAlgorithm | None:
    # Ed25519 signs without a separate digest.
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "castkeep development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def build_root(now: dt.datetime, *, key=None, days: int = _ROOT_DAYS):
    """A self-signed CA certificate and its key."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = _name("castkeep development root CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _sign_hash(key))
    )
    return cert, key


def build_leaf(
    root_cert: x509.Certificate,
    root_key,
    leaf_key,
    now: dt.datetime,
    *,
    days: int = _LEAF_DAYS,
    ca: bool = False,
    digital_signature: bool = True,
    eku: bool = True,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    """An end-entity signing certificate issued by ``root_cert``.

    The keyword switches exist so tests can build the leaves c2pa-rs refuses.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("castkeep development signer"))
        .issuer_name(root_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=not digital_signature,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_cert.public_key()),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
    )
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
    return builder.sign(root_key, _sign_hash(root_key))


def key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)  # umask may have narrowed or O_CREAT kept an older mode


def init_dev_ca(keys_dir: Path, *, force: bool = False, algorithm: str = "es256") -> DevCAPaths:
    """Create the development CA under ``keys_dir`` (idempotent unless ``force``)."""
    keys_dir = Path(keys_dir)
    existing = dev_ca_paths(keys_dir)
    if existing is not None and not force:
        return existing
    if not force and any((keys_dir / name).exists() for name in _ALL):
        raise SigningError(
            f"{keys_dir} holds an incomplete key set; run `castkeep keys init --force` to "
            "replace it (this discards the keys there)"
        )
    if algorithm not in ALGORITHMS:
        _new_key(algorithm)  # raises the error naming the setting
    now = dt.datetime.now(dt.timezone.utc)
    root_cert, root_key = build_root(now)
    leaf_key = _new_key(algorithm)
    leaf_cert = build_leaf(root_cert, root_key, leaf_key, now)

    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    # Write into a sibling temp dir and move each file in, so a crash never leaves a key
    # paired with the wrong certificate.
    with tempfile.TemporaryDirectory(dir=keys_dir, prefix=".tmp-") as tmp:
        tmp_dir = Path(tmp)
        _write(tmp_dir / ROOT_KEY, key_pem(root_key), 0o600)
        _write(tmp_dir / LEAF_KEY, key_pem(leaf_key), 0o600)
        _write(tmp_dir / ROOT_CERT, cert_pem(root_cert), 0o644)
        _write(tmp_dir / LEAF_CERT, cert_pem(leaf_cert), 0o644)
        _write(tmp_dir / CHAIN, cert_pem(leaf_cert) + cert_pem(root_cert), 0o644)
        for name in _ALL:
            os.replace(tmp_dir / name, keys_dir / name)
    return _paths(keys_dir, algorithm)
