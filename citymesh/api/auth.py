"""Authentication and authorisation of HTTP requests.

`authorize` is a dependency added to every data router. It resolves the API
key from `Authorization: Bearer <key>` or `X-API-Key: <key>`, applies the
per-key rate limit, and checks the scope the route needs: reads (GET, and the
read-only Graphite endpoints) need `read`, commands `command`, /api/v1/admin
`admin`, other writes `write`. A request without a key is anonymous and may
only read public data. Handlers then reach the store and registry through
`scoped_context`, which shows only what the caller may read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import threading
import time
from typing import Annotated, Any

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citymesh.api.context import ApiContext
from citymesh.api.scoped import ScopedStore
from citymesh.errors import CommandTimeout, TransportError
from citymesh.protocol.messages import CommandResponse
from citymesh.protocol.names import is_identifier
from citymesh.registry.access import ANONYMOUS, Principal, ReadAccess
from citymesh.registry.access import Scope as AccessScope
from citymesh.registry.identities import AuditEntry, Identities
from citymesh.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="An API key: cmk_<id>_<secret>")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key: cmk_<id>_<secret>"
)
# Requests from one client address without a key share one bucket, keyed so.
ANONYMOUS_BUCKET = "address {}"


class RateLimiter:
    """Token buckets per key: `burst` requests at once, `rate_per_s` sustained."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, bucket: str) -> float:
        """Take one token; return 0, or the seconds to wait when none is left."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(bucket, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens >= 1.0:
                self._buckets[bucket] = (tokens - 1.0, now)
                return 0.0
            self._buckets[bucket] = (tokens, now)
            return (1.0 - tokens) / self._rate


class _TooLarge(Exception):
    """The request body passed the configured limit."""


class BodySizeLimit:
    """ASGI middleware: reject request bodies above `max_bytes` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check Content-Length, then count the body as it streams in."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._reject(send)
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = (
            f'{{"detail":"request body larger than {self.max_bytes} bytes"}}'.encode()
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


def _identities(request: Request) -> Identities:
    return _context(request).registry.identities


def required_scope(request: Request) -> AccessScope:
    """Return the scope the matched route needs."""
    route = request.scope.get("route")
    path = str(getattr(route, "path", request.url.path))
    if path.startswith("/api/v1/admin"):
        return AccessScope.ADMIN
    if path.endswith("/commands") and request.method == "POST":
        return AccessScope.COMMAND
    if not path.startswith("/api/v1") or request.method in ("GET", "HEAD"):
        return AccessScope.READ
    return AccessScope.WRITE


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def authorize(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
) -> Principal:
    """Resolve the caller, rate-limit it and check the scope of the route."""
    token = bearer.credentials if bearer is not None else api_key
    host = request.client.host if request.client is not None else "unknown"
    principal = await admit(
        _identities(request),
        request.app.state.rate_limiter,
        token,
        host,
        request.url.path,
        required_scope(request),
    )
    request.state.principal = principal
    return principal


def token_from_headers(authorization: str | None, api_key: str | None) -> str | None:
    """Return the key of `Authorization: Bearer <key>`, else of `X-API-Key`.

    This parses the headers as FastAPI's HTTPBearer and APIKeyHeader with
    auto_error=False do, for routes that bypass FastAPI's dependencies.
    """
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and credentials:
            return credentials
    return api_key or None


async def admit(
    identities: Identities,
    limiter: RateLimiter,
    token: str | None,
    host: str,
    path: str,
    needed: AccessScope,
) -> Principal:
    """Resolve the caller of a request, rate-limit it and check `needed`.

    Raises HTTPException with 401, 403 or 429. A key verified less than
    api_keys.CACHE_TTL_S ago is resolved on the event loop, any other in a
    worker thread, because its check reads the registry and may run argon2.
    """
    if token:
        principal = identities.api_keys.cached_principal(token)
        if principal is None:
            principal = await asyncio.to_thread(
                identities.api_keys.authenticate_key, token
            )
        if principal is None:
            # The key itself is never logged, only that one failed.
            logger.info("rejected an invalid or revoked API key on %s", path)
            raise _unauthorized("invalid or revoked API key")
        bucket = f"key {principal.key_id}"
    else:
        principal = ANONYMOUS
        bucket = ANONYMOUS_BUCKET.format(host)
    wait_s = limiter.acquire(bucket)
    if wait_s > 0:
        raise HTTPException(
            429,
            "rate limit exceeded; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )
    if principal.anonymous and needed is not AccessScope.READ:
        raise _unauthorized(f"this endpoint needs an API key with {needed} scope")
    if not principal.has(needed):
        raise HTTPException(403, f"this endpoint needs an API key with {needed} scope")
    return principal


def principal_of(request: Request) -> Principal:
    """Return the caller that `authorize` resolved for this request."""
    principal: Principal = getattr(request.state, "principal", ANONYMOUS)
    return principal


def require_platform(request: Request) -> None:
    """Raise 401 or 403 unless the caller has the platform operator's key."""
    principal = principal_of(request)
    if principal.anonymous:
        raise _unauthorized("this endpoint needs the platform operator's key")
    if not principal.platform:
        raise HTTPException(403, "this endpoint needs the platform operator's key")


def read_access(request: Request) -> ReadAccess:
    """Return what this request may read: the caller's grants and public data."""
    return ReadAccess(principal_of(request), _identities(request).public_data())


def scoped_store(request: Request) -> TimeSeriesStore:
    """Return the store as this request may see it."""
    return ScopedStore(_context(request).store, read_access(request))


def scoped_context(request: Request) -> ApiContext:
    """Return the services with store and registry limited to this request."""
    context = _context(request)
    access = read_access(request)
    return dataclasses.replace(
        context,
        store=ScopedStore(context.store, access),
        registry=context.registry.scoped(access),
    )


class AuditedCommands:
    """Sends one caller's commands through the collector and audits each."""

    def __init__(
        self, request: Request, principal: Principal, target: str, sender: Any
    ) -> None:
        self._identities = _identities(request)
        self._principal = principal
        self._target = target
        self._sender = sender

    async def record(
        self,
        tenant: str,
        gateway: str,
        command: str,
        args: dict[str, Any],
        result: str,
        detail: str = "",
    ) -> None:
        """Append one entry to the audit log."""
        entry = AuditEntry(
            at_ms=time.time_ns() // 1_000_000,
            key_id=self._principal.key_id,
            user=self._principal.user,
            tenant=tenant,
            gateway=gateway,
            target=self._target,
            command=command,
            args=args,
            result=result,
            detail=detail,
        )
        await asyncio.to_thread(self._identities.record_command, entry)
        logger.info(
            "command %s to %s by key %s: %s",
            command,
            self._target,
            self._principal.key_id,
            result,
        )

    async def send_command(
        self,
        tenant: str,
        gateway: str,
        command: str,
        args: dict[str, Any],
        timeout_s: float,
    ) -> CommandResponse:
        """Send a command, recording its outcome in the audit log."""
        try:
            response: CommandResponse = await self._sender.send_command(
                tenant, gateway, command, args, timeout_s
            )
        except CommandTimeout as exc:
            await self.record(tenant, gateway, command, args, "timeout", str(exc))
            raise
        except TransportError as exc:
            await self.record(tenant, gateway, command, args, "unavailable", str(exc))
            raise
        result = "ok" if response.ok else "failed"
        await self.record(tenant, gateway, command, args, result, response.error)
        return response


def command_target(tenant: str, gateway: str, args: dict[str, Any]) -> str:
    """Return what a command drives: `<tenant>.<gateway>[.<actuator>]`."""
    actuator = args.get("actuator")
    if actuator is None:
        return f"{tenant}.{gateway}"
    if not isinstance(actuator, str) or not is_identifier(actuator):
        raise HTTPException(
            422, f"invalid args.actuator {actuator!r}: use an actuator id"
        )
    return f"{tenant}.{gateway}.{actuator}"


async def command_sender(
    request: Request,
    tenant: str,
    gateway: str,
    command: str,
    args: dict[str, Any],
) -> AuditedCommands | None:
    """Check that the caller may send this command; return an auditing sender.

    A rejected command is audited as `denied` and gets 403, also when
    the gateway does not exist, so callers learn nothing of other tenants.
    Returns None when no collector runs in this process.
    """
    principal = principal_of(request)
    target = command_target(tenant, gateway, args)
    collector = _context(request).collector
    sender = AuditedCommands(request, principal, target, collector)
    if not principal.may_command(tenant, target):
        if is_identifier(tenant) and is_identifier(gateway):
            await sender.record(tenant, gateway, command, args, "denied")
        raise HTTPException(403, f"this API key may not command {target}")
    return None if collector is None else sender
