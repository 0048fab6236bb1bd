"""The platform's certificate authority: broker server certificates, gateway
client certificates and the revocation list.

The CA's key and certificate live in `<data_dir>/pki/` (`ca.key` readable by
the owner only, `ca.pem`), created at first use. Client certificates name a
gateway as `<tenant>/<gateway>` in their common name and are valid for client
authentication only. The CA keeps no list of what it issued; the registry
records each gateway certificate's serial (citymesh/registry/certificates.py).
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from citymesh.errors import CitymeshError, ConfigError
from citymesh.transport.tls import certificate_name

logger = logging.getLogger(__name__)

PKI_DIR = "pki"
CA_NAME = "citymesh platform CA"
CA_VALID_DAYS = 3650
SERVER_VALID_DAYS = 825
# Gateways re-enrol to renew; a year bounds how long a stolen key stays useful
# where revocation does not reach (a broker without the current CRL).
CLIENT_VALID_DAYS = 365
# A CRL names its next update; Mosquitto and OpenSSL reject an expired one.
CRL_VALID_DAYS = 30


class InvalidCertificateRequest(CitymeshError, ValueError):
    """A certificate signing request is malformed or not signed by its key."""


def check_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    """Parse a PEM CSR and check its signature, or raise InvalidCertificateRequest."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as exc:
        raise InvalidCertificateRequest(
            f"invalid certificate signing request: {exc}"
        ) from None
    try:
        valid = csr.is_signature_valid
    except InvalidSignature:
        valid = False
    if not valid:
        raise InvalidCertificateRequest(
            "certificate signing request has an invalid signature"
        )
    return csr


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of a TLS endpoint: its chain, its key and the CA to trust."""

    certfile: Path
    keyfile: Path
    cafile: Path


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A client certificate signed by the platform CA."""

    serial: int
    pem: str
    not_after_ms: int


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_private(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class CertificateAuthority:
    """Signs server and gateway certificates with the platform's CA key."""

    def __init__(
        self, directory: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
    ) -> None:
        self.directory = directory
        self._key = key
        self.certificate = cert

    @property
    def cert_path(self) -> Path:
        """Return the path of the CA certificate, the trust anchor for clients."""
        return self.directory / "ca.pem"

    @property
    def certificate_pem(self) -> str:
        """Return the CA certificate as PEM text."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @classmethod
    def load_or_create(cls, data_dir: Path) -> CertificateAuthority:
        """Load the CA under `data_dir/pki`, creating key and certificate if absent."""
        directory = data_dir / PKI_DIR
        key_path, cert_path = directory / "ca.key", directory / "ca.pem"
        try:
            if key_path.exists() and cert_path.exists():
                key = serialization.load_pem_private_key(key_path.read_bytes(), None)
                cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
                if not isinstance(key, ec.EllipticCurvePrivateKey):
                    raise ConfigError(f"CA key {key_path} is not an EC key")
                return cls(directory, key, cert)
            directory.mkdir(parents=True, exist_ok=True)
            key = ec.generate_private_key(ec.SECP384R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
            now = _utcnow()
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=CA_VALID_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
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
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False
                )
                .sign(key, hashes.SHA256())
            )
            _write_private(key_path, _key_pem(key))
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load or create the CA in {directory}: {exc}"
            ) from exc
        logger.info("platform CA created in %s", directory)
        return cls(directory, key, cert)

    def _builder(
        self, subject: x509.Name, public_key: object, days: int
    ) -> x509.CertificateBuilder:
        now = _utcnow()
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self._key.public_key()
                ),
                False,
            )
        )

    def issue_server(self, hosts: Sequence[str], name: str = "broker") -> TlsFiles:
        """Issue a server certificate for `hosts` (names or IP addresses)."""
        if not hosts:
            raise ValueError("a server certificate needs at least one host name")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
        cert = (
            self._builder(subject, key.public_key(), SERVER_VALID_DAYS)
            .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False
            )
            .sign(self._key, hashes.SHA256())
        )
        files = TlsFiles(
            self.directory / f"{name}.pem",
            self.directory / f"{name}.key",
            self.cert_path,
        )
        _write_private(files.keyfile, _key_pem(key))
        files.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        logger.info("server certificate for %s written to %s", hosts, files.certfile)
        return files

    def sign_client(
        self, csr_pem: str, tenant: str, gateway: str, days: int = CLIENT_VALID_DAYS
    ) -> IssuedCertificate:
        """Sign a gateway's CSR; the certificate names the gateway, not the CSR."""
        csr = check_csr(csr_pem)
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, certificate_name(tenant, gateway))]
        )
        cert = (
            self._builder(subject, csr.public_key(), days)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False
            )
            .sign(self._key, hashes.SHA256())
        )
        not_after = cert.not_valid_after_utc
        logger.info(
            "client certificate %x issued for %s/%s",
            cert.serial_number,
            tenant,
            gateway,
        )
        return IssuedCertificate(
            cert.serial_number,
            cert.public_bytes(serialization.Encoding.PEM).decode(),
            int(not_after.timestamp() * 1000),
        )

    def write_crl(self, revoked: Iterable[tuple[int, int]], path: Path) -> None:
        """Write a PEM CRL of (serial, revoked_ms) pairs to `path`, atomically."""
        now = _utcnow()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - datetime.timedelta(minutes=5))
            .next_update(now + datetime.timedelta(days=CRL_VALID_DAYS))
        )
        for serial, revoked_ms in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(
                    datetime.datetime.fromtimestamp(revoked_ms / 1000, datetime.UTC)
                )
                .build()
            )
        crl = builder.sign(self._key, hashes.SHA256())
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        os.replace(temporary, path)
