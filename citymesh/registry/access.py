"""Who is calling and what they may reach: scopes, principals and read access."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from citymesh.storage.patterns import compile_glob


class Scope(StrEnum):
    """What a key may do, always within its one tenant."""

    READ = "read"
    WRITE = "write"
    COMMAND = "command"
    ADMIN = "admin"


def parse_scopes(text: str) -> frozenset[Scope]:
    """Parse space- or comma-separated scope names, raising ValueError on unknown."""
    scopes: set[Scope] = set()
    for word in text.replace(",", " ").split():
        try:
            scopes.add(Scope(word))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ValueError(f"unknown scope {word!r}; use {known}") from None
    return frozenset(scopes)


def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(compile_glob(p) for p in patterns)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: a key's identity, or anonymous when key_id is None.

    A key without sensor grants reads every sensor of its tenant, and one
    without actuator grants commands every gateway and actuator of its tenant.
    A key whose tenant is None belongs to the platform operator and reaches
    every tenant.
    """

    key_id: str | None
    tenant: str | None
    scopes: frozenset[Scope]
    user: str | None = None
    sensor_grants: tuple[str, ...] = ()
    actuator_grants: tuple[str, ...] = ()
    _sensor_res: tuple[re.Pattern[str], ...] = field(
        default=(), repr=False, compare=False
    )
    _actuator_res: tuple[re.Pattern[str], ...] = field(
        default=(), repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sensor_res", _compile(self.sensor_grants))
        object.__setattr__(self, "_actuator_res", _compile(self.actuator_grants))

    @property
    def anonymous(self) -> bool:
        """Tell whether the caller sent no key."""
        return self.key_id is None

    @property
    def platform(self) -> bool:
        """Tell whether the key belongs to the platform operator (every tenant)."""
        return self.key_id is not None and self.tenant is None

    def has(self, scope: Scope) -> bool:
        """Tell whether the principal holds `scope`."""
        return scope in self.scopes

    def owns(self, tenant: str) -> bool:
        """Tell whether the principal's key is bound to `tenant` (or to all)."""
        return self.platform or (self.key_id is not None and self.tenant == tenant)

    def may_read_own(self, series: str) -> bool:
        """Tell whether the key's own privileges cover a series (public aside)."""
        if not self.has(Scope.READ) or not self.owns(series.split(".", 1)[0]):
            return False
        if not self._sensor_res or self.platform:
            return True
        return any(r.fullmatch(series) for r in self._sensor_res)

    def may_command(self, tenant: str, target: str) -> bool:
        """Tell whether the key may command `target` (`<tenant>.<gateway>[.<id>]`)."""
        if not self.has(Scope.COMMAND) or not self.owns(tenant):
            return False
        if not self._actuator_res or self.platform:
            return True
        return any(r.fullmatch(target) for r in self._actuator_res)

    def may_admin(self, tenant: str | None) -> bool:
        """Tell whether the key may administer `tenant`, or the platform for None."""
        if not self.has(Scope.ADMIN):
            return False
        return self.platform if tenant is None else self.owns(tenant)


ANONYMOUS = Principal(key_id=None, tenant=None, scopes=frozenset({Scope.READ}))


@dataclass(frozen=True, slots=True)
class PublicData:
    """What tenants opened to everyone: whole tenants and single sensors."""

    tenants: frozenset[str] = frozenset()
    series: frozenset[str] = frozenset()

    def covers(self, series: str) -> bool:
        """Tell whether a series is public."""
        return series in self.series or series.split(".", 1)[0] in self.tenants


@dataclass(frozen=True, slots=True)
class ReadAccess:
    """A principal together with the public data: what one request may read."""

    principal: Principal
    public: PublicData

    def can_read(self, series: str) -> bool:
        """Tell whether the request may read the points and metadata of a series."""
        return self.principal.may_read_own(series) or self.public.covers(series)

    def whole_tenants(self) -> frozenset[str] | None:
        """Return the tenants whose registry rows are all visible; None means all."""
        principal = self.principal
        if principal.platform:
            return None
        own = {principal.tenant} if principal.tenant is not None else set()
        return frozenset(own) | self.public.tenants
