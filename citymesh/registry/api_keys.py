"""Users of tenants and their API keys: issuing, listing, revoking, authenticating.

A key that authenticated is remembered for CACHE_TTL_S, so later requests with
it cost no database query and no argon2 verification. A revocation through
this object takes effect at once, one made by another process (the admin CLI)
within CACHE_TTL_S. Scopes and grants of a key never change after it is issued.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from citymesh.errors import NotFoundError, RegistryError
from citymesh.protocol.names import check_identifier
from citymesh.registry.access import Principal, Scope, parse_scopes
from citymesh.registry.models import TenantRow
from citymesh.registry.secrets import (
    API_KEY_PREFIX,
    SecretVerifier,
    issue,
    split_token,
)
from citymesh.registry.security_models import ApiKeyRow, KeyGrantRow, UserRow
from citymesh.registry.tables import RegistryTables
from citymesh.storage.patterns import compile_glob

logger = logging.getLogger(__name__)


# How long a verified key is trusted without reading its row again. This
# bounds the delay of a revocation made by another process.
CACHE_TTL_S = 2.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new API key; `token` is shown once and stored nowhere."""

    key_id: str
    token: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """An API key as listed: everything but its secret."""

    key_id: str
    tenant: str | None
    user: str | None
    name: str
    scopes: tuple[str, ...]
    sensors: tuple[str, ...]
    actuators: tuple[str, ...]
    created_ms: int
    revoked_ms: int | None


@dataclass(frozen=True, slots=True)
class _VerifiedKey:
    """A key that authenticated, as the key cache stores it."""

    checked_at: float
    """time.monotonic() of the check."""
    secret_digest: bytes
    """SHA-256 of the secret, compared in constant time on later requests."""
    principal: Principal


class ApiKeys(RegistryTables):
    """Users and API keys of one registry, with the keys verified recently."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        lock: threading.Lock,
        verifier: SecretVerifier,
    ) -> None:
        super().__init__(sessions, lock)
        self._verifier = verifier
        # Entries exist only for keys that authenticated, so the number of
        # issued keys bounds the size. Each revocation bumps the generation.
        self._verified: dict[str, _VerifiedKey] = {}
        self._generation = 0
        self._cache_lock = threading.Lock()

    def create_user(self, tenant: str, user: str, name: str = "") -> None:
        """Create a user of a tenant."""
        check_identifier(user, "user")

        def work(session: Session) -> None:
            if session.get(TenantRow, tenant) is None:
                raise NotFoundError(f"tenant {tenant!r} not found")
            if session.get(UserRow, (tenant, user)) is not None:
                raise RegistryError(f"user {user!r} of tenant {tenant!r} exists")
            session.add(
                UserRow(tenant=tenant, user=user, name=name, created_ms=_now_ms())
            )

        self._write(work)
        logger.info("user %s of tenant %s created", user, tenant)

    def issue_key(
        self,
        tenant: str | None,
        scopes: Iterable[Scope | str],
        name: str = "",
        user: str | None = None,
        sensors: Iterable[str] = (),
        actuators: Iterable[str] = (),
    ) -> IssuedKey:
        """Create an API key bound to `tenant` (None: the platform operator's)."""
        scope_set = parse_scopes(" ".join(str(s) for s in scopes))
        if not scope_set:
            raise ValueError(
                "a key needs at least one scope: read, write, command, admin"
            )
        grants = [("sensor", p) for p in sensors] + [("actuator", p) for p in actuators]
        for _, pattern in grants:
            compile_glob(pattern)
        secret = issue(API_KEY_PREFIX)

        def work(session: Session) -> None:
            if tenant is not None and session.get(TenantRow, tenant) is None:
                raise NotFoundError(f"tenant {tenant!r} not found")
            if user is not None and session.get(UserRow, (tenant, user)) is None:
                raise NotFoundError(f"user {user!r} of tenant {tenant!r} not found")
            session.add(
                ApiKeyRow(
                    key_id=secret.id,
                    secret_hash=secret.secret_hash,
                    tenant=tenant,
                    user=user,
                    name=name,
                    scopes=" ".join(sorted(s.value for s in scope_set)),
                    created_ms=_now_ms(),
                )
            )
            session.flush()
            for kind, pattern in set(grants):
                session.add(KeyGrantRow(key_id=secret.id, kind=kind, pattern=pattern))

        self._write(work)
        logger.info(
            "API key %s issued for %s with scopes %s",
            secret.id,
            tenant or "the platform",
            sorted(s.value for s in scope_set),
        )
        return IssuedKey(secret.id, secret.token)

    def revoke_key(self, key_id: str, tenant: str | None = None) -> None:
        """Revoke a key at once; with `tenant`, only a key of that tenant."""

        def work(session: Session) -> None:
            row = session.get(ApiKeyRow, key_id)
            if row is None or (tenant is not None and row.tenant != tenant):
                raise NotFoundError(f"API key {key_id!r} not found")
            if row.revoked_ms is None:
                row.revoked_ms = _now_ms()

        self._write(work)
        self._forget(key_id)
        logger.info("API key %s revoked", key_id)

    def list_keys(self, tenant: str | None = None) -> list[KeyInfo]:
        """Return the keys of a tenant, or every key, without secrets."""

        def work(session: Session) -> list[KeyInfo]:
            statement = select(ApiKeyRow).order_by(ApiKeyRow.created_ms)
            if tenant is not None:
                statement = statement.where(ApiKeyRow.tenant == tenant)
            keys = session.scalars(statement).all()
            grants = session.scalars(select(KeyGrantRow)).all()
            return [_key_info(row, grants) for row in keys]

        return self._read(work)

    def authenticate_key(self, token: str) -> Principal | None:
        """Return the principal of a valid, unrevoked key, else None.

        A key verified less than CACHE_TTL_S ago costs no database query.
        """
        parts = split_token(token, API_KEY_PREFIX)
        if parts is None:
            return None
        key_id, secret = parts
        digest = _digest(secret)
        remembered = self._remembered(key_id, digest)
        if remembered is not None:
            return remembered
        with self._cache_lock:
            generation = self._generation

        def work(session: Session) -> tuple[ApiKeyRow, list[KeyGrantRow]] | None:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.revoked_ms is not None:
                return None
            grants = session.scalars(
                select(KeyGrantRow).where(KeyGrantRow.key_id == key_id)
            ).all()
            return row, list(grants)

        found = self._read(work)
        if found is None:
            return None
        row, grants = found
        if not self._verifier.verify(f"key {key_id}", secret, row.secret_hash):
            return None
        principal = Principal(
            key_id=row.key_id,
            tenant=row.tenant,
            scopes=parse_scopes(row.scopes),
            user=row.user,
            sensor_grants=tuple(
                sorted(g.pattern for g in grants if g.kind == "sensor")
            ),
            actuator_grants=tuple(
                sorted(g.pattern for g in grants if g.kind == "actuator")
            ),
        )
        with self._cache_lock:
            # A revocation since the row was read bumped the generation, and
            # caching the key now would revive it until the entry expires.
            if self._generation == generation:
                self._verified[key_id] = _VerifiedKey(
                    time.monotonic(), digest, principal
                )
        return principal

    def cached_principal(self, token: str) -> Principal | None:
        """Return the principal of a key verified less than CACHE_TTL_S ago.

        None means only that the key is not cached: `authenticate_key` decides.
        This never touches the database, so it may run on an event loop.
        """
        parts = split_token(token, API_KEY_PREFIX)
        if parts is None:
            return None
        key_id, secret = parts
        return self._remembered(key_id, _digest(secret))

    def _remembered(self, key_id: str, digest: bytes) -> Principal | None:
        with self._cache_lock:
            entry = self._verified.get(key_id)
        if entry is None:
            return None
        if time.monotonic() - entry.checked_at >= CACHE_TTL_S:
            return None
        if not hmac.compare_digest(entry.secret_digest, digest):
            return None
        return entry.principal

    def _forget(self, key_id: str) -> None:
        with self._cache_lock:
            self._generation += 1
            self._verified.pop(key_id, None)


def _key_info(row: ApiKeyRow, grants: Iterable[KeyGrantRow]) -> KeyInfo:
    own = [g for g in grants if g.key_id == row.key_id]
    return KeyInfo(
        key_id=row.key_id,
        tenant=row.tenant,
        user=row.user,
        name=row.name,
        scopes=tuple(row.scopes.split()),
        sensors=tuple(sorted(g.pattern for g in own if g.kind == "sensor")),
        actuators=tuple(sorted(g.pattern for g in own if g.kind == "actuator")),
        created_ms=row.created_ms,
        revoked_ms=row.revoked_ms,
    )
