"""Mosquitto files and the CRL generated from the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from citymesh.registry import mosquitto
from citymesh.registry.mosquitto import MosquittoSync
from citymesh.registry.pki import CertificateAuthority
from citymesh.registry.store import Registry


def test_sync_refreshes_crl_before_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    ca = CertificateAuthority.load_or_create(tmp_path)
    sync = MosquittoSync(registry.identities, tmp_path / "mqtt", {}, ca=ca)
    crl_path = tmp_path / "mqtt" / mosquitto.CRL_FILE

    first = sync.sync()
    unchanged = sync.sync()
    first_crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    monkeypatch.setattr(mosquitto, "CRL_REFRESH_S", 0.0)
    refreshed = sync.sync()
    registry.close()

    assert first
    assert not unchanged
    assert refreshed
    assert first_crl.next_update_utc is not None
    assert crl_path.exists()
