"""C2PA signers: certificate chain + key files, or a callback (the KMS/HSM hook).

The leaf certificate is checked before c2pa-rs sees it, because c2pa-rs refuses a
non-conformant leaf with an opaque error; `SigningError` here names the property that is wrong.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from castkeep.errors import SigningError
from castkeep.provenance.keys import ALGORITHMS

# EKUs c2pa-rs accepts for a claim signer (C2PA spec 2.x, "Certificate profile").
_C2PA_EKUS = {
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # id-kp-documentSigning
    ObjectIdentifier("1.3.6.1.4.1.62558.2.1"),  # c2pa-kp-claimSigning
    ObjectIdentifier("1.3.6.1.4.1.311.76.59.1.9"),  # Microsoft C2PA signing
}
_ANY_EKU = ObjectIdentifier("2.5.29.37.0")
_CERT_HASHES = {"sha256", "sha384", "sha512"}

_C2PA_ALG = {
    "es256": c2pa.C2paSigningAlg.ES256,
    "ps256": c2pa.C2paSigningAlg.PS256,
    "ed25519": c2pa.C2paSigningAlg.ED25519,
}

SignCallback = Callable[[bytes], bytes]


@dataclass(frozen=True)
class SignerConfig:
    """Production or development signer from PEM files."""

    chain_path: Path
    key_path: Path
    algorithm: str = "es256"
    tsa_url: str | None = None


@dataclass(frozen=True)
class CallbackSignerConfig:
    """Signer whose private key lives elsewhere (KMS, HSM).

    ``sign`` receives the bytes to sign and returns the signature: raw r||s or DER for ES256
    (DER is converted), PSS/SHA-256 for PS256, plain Ed25519 for ed25519.
    """

    chain_path: Path
    sign: SignCallback = field(repr=False)
    algorithm: str = "es256"
    tsa_url: str | None = None
    # Sign a probe once and check it against the leaf's public key: catches a KMS key that does
    # not belong to the certificate before any asset is signed.
    probe: bool = True


def _fail(path: Path, what: str, fix: str) -> SigningError:
    return SigningError(f"signing certificate {path}: {what}; {fix}")


def load_chain(chain_path: Path) -> list[x509.Certificate]:
    chain_path = Path(chain_path)
    try:
        data = chain_path.read_bytes()
    except OSError as exc:
        raise SigningError(
            f"cannot read certificate chain {chain_path}: {exc.strerror}; set "
            "CASTKEEP_SIGNING__CERT_CHAIN or run `castkeep keys init`"
        ) from exc
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise SigningError(
            f"{chain_path} is not a PEM certificate chain (leaf first); fix "
            "CASTKEEP_SIGNING__CERT_CHAIN"
        ) from exc
    return certs


def check_key_matches_algorithm(public_key, algorithm: str, where: str) -> None:
    """Raise when the key type cannot produce ``algorithm`` signatures."""
    ok = {
        "es256": isinstance(public_key, ec.EllipticCurvePublicKey)
        and public_key.curve.name == "secp256r1",
        "ps256": isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= 2048,
        "ed25519": isinstance(public_key, ed25519.Ed25519PublicKey),
    }.get(algorithm)
    if ok is None:
        raise SigningError(
            f"unknown signing algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)} "
            "(CASTKEEP_SIGNING__ALGORITHM)"
        )
    if not ok:
        kind = type(public_key).__name__.lstrip("_")
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            kind = f"EC {public_key.curve.name}"
        elif isinstance(public_key, rsa.RSAPublicKey):
            kind = f"RSA-{public_key.key_size}"
        need = {"es256": "EC P-256", "ps256": "RSA >= 2048 bits", "ed25519": "Ed25519"}[algorithm]
        raise SigningError(
            f"algorithm/key mismatch: {where} is {kind} but algorithm {algorithm} needs {need}; "
            "set CASTKEEP_SIGNING__ALGORITHM to match the key, or use a matching key"
        )


def check_leaf(chain: list[x509.Certificate], chain_path: Path, algorithm: str,
               *, now: dt.datetime | None = None) -> x509.Certificate:
    """Check the C2PA certificate profile of the chain's first (leaf) certificate."""
    if not chain:
        raise _fail(chain_path, "holds no certificate", "put the signer certificate first")
    leaf = chain[0]
    now = now or dt.datetime.now(dt.timezone.utc)
    fix_cert = "issue a new signing certificate (or `castkeep keys init --force` for development)"
    if leaf.version != x509.Version.v3:
        raise _fail(chain_path, "leaf is not an X.509 v3 certificate", fix_cert)
    if now < leaf.not_valid_before_utc:
        raise _fail(chain_path, f"leaf is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M}Z",
                    "check the clock or the certificate")
    if now > leaf.not_valid_after_utc:
        raise _fail(chain_path, f"leaf expired on {leaf.not_valid_after_utc:%Y-%m-%d}", fix_cert)
    exts = leaf.extensions
    try:
        bc = exts.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            raise _fail(chain_path, "leaf has BasicConstraints cA=true (a CA cannot sign claims)",
                        fix_cert + " with cA=false")
    except x509.ExtensionNotFound:
        pass
    try:
        ku = exts.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise _fail(chain_path, "leaf has no KeyUsage extension (digitalSignature required)",
                    fix_cert) from None
    if not ku.digital_signature:
        raise _fail(chain_path, "leaf KeyUsage lacks digitalSignature", fix_cert)
    try:
        eku = set(exts.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        raise _fail(chain_path, "leaf has no ExtendedKeyUsage (missing EKU; C2PA needs "
                    "emailProtection or documentSigning)", fix_cert) from None
    if _ANY_EKU in eku:
        raise _fail(chain_path, "leaf EKU contains anyExtendedKeyUsage, which C2PA forbids", fix_cert)
    if not eku & _C2PA_EKUS:
        raise _fail(chain_path, "leaf EKU has none of emailProtection, documentSigning, "
                    "c2pa claimSigning", fix_cert)
    self_signed = leaf.issuer == leaf.subject
    if not self_signed:
        try:
            exts.get_extension_for_class(x509.AuthorityKeyIdentifier)
        except x509.ExtensionNotFound:
            raise _fail(chain_path, "leaf has no AuthorityKeyIdentifier", fix_cert) from None
    hash_alg = leaf.signature_hash_algorithm
    if hash_alg is not None and hash_alg.name not in _CERT_HASHES:
        raise _fail(chain_path, f"leaf is signed with {hash_alg.name}, which C2PA forbids", fix_cert)
    check_key_matches_algorithm(leaf.public_key(), algorithm, f"the leaf certificate in {chain_path}")
    return leaf


def _same_public_key(a, b) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_bytes(*fmt) == b.public_bytes(*fmt)


def _verify(public_key, signature: bytes, data: bytes, algorithm: str) -> None:
    if algorithm == "es256":
        half = len(signature) // 2
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        der = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                   int.from_bytes(signature[half:], "big"))
        public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    elif algorithm == "ps256":
        public_key.verify(signature, data,
                          padding.PSS(padding.MGF1(hashes.SHA256()), hashes.SHA256().digest_size),
                          hashes.SHA256())
    else:
        public_key.verify(signature, data)


def _to_p1363(signature: bytes, algorithm: str) -> bytes:
    """KMS APIs return ECDSA as DER; COSE needs raw r||s."""
    if algorithm != "es256" or len(signature) == 64:
        return signature
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return signature
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class Signer:
    """A validated signing identity; hands c2pa a native signer (created once, reused)."""

    def __init__(self, *, algorithm: str, chain_pem: bytes, leaf: x509.Certificate,
                 tsa_url: str | None, key_pem: bytes | None = None,
                 callback: SignCallback | None = None) -> None:
        self.algorithm = algorithm
        self.chain_pem = chain_pem
        self.leaf = leaf
        self.tsa_url = tsa_url
        self._key_pem = key_pem
        self._callback = callback
        self._native: c2pa.Signer | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        # The native handle and lock stay behind; a copy (e.g. in another worker) makes its own.
        state = dict(self.__dict__)
        state["_native"] = None
        state.pop("_lock")
        state["leaf"] = self.leaf.public_bytes(serialization.Encoding.PEM)
        return state

    def __setstate__(self, state: dict) -> None:
        state["leaf"] = x509.load_pem_x509_certificate(state["leaf"])
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows key material
        return f"Signer(algorithm={self.algorithm!r}, subject={self.leaf.subject.rfc4514_string()!r})"

    @property
    def subject(self) -> str:
        return self.leaf.subject.rfc4514_string()

    def native(self) -> c2pa.Signer:
        # A long-lived worker can outlive its certificate; say so rather than let c2pa fail.
        if dt.datetime.now(dt.timezone.utc) > self.leaf.not_valid_after_utc:
            raise SigningError(f"signing certificate {self.subject} expired on "
                               f"{self.leaf.not_valid_after_utc:%Y-%m-%d}; renew it "
                               "(CASTKEEP_SIGNING__CERT_CHAIN) or `castkeep keys init --force`")
        with self._lock:
            if self._native is None or not self._native.is_valid:
                self._native = self._make_native()
            return self._native

    def _make_native(self) -> c2pa.Signer:
        try:
            if self._callback is not None:
                cb, alg = self._callback, self.algorithm
                return c2pa.Signer.from_callback(lambda data: _to_p1363(cb(data), alg),
                                                 _C2PA_ALG[alg], self.chain_pem.decode(),
                                                 self.tsa_url)
            info = c2pa.C2paSignerInfo(self.algorithm.encode(), self.chain_pem, self._key_pem,
                                       self.tsa_url.encode() if self.tsa_url else None)
            return c2pa.Signer.from_info(info)
        except c2pa.C2paError as exc:
            raise SigningError(f"c2pa refused the signer: {exc}; check CASTKEEP_SIGNING__*") from exc

    def close(self) -> None:
        with self._lock:
            if self._native is not None:
                self._native.close()
                self._native = None


def make_signer(config: SignerConfig | CallbackSignerConfig) -> Signer:
    """Validate the signing identity and return a reusable `Signer`."""
    algorithm = config.algorithm.lower()
    if algorithm not in ALGORITHMS:
        raise SigningError(
            f"unknown signing algorithm {config.algorithm!r}; use one of {', '.join(ALGORITHMS)} "
            "(CASTKEEP_SIGNING__ALGORITHM)"
        )
    if config.tsa_url is not None and not config.tsa_url.startswith(("http://", "https://")):
        raise SigningError(f"timestamp authority URL {config.tsa_url!r} must be http(s); fix "
                           "CASTKEEP_SIGNING__TSA_URL")
    chain_path = Path(config.chain_path)
    chain = load_chain(chain_path)
    leaf = check_leaf(chain, chain_path, algorithm)
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)

    if isinstance(config, CallbackSignerConfig):
        if config.probe:
            probe = b"castkeep signer probe"
            try:
                _verify(leaf.public_key(), _to_p1363(config.sign(probe), algorithm), probe, algorithm)
            except (InvalidSignature, ValueError) as exc:
                raise SigningError(
                    "key/cert mismatch: the callback's signature does not verify with the leaf "
                    f"certificate in {chain_path}; point the callback at the key of that certificate"
                ) from exc
        return Signer(algorithm=algorithm, chain_pem=chain_pem, leaf=leaf,
                      tsa_url=config.tsa_url, callback=config.sign)

    key_path = Path(config.key_path)
    try:
        key_bytes = key_path.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read private key {key_path}: {exc.strerror}; set "
                           "CASTKEEP_SIGNING__PRIVATE_KEY or run `castkeep keys init`") from exc
    try:
        key = serialization.load_pem_private_key(key_bytes, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SigningError(f"{key_path} is not an unencrypted PEM private key; fix "
                           "CASTKEEP_SIGNING__PRIVATE_KEY") from exc
    check_key_matches_algorithm(key.public_key(), algorithm, f"the private key {key_path}")
    if not _same_public_key(key.public_key(), leaf.public_key()):
        raise SigningError(f"key/cert mismatch: {key_path} is not the private key of the leaf "
                           f"certificate in {chain_path}; pair the key with its certificate")
    # c2pa-rs wants PKCS#8; re-encode so SEC1/PKCS#1 files work too.
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return Signer(algorithm=algorithm, chain_pem=chain_pem, leaf=leaf, tsa_url=config.tsa_url,
                  key_pem=key_pem)


def resolve_signer_config(*, keys_dir: Path, cert_chain: Path | None = None,
                          private_key: Path | None = None, algorithm: str = "es256",
                          tsa_url: str | None = None) -> SignerConfig:
    """The configured certificate + key, else the development CA under ``keys_dir``.

    Plain values in, so the edge (CLI, flows) passes its settings down. The development CA's
    own key type decides its algorithm.
    """
    from castkeep.errors import ConfigurationError
    from castkeep.provenance.keys import dev_ca_paths

    if cert_chain is not None or private_key is not None:
        if cert_chain is None or private_key is None:
            missing = "CASTKEEP_SIGNING__CERT_CHAIN" if cert_chain is None else "CASTKEEP_SIGNING__PRIVATE_KEY"
            raise ConfigurationError(f"signing needs both a certificate chain and a private key; set {missing}")
        return SignerConfig(Path(cert_chain), Path(private_key), algorithm, tsa_url)
    dev = dev_ca_paths(Path(keys_dir))
    if dev is None:
        raise SigningError(
            f"no signing identity: run `castkeep keys init` (development CA under {keys_dir}) or "
            "set CASTKEEP_SIGNING__CERT_CHAIN and CASTKEEP_SIGNING__PRIVATE_KEY"
        )
    return SignerConfig(dev.chain, dev.private_key, dev.algorithm, tsa_url)


def resolve_trust_anchors(*, keys_dir: Path, configured: list[Path] | tuple[Path, ...] = ()) -> list[Path]:
    """Configured anchor PEMs plus the development root when it exists."""
    from castkeep.provenance.keys import dev_ca_paths

    anchors = [Path(p) for p in configured]
    dev = dev_ca_paths(Path(keys_dir))
    if dev is not None and dev.root_cert not in anchors:
        anchors.append(dev.root_cert)
    return anchors
