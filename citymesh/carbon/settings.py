"""The `[carbon]` section of the server settings."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from citymesh.protocol.names import check_identifier


class CarbonSettings(BaseModel):
    """Addresses of the carbon listeners and the owner of the series they create."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 2003
    """Plaintext port, TCP and (with `udp`) UDP; 0 picks a free port."""
    pickle_port: Annotated[int, Field(ge=0, le=65535)] = 2004
    """Pickle protocol port (TCP); 0 picks a free port."""
    udp: bool = True
    tenant: str = "carbon"
    """Tenant that owns the series received over carbon."""
    prefix_tenant: bool = True
    """Store a path `a.b` as `<tenant>.a.b`; false keeps paths as sent.

    The API grants reads by a series name's first node, so without the prefix
    only platform keys, or tenants named like a path's first node, read them.
    """
    queue_max_points: Annotated[int, Field(ge=1000, le=100_000_000)] = 2_000_000
    """Points waiting for the store; beyond it TCP reading pauses and UDP drops."""

    @field_validator("tenant")
    @classmethod
    def _valid_tenant(cls, value: str) -> str:
        check_identifier(value, "carbon.tenant")
        return value
