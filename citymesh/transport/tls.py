"""TLS for MQTT: client contexts, gateway certificate names and signing requests.

A gateway's client certificate names it in its subject common name as
`<tenant>/<gateway>`. The platform's CA (citymesh/registry/pki.py) signs the
certificate signing request (CSR) that a gateway makes here at enrolment, so
the gateway's private key never leaves it.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citymesh.errors import ConfigError
from citymesh.protocol.names import is_identifier

logger = logging.getLogger(__name__)


def certificate_name(tenant: str, gateway: str) -> str:
    """Return the common name of a gateway's client certificate."""
    return f"{tenant}/{gateway}"


def parse_certificate_name(common_name: str) -> tuple[str, str] | None:
    """Split `<tenant>/<gateway>` into (tenant, gateway), or None if it is not one."""
    tenant, slash, gateway = common_name.partition("/")
    if not slash or not is_identifier(tenant) or not is_identifier(gateway):
        return None
    return tenant, gateway


def make_client_key(tenant: str, gateway: str) -> tuple[bytes, bytes]:
    """Create a P-256 key and a CSR naming the gateway; return both as PEM."""
    # Imported here because the gateway's MQTT link loads this module, and a
    # running gateway needs no cryptography (7 MB resident in version 48).
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, certificate_name(tenant, gateway))]
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def client_context(
    ca_file: Path | None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
) -> ssl.SSLContext:
    """Return a context that verifies the broker and may present a client certificate.

    Without `ca_file` the system's trusted CAs verify the broker.
    """
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None
        )
        if certfile is not None:
            context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load TLS files (CA {ca_file}, certificate {certfile}, key "
            f"{keyfile}): {exc}"
        ) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The parts of a verified client certificate that identify a gateway."""

    common_name: str
    serial: int


def peer_certificate(peer: dict[str, Any] | None) -> PeerCertificate | None:
    """Return the common name and serial of a verified peer certificate, if any.

    `peer` is what `ssl.SSLObject.getpeercert()` returns, which is empty unless
    the certificate was verified against the listener's CA.
    """
    if not peer:
        return None
    serial = peer.get("serialNumber")
    subject = peer.get("subject")
    if not isinstance(serial, str) or not isinstance(subject, tuple):
        return None
    for rdn in subject:
        for key, value in rdn:
            if key == "commonName":
                return PeerCertificate(str(value), int(serial, 16))
    return None
