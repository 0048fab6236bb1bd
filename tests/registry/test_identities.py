"""Users, keys, enrolment and public data in the registry, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, select, text

from citymesh.errors import NotFoundError
from citymesh.protocol.messages import Birth, DeviceInfo, SensorInfo
from citymesh.registry import migrate
from citymesh.registry.access import ANONYMOUS, PublicData, ReadAccess, Scope
from citymesh.registry.identities import AuditEntry, GatewayState
from citymesh.registry.models import DeviceRow, GatewayRow, SensorRow, TenantRow
from citymesh.registry.security_models import ApiKeyRow, GatewayCredentialRow
from citymesh.registry.store import Registry


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A registry on SQLite in tmp_path, or on the test run's PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = Registry(url)
    yield opened
    opened.close()


def _tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def _birth(tenant: str, gateway: str, devices: list[str]) -> Birth:
    return Birth(
        v=1,
        tenant=tenant,
        gateway=gateway,
        site="hq",
        boot_ms=1_700_000_000_000,
        software="test",
        devices=[
            DeviceInfo(device=d, name=d, sensors=[SensorInfo(quantity="co2")])
            for d in devices
        ],
    )


def test_key_stored_hashed_and_authenticates(registry: Registry) -> None:
    tenant = _tenant()
    identities = registry.identities
    identities.create_tenant(tenant)
    issued = identities.api_keys.issue_key(tenant, ["read", "command"], name="ops")
    _, _, secret = issued.token.split("_", 2)

    with registry._sessions() as session:
        row = session.get(ApiKeyRow, issued.key_id)
        assert row is not None
        stored = " ".join(str(v) for v in vars(row).values())
    assert row.secret_hash.startswith("$argon2id$")
    assert secret not in stored

    principal = identities.api_keys.authenticate_key(issued.token)
    assert principal is not None
    assert principal.tenant == tenant
    assert principal.scopes == frozenset({Scope.READ, Scope.COMMAND})
    assert identities.api_keys.authenticate_key(issued.token[:-1] + "x") is None
    assert identities.api_keys.authenticate_key("not-a-key") is None
    assert identities.api_keys.authenticate_key(f"cmk_{issued.key_id}_") is None


def test_key_revoked_stops_at_once(registry: Registry) -> None:
    tenant = _tenant()
    identities = registry.identities
    identities.create_tenant(tenant)
    issued = identities.api_keys.issue_key(tenant, ["read"])
    assert identities.api_keys.authenticate_key(issued.token) is not None

    identities.api_keys.revoke_key(issued.key_id, tenant)

    assert identities.api_keys.authenticate_key(issued.token) is None
    (listed,) = identities.api_keys.list_keys(tenant)
    assert listed.revoked_ms is not None
    with pytest.raises(NotFoundError):
        identities.api_keys.revoke_key(issued.key_id, "other-tenant")


def test_key_unknown_scope_rejected(registry: Registry) -> None:
    tenant = _tenant()
    registry.identities.create_tenant(tenant)
    with pytest.raises(ValueError, match="unknown scope 'root'"):
        registry.identities.api_keys.issue_key(tenant, ["root"])


def test_enrolment_token_works_once(registry: Registry) -> None:
    tenant = _tenant()
    identities = registry.identities
    identities.create_tenant(tenant)
    token = identities.add_gateway(tenant, "gw-1")
    assert identities.gateway_state(tenant, "gw-1") is GatewayState.PENDING

    login = identities.redeem(token)

    assert login.username == f"{tenant}.gw-1"
    assert identities.verify_gateway(tenant, "gw-1", login.password)
    assert not identities.verify_gateway(tenant, "gw-1", login.password + "x")
    assert identities.gateway_state(tenant, "gw-1") is GatewayState.ACTIVE
    with pytest.raises(NotFoundError, match="invalid, used or expired"):
        identities.redeem(token)
    with registry._sessions() as session:
        row = session.get(GatewayCredentialRow, (tenant, "gw-1"))
        assert row is not None
        assert row.password_hash is not None
        assert row.mosquitto_hash is not None
    assert row.password_hash.startswith("$argon2id$")
    assert row.mosquitto_hash.startswith("$7$101$")
    assert login.password not in row.password_hash + row.mosquitto_hash


def test_enrolment_token_expires(registry: Registry) -> None:
    tenant = _tenant()
    identities = registry.identities
    identities.create_tenant(tenant)
    token = identities.add_gateway(tenant, "gw-1", token_ttl_s=0.001)
    time.sleep(0.01)
    with pytest.raises(NotFoundError):
        identities.redeem(token)


def test_gateway_revoked_cannot_log_in(registry: Registry) -> None:
    tenant = _tenant()
    identities = registry.identities
    identities.create_tenant(tenant)
    login = identities.enrol(tenant, "gw-1")

    identities.revoke_gateway(tenant, "gw-1")

    assert identities.gateway_state(tenant, "gw-1") is GatewayState.REVOKED
    assert not identities.verify_gateway(tenant, "gw-1", login.password)
    refused = registry.check_origin(tenant, "gw-1")
    assert refused is not None
    assert refused.reason == "revoked_gateway"
    unknown = registry.check_origin(tenant, "gw-2")
    assert unknown is not None
    assert unknown.reason == "unknown_gateway"
    assert (tenant, "gw-1") not in {(t, g) for t, g, _ in identities.active_gateways()}


def test_scoped_listing_hides_other_tenants(registry: Registry) -> None:
    mine, theirs = _tenant(), _tenant()
    identities = registry.identities
    for tenant in (mine, theirs):
        identities.create_tenant(tenant)
        registry.record_birth(_birth(tenant, "gw-1", ["room-1", "room-2"]), 1)
    identities.set_sensor_public(f"{theirs}.hq.gw-1.room-2.co2", True)
    key = identities.api_keys.issue_key(mine, ["read"])
    principal = identities.api_keys.authenticate_key(key.token)
    assert principal is not None

    view = registry.scoped(ReadAccess(principal, identities.public_data()))
    sensors = {r.series for r in view.list_rows(SensorRow)}
    tenants = {r.tenant for r in view.list_rows(TenantRow)}
    devices = {(r.tenant, r.device) for r in view.list_rows(DeviceRow)}

    assert {s for s in sensors if s.startswith((mine, theirs))} == {
        f"{mine}.hq.gw-1.room-1.co2",
        f"{mine}.hq.gw-1.room-2.co2",
        f"{theirs}.hq.gw-1.room-2.co2",
    }
    assert {mine, theirs} <= tenants
    assert (theirs, "room-1") not in devices
    assert (theirs, "room-2") in devices

    anonymous = registry.scoped(ReadAccess(ANONYMOUS, PublicData()))
    assert not [r for r in anonymous.list_rows(GatewayRow) if r.tenant == mine]


def test_audit_log_keeps_newest_first(registry: Registry) -> None:
    tenant = _tenant()
    identities = registry.identities
    identities.create_tenant(tenant)
    for index, result in enumerate(("ok", "denied")):
        identities.record_command(
            AuditEntry(
                at_ms=1000 + index,
                key_id="k" * 12,
                user=None,
                tenant=tenant,
                gateway="gw-1",
                target=f"{tenant}.gw-1.valve-1",
                command="open",
                args={"actuator": "valve-1"},
                result=result,
                detail="",
            )
        )
    entries = identities.audit_log(tenant)
    assert [e.result for e in entries] == ["denied", "ok"]
    assert entries[0].args == {"actuator": "valve-1"}


def test_migrate_adopts_registry_without_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        config = migrate._config(connection)
        command.upgrade(config, migrate.BASELINE_REVISION)
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(
            text("INSERT INTO tenants (tenant, name) VALUES ('old', '')")
        )

    registry = Registry(url)

    columns = {c["name"] for c in inspect(engine).get_columns("tenants")}
    assert "public" in columns
    with registry._sessions() as session:
        assert session.scalars(select(TenantRow.tenant)).all() == ["old"]
    registry.close()
    engine.dispose()
