"""Admin API: tenants, gateway enrolment, API keys, public flags, the audit log.

Every route under /api/v1/admin needs a key with `admin` scope, bound to the
tenant in the path; creating tenants needs the platform operator's key.
POST /api/v1/enrol is the one route without a key: the one-time enrolment
token is the credential.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from citymesh.api import auth
from citymesh.api.context import ApiContext
from citymesh.errors import NotFoundError, RegistryError
from citymesh.protocol.names import ID_PATTERN
from citymesh.registry.access import Scope
from citymesh.registry.api_keys import KeyInfo
from citymesh.registry.identities import AuditEntry, Identities
from citymesh.registry.pki import check_csr

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
enrolment_router = APIRouter(prefix="/api/v1", tags=["admin"])

Identifier = Annotated[str, StringConstraints(pattern=f"^{ID_PATTERN}$")]
TenantPath = Annotated[str, Path(pattern=f"^{ID_PATTERN}$")]
GatewayPath = Annotated[str, Path(pattern=f"^{ID_PATTERN}$")]
Glob = Annotated[str, StringConstraints(min_length=1, max_length=320)]


class TenantCreate(BaseModel):
    """A tenant to create."""

    tenant: Identifier
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    public: bool = False


class PublicFlag(BaseModel):
    """Whether data is readable by anyone, without a key."""

    public: bool


class MtlsFlag(BaseModel):
    """Whether a tenant's gateways must log in with client certificates."""

    required: bool


class TenantOut(BaseModel):
    """A tenant and its public flag."""

    tenant: str
    name: str
    public: bool


class GatewayAdd(BaseModel):
    """A gateway to allow to enrol."""

    gateway: Identifier
    token_ttl_s: Annotated[float, Field(gt=0, le=30 * 86_400)] = 86_400.0


class EnrolmentToken(BaseModel):
    """A one-time enrolment token, shown only in this response."""

    tenant: str
    gateway: str
    token: str


class KeyCreate(BaseModel):
    """An API key to issue; empty `sensors`/`actuators` mean all of the tenant."""

    scopes: Annotated[list[Scope], Field(min_length=1)]
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    user: Identifier | None = None
    sensors: Annotated[list[Glob], Field(max_length=100)] = []
    actuators: Annotated[list[Glob], Field(max_length=100)] = []


class IssuedKeyOut(BaseModel):
    """A new API key, shown only in this response."""

    key_id: str
    key: str


class KeyOut(BaseModel):
    """An API key as listed, without its secret."""

    key_id: str
    tenant: str | None
    user: str | None
    name: str
    scopes: list[str]
    sensors: list[str]
    actuators: list[str]
    created_ms: int
    revoked_ms: int | None


class UserCreate(BaseModel):
    """A user of a tenant."""

    user: Identifier
    name: Annotated[str, StringConstraints(max_length=200)] = ""


class ActuatorAdd(BaseModel):
    """An actuator behind a gateway."""

    gateway: Identifier
    actuator: Identifier
    name: Annotated[str, StringConstraints(max_length=200)] = ""


class AuditOut(BaseModel):
    """One audited actuator command."""

    at_ms: int
    key_id: str | None
    user: str | None
    tenant: str
    gateway: str
    target: str
    command: str
    args: dict[str, object]
    result: str
    detail: str


class EnrolRequest(BaseModel):
    """The one-time token a gateway got from its operator."""

    token: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    csr: Annotated[str, StringConstraints(max_length=16_000)] | None = None
    """PEM certificate signing request of the gateway's own key; the platform
    CA signs it when the gateway's tenant requires mutual TLS."""


class GatewayCredentialsOut(BaseModel):
    """The MQTT login of an enrolled gateway, shown only in this response."""

    tenant: str
    gateway: str
    username: str
    password: str
    require_mtls: bool = False
    """Whether the broker accepts this gateway only with its client certificate."""
    certificate: str | None = None
    """PEM client certificate, when the tenant requires mutual TLS."""
    ca_certificate: str | None = None
    """PEM certificate of the platform CA, which signed the broker's certificate
    when the broker uses one issued by citymesh."""


def _identities(request: Request) -> Identities:
    context: ApiContext = request.app.state.context
    return context.registry.identities


def _require_admin(request: Request, tenant: str | None) -> None:
    principal = auth.principal_of(request)
    if not principal.may_admin(tenant):
        what = "the platform" if tenant is None else f"tenant {tenant}"
        raise HTTPException(403, f"this API key may not administer {what}")


async def _run(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a registry call in a worker thread, mapping its errors to HTTP."""
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except RegistryError as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _key_out(info: KeyInfo) -> KeyOut:
    return KeyOut(
        key_id=info.key_id,
        tenant=info.tenant,
        user=info.user,
        name=info.name,
        scopes=list(info.scopes),
        sensors=list(info.sensors),
        actuators=list(info.actuators),
        created_ms=info.created_ms,
        revoked_ms=info.revoked_ms,
    )


def _audit_out(entry: AuditEntry) -> AuditOut:
    return AuditOut(
        at_ms=entry.at_ms,
        key_id=entry.key_id,
        user=entry.user,
        tenant=entry.tenant,
        gateway=entry.gateway,
        target=entry.target,
        command=entry.command,
        args=entry.args,
        result=entry.result,
        detail=entry.detail,
    )


@router.post(
    "/tenants", status_code=201, response_model=TenantOut, summary="Create a tenant"
)
async def create_tenant(request: Request, body: TenantCreate) -> TenantOut:
    """Create a tenant; needs the platform operator's admin key."""
    _require_admin(request, None)
    identities = _identities(request)
    if await _run(identities.tenant_exists, body.tenant):
        raise HTTPException(409, f"tenant {body.tenant!r} exists")
    await _run(identities.create_tenant, body.tenant, body.name, body.public)
    return TenantOut(
        tenant=body.tenant, name=body.name or body.tenant, public=body.public
    )


@router.put(
    "/tenants/{tenant}/public",
    status_code=204,
    summary="Open a tenant's sensor data to everyone, or close it",
)
async def set_tenant_public(
    request: Request, tenant: TenantPath, body: PublicFlag
) -> Response:
    """Set whether anyone may read every sensor of the tenant without a key."""
    _require_admin(request, tenant)
    await _run(_identities(request).set_tenant_public, tenant, body.public)
    return Response(status_code=204)


@router.put(
    "/tenants/{tenant}/mtls",
    status_code=204,
    summary="Require client certificates of a tenant's gateways, or not",
)
async def set_tenant_mtls(
    request: Request, tenant: TenantPath, body: MtlsFlag
) -> Response:
    """Set whether the tenant's gateways must log in with mutual TLS."""
    _require_admin(request, tenant)
    certificates = _identities(request).certificates
    await _run(certificates.set_require_mtls, tenant, body.required)
    return Response(status_code=204)


@router.put(
    "/sensors/{series}/public",
    status_code=204,
    summary="Open one sensor's series to everyone, or close it",
)
async def set_sensor_public(
    request: Request,
    series: Annotated[str, Path(max_length=320)],
    body: PublicFlag,
) -> Response:
    """Set whether anyone may read the series of one sensor without a key."""
    _require_admin(request, series.split(".", 1)[0])
    await _run(_identities(request).set_sensor_public, series, body.public)
    return Response(status_code=204)


@router.post(
    "/tenants/{tenant}/gateways",
    status_code=201,
    response_model=EnrolmentToken,
    summary="Allow a gateway to enrol and return its one-time token",
)
async def add_gateway(
    request: Request, tenant: TenantPath, body: GatewayAdd
) -> EnrolmentToken:
    """Issue a one-time enrolment token for a gateway of the tenant."""
    _require_admin(request, tenant)
    token = await _run(
        _identities(request).add_gateway, tenant, body.gateway, body.token_ttl_s
    )
    return EnrolmentToken(tenant=tenant, gateway=body.gateway, token=token)


@router.delete(
    "/tenants/{tenant}/gateways/{gateway}",
    status_code=204,
    summary="Revoke a gateway's credentials",
)
async def revoke_gateway(
    request: Request, tenant: TenantPath, gateway: GatewayPath
) -> Response:
    """Cut a gateway off: its next login and every later message are rejected."""
    _require_admin(request, tenant)
    await _run(_identities(request).revoke_gateway, tenant, gateway)
    return Response(status_code=204)


@router.post(
    "/tenants/{tenant}/users",
    status_code=201,
    response_model=UserCreate,
    summary="Create a user",
)
async def create_user(
    request: Request, tenant: TenantPath, body: UserCreate
) -> UserCreate:
    """Create a user of the tenant, to whom keys can be issued."""
    _require_admin(request, tenant)
    await _run(_identities(request).api_keys.create_user, tenant, body.user, body.name)
    return body


@router.post(
    "/tenants/{tenant}/keys",
    status_code=201,
    response_model=IssuedKeyOut,
    summary="Issue an API key; the key is shown only in this response",
)
async def issue_key(
    request: Request, tenant: TenantPath, body: KeyCreate
) -> IssuedKeyOut:
    """Issue an API key bound to the tenant with the given scopes and grants."""
    _require_admin(request, tenant)
    issued = await _run(
        _identities(request).api_keys.issue_key,
        tenant,
        body.scopes,
        body.name,
        body.user,
        body.sensors,
        body.actuators,
    )
    return IssuedKeyOut(key_id=issued.key_id, key=issued.token)


@router.get(
    "/tenants/{tenant}/keys", response_model=list[KeyOut], summary="List API keys"
)
async def list_keys(request: Request, tenant: TenantPath) -> list[KeyOut]:
    """Return the tenant's keys with scopes and grants, never their secrets."""
    _require_admin(request, tenant)
    keys = await _run(_identities(request).api_keys.list_keys, tenant)
    return [_key_out(k) for k in keys]


@router.delete(
    "/tenants/{tenant}/keys/{key_id}", status_code=204, summary="Revoke an API key"
)
async def revoke_key(
    request: Request,
    tenant: TenantPath,
    key_id: Annotated[str, Path(pattern="^[0-9a-f]{12}$")],
) -> Response:
    """Revoke a key of the tenant; it stops working with the next request."""
    _require_admin(request, tenant)
    await _run(_identities(request).api_keys.revoke_key, key_id, tenant)
    return Response(status_code=204)


@router.post(
    "/tenants/{tenant}/actuators",
    status_code=201,
    response_model=ActuatorAdd,
    summary="Register an actuator behind a gateway",
)
async def add_actuator(
    request: Request, tenant: TenantPath, body: ActuatorAdd
) -> ActuatorAdd:
    """Register an actuator that commands may name in `args.actuator`."""
    _require_admin(request, tenant)
    await _run(
        _identities(request).add_actuator,
        tenant,
        body.gateway,
        body.actuator,
        body.name,
    )
    return body


@router.get(
    "/tenants/{tenant}/audit",
    response_model=list[AuditOut],
    summary="The audit log of actuator commands, newest first",
)
async def audit_log(
    request: Request,
    tenant: TenantPath,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[AuditOut]:
    """Return who sent which command to what, when, and with what result."""
    _require_admin(request, tenant)
    entries = await _run(_identities(request).audit_log, tenant, limit)
    return [_audit_out(e) for e in entries]


@enrolment_router.post(
    "/enrol",
    response_model=GatewayCredentialsOut,
    summary="Exchange a one-time enrolment token for a gateway's MQTT login",
    responses={404: {"description": "token invalid, used or expired"}},
)
async def enrol(request: Request, body: EnrolRequest) -> GatewayCredentialsOut:
    """Redeem an enrolment token; the password is shown only in this response."""
    host = request.client.host if request.client is not None else "unknown"
    limiter: auth.RateLimiter = request.app.state.rate_limiter
    wait_s = limiter.acquire(auth.ANONYMOUS_BUCKET.format(host))
    if wait_s > 0:
        raise HTTPException(
            429, "rate limit exceeded; retry later", headers={"Retry-After": "1"}
        )
    identities = _identities(request)
    context: ApiContext = request.app.state.context
    if body.csr is not None:
        await _run(check_csr, body.csr)
    credentials = await _run(identities.redeem, body.token)

    out = GatewayCredentialsOut(
        tenant=credentials.tenant,
        gateway=credentials.gateway,
        username=credentials.username,
        password=credentials.password,
    )
    if context.ca is None:
        return out

    out.ca_certificate = context.ca.certificate_pem
    certificates = identities.certificates
    out.require_mtls = await _run(certificates.requires_mtls, credentials.tenant)
    if out.require_mtls and body.csr is not None:
        issued = await _run(
            context.ca.sign_client, body.csr, credentials.tenant, credentials.gateway
        )
        await _run(
            certificates.record,
            credentials.tenant,
            credentials.gateway,
            issued.serial,
            issued.not_after_ms,
        )
        out.certificate = issued.pem
    return out
