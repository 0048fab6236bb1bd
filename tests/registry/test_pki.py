"""The platform CA and the registry's record of gateway certificates."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from citymesh.registry.pki import CertificateAuthority, InvalidCertificateRequest
from citymesh.registry.store import Registry
from citymesh.transport.tls import make_client_key


def _common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_ca_reloaded_from_data_dir(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path)
    second = CertificateAuthority.load_or_create(tmp_path)

    assert first.certificate_pem == second.certificate_pem
    assert (tmp_path / "pki" / "ca.key").stat().st_mode & 0o077 == 0


def test_sign_client_names_gateway_not_request(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path)
    _, csr = make_client_key("bolt", "gw-9")

    issued = ca.sign_client(csr.decode(), "acme", "gw-1")

    cert = x509.load_pem_x509_certificate(issued.pem.encode())
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert _common_name(cert) == "acme/gw-1"
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.serial_number == issued.serial
    assert cert.issuer == ca.certificate.subject


def test_sign_client_rejects_invalid_request(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path)

    with pytest.raises(InvalidCertificateRequest, match="invalid certificate"):
        ca.sign_client("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", "acme", "gw-1")


def test_server_certificate_names_hosts(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path)

    files = ca.issue_server(["127.0.0.1", "mqtt.example.org"])

    cert = x509.load_pem_x509_certificate(files.certfile.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == ["mqtt.example.org"]
    assert [str(a) for a in names.value.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1"
    ]


def test_certificate_invalid_after_revoke_or_reenrol(tmp_path: Path) -> None:
    registry = Registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    identities = registry.identities
    certificates = identities.certificates
    ca = CertificateAuthority.load_or_create(tmp_path)
    identities.create_tenant("acme")
    serials = []
    for gateway in ("gw-1", "gw-2"):
        identities.enrol("acme", gateway)
        issued = ca.sign_client(
            make_client_key("acme", gateway)[1].decode(), "acme", gateway
        )
        certificates.record("acme", gateway, issued.serial, issued.not_after_ms)
        serials.append(issued.serial)

    valid_before = [
        certificates.is_valid("acme", g, s)
        for g, s in zip(("gw-1", "gw-2"), serials, strict=True)
    ]
    identities.revoke_gateway("acme", "gw-1")
    identities.enrol("acme", "gw-2")
    revoked = sorted(serial for serial, _ in certificates.revoked())
    ca.write_crl(certificates.revoked(), tmp_path / "crl.pem")
    crl = x509.load_pem_x509_crl((tmp_path / "crl.pem").read_bytes())

    assert valid_before == [True, True]
    assert not certificates.is_valid("acme", "gw-1", serials[0])
    assert not certificates.is_valid("acme", "gw-2", serials[1])
    assert not certificates.is_valid("acme", "gw-1", serials[1])
    assert revoked == sorted(serials)
    assert sorted(r.serial_number for r in crl) == sorted(serials)
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    registry.close()
