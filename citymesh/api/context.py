"""What the HTTP handlers need from the rest of the data centre."""

from __future__ import annotations

from dataclasses import dataclass

from citymesh.collector.events import EventHub
from citymesh.collector.service import Collector
from citymesh.registry.pki import CertificateAuthority
from citymesh.registry.store import Registry
from citymesh.storage.base import TimeSeriesStore


@dataclass(frozen=True, slots=True)
class ApiContext:
    """Services shared by all requests of one app."""

    store: TimeSeriesStore
    registry: Registry
    hub: EventHub
    collector: Collector | None = None
    ca: CertificateAuthority | None = None
    """Signs gateway client certificates at enrolment; None issues none."""
