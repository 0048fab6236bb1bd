"""Rate limits per key, request size limits and HTTPS with a configured certificate."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from citymesh.registry.access import Scope
from citymesh.server.settings import HttpSettings, SecuritySettings
from tests.conftest import RunningServer, _start, server_settings


@pytest.fixture
def strict_server(tmp_path: Path, tenant: str) -> Iterator[RunningServer]:
    """A data centre allowing 3 requests at once and 1 per second per key."""
    settings = server_settings(tmp_path, tenant).model_copy(
        update={
            "security": SecuritySettings(
                rate_limit_per_s=1.0, rate_limit_burst=3, max_request_bytes=4096
            )
        }
    )
    running, shutdown = _start(settings, tenant)
    yield running
    shutdown()


def test_rate_limit_per_key_answers_429(strict_server: RunningServer) -> None:
    server = strict_server
    first = server.identities.api_keys.issue_key(server.tenant, [Scope.READ])
    second = server.identities.api_keys.issue_key(server.tenant, [Scope.READ])
    url = f"{server.http_url}/api/v1/sensors"

    codes = [
        httpx.get(url, headers={"X-API-Key": first.token}).status_code for _ in range(5)
    ]
    limited = httpx.get(url, headers={"X-API-Key": first.token})
    other = httpx.get(url, headers={"X-API-Key": second.token})

    assert codes[:3] == [200, 200, 200]
    assert 429 in codes[3:]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert other.status_code == 200


def test_request_body_limit_answers_413(strict_server: RunningServer) -> None:
    server = strict_server
    url = f"{server.http_url}/render"
    big = {"target": "x" * 10_000}

    declared = httpx.post(url, data=big, headers=server.headers)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"target=" + b"y" * 1000 + b"&"

    streamed = httpx.post(
        url,
        content=chunks(),
        headers={**server.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "4096" in streamed.json()["detail"]


def test_graphite_get_shares_rate_limit(strict_server: RunningServer) -> None:
    server = strict_server
    key = server.identities.api_keys.issue_key(server.tenant, [Scope.READ])
    headers = {"X-API-Key": key.token}
    render = f"{server.http_url}/render"
    params = {"target": f"{server.tenant}.a.b.c.d", "from": "-1h"}

    codes = [
        httpx.get(render, params=params, headers=headers).status_code,
        httpx.post(render, data=params, headers=headers).status_code,
        httpx.get(
            f"{server.http_url}/metrics/find", params={"query": "*"}, headers=headers
        ).status_code,
    ]
    limited = httpx.get(render, params=params, headers=headers)

    assert codes == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.json() == {"detail": "rate limit exceeded; retry later"}
    assert int(limited.headers["Retry-After"]) >= 1


def test_graphite_get_body_limit_answers_413(strict_server: RunningServer) -> None:
    server = strict_server
    response = httpx.request(
        "GET",
        f"{server.http_url}/render",
        params={"target": "a.b"},
        content=b"x" * 10_000,
        headers=server.headers,
    )

    assert response.status_code == 413
    assert "4096" in response.json()["detail"]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "server.pem"
    key_path = directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_with_configured_certificate(tmp_path: Path, tenant: str) -> None:
    cert, key = _self_signed(tmp_path)
    base = server_settings(tmp_path, tenant)
    settings = base.model_copy(
        update={"http": HttpSettings(port=0, tls_certfile=cert, tls_keyfile=key)}
    )
    running, shutdown = _start(settings, tenant)
    try:
        assert running.http_url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        response = httpx.get(f"{running.http_url}/api/v1/sensors", verify=context)
        assert response.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{running.http_url}/api/v1/sensors")
    finally:
        shutdown()
