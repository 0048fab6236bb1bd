"""TLS for MQTT: client contexts, gateway certificate names and signing requests.

A gateway's client certificate names it in its subject common name as
`<tenant>/<gateway>`. The platform's CA (citymesh/registry/pki.py) signs the
certificate signing request (CSR) that a gateway makes here at enrolment, so
the gateway's private key never leaves it.
"""

from __future__ import annotations

import logging
import socket
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


# TLS alerts by which a broker rejects the client certificate itself; a retry
# with the same certificate meets the same alert.
_CERTIFICATE_ALERTS = {
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "the certificate is revoked",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the certificate has expired",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the certificate is malformed or mis-signed",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the certificate is not accepted",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "the certificate type is not supported",
    "TLSV1_ALERT_UNKNOWN_CA": "the certificate is signed by a CA the broker "
    "does not trust",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the broker requires a client certificate",
}


def certificate_rejection(
    host: str, port: int, context: ssl.SSLContext, timeout_s: float = 3.0
) -> str | None:
    """Return why a TLS broker rejects our client certificate, or None if it does not.

    MQTT clients report such a rejection as a bare timeout or disconnect. With
    TLS 1.3 the broker checks the certificate after the client's side of the
    handshake is done, so the alert shows only on the first read. This probe
    therefore makes one handshake and one read. Connection errors and timeouts
    give None.
    """
    try:
        with (
            socket.create_connection((host, port), timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.settimeout(timeout_s)
            tls.recv(1)
    except ssl.SSLError as exc:
        reason = exc.reason or ""
        meaning = _CERTIFICATE_ALERTS.get(reason)
        return None if meaning is None else f"{meaning} ({reason})"
    except OSError:
        return None
    return None


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
