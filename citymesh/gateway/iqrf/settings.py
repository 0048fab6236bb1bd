"""Settings of an IQRF network behind a gateway (the `[iqrf]` section)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from citymesh.gateway.iqrf.addresses import MAX_NODE_ADDRESS

# Files a simulator scenario reads from `plan_dir`; austin needs them only
# when a folder is given, ulb_library always.
PLAN_FILES: dict[str, tuple[str, ...]] = {
    "austin": ("mote_locs.txt", "connectivity.txt"),
    "ulb_library": ("neighbors.txt", "readings.txt"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DaemonSettings(_Section):
    """The IQRF Gateway Daemon's MQTT interface, reached through iqrfpy."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1024, le=65535)] = 1883
    """iqrfpy's MQTT transport accepts ports 1024 to 65535 only."""
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    request_topic: str = "gateway/request"
    response_topic: str = "gateway/response"
    """The daemon's default topics; each daemon may configure its own."""
    tls: bool = False
    """Connect with TLS, checking the broker's certificate."""
    ca_file: Path | None = None
    """CA certificates (PEM) for the broker's certificate; the system's without."""


class SimulatorSettings(_Section):
    """A simulated mesh in place of radios."""

    scenario: Literal["austin", "city_block", "ulb_library"] = "austin"
    # validate_default: ulb_library without plan_dir must fail at start.
    plan_dir: Annotated[Path | None, Field(validate_default=True)] = None
    """Folder of the floor-plan data: the Intel lab's mote_locs.txt and
    connectivity.txt for austin (a generated office plan without it), the ULB
    library's neighbors.txt and readings.txt for ulb_library (required)."""
    time_scale: Annotated[float, Field(ge=0, le=10)] = 1.0
    """Multiplies every simulated radio delay; 0 sends responses at once."""
    speed: Annotated[float, Field(gt=0)] = 60.0
    """Recorded seconds of sensor (and, for ulb_library, link) data per second."""
    start_offset_s: Annotated[float, Field(ge=0)] = 0.0
    """Recorded seconds into the ULB library run at which ulb_library starts."""
    seed: int = 1
    lossless: bool = False
    drop_probability: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Chance per FRC round that an online node drops out."""
    return_probability: Annotated[float, Field(ge=0, le=1)] = 0.3
    """Chance per FRC round that an offline node comes back."""

    @field_validator("plan_dir")
    @classmethod
    def _plan_files_present(
        cls, plan_dir: Path | None, info: ValidationInfo
    ) -> Path | None:
        scenario = info.data.get("scenario")
        if scenario is None:
            return plan_dir  # the scenario itself was invalid and is reported
        needed = PLAN_FILES.get(scenario, ())
        if plan_dir is None:
            if scenario == "ulb_library":
                raise ValueError(
                    "scenario 'ulb_library' needs plan_dir, a folder with "
                    f"{' and '.join(needed)}"
                )
            return plan_dir
        if not needed:
            raise ValueError(
                f"scenario {scenario!r} uses a generated plan; remove plan_dir"
            )
        missing = [name for name in needed if not (plan_dir / name).is_file()]
        if missing:
            raise ValueError(
                f"plan_dir contains no {' or '.join(missing)}, but scenario "
                f"{scenario!r} needs {' and '.join(needed)}"
            )
        return plan_dir


class IqrfSettings(_Section):
    """One IQRF network: its transport, discovery, hops and collection cadence."""

    transport: Literal["daemon", "simulator"] = "simulator"
    daemon: DaemonSettings = DaemonSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    collect_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    """Period of the FRC collection rounds."""
    rediscover_interval_s: Annotated[float, Field(gt=0)] = 3600.0
    request_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    tx_power: Annotated[int, Field(ge=0, le=7)] = 7
    """TX power of Coordinator Discovery, 0 (lowest) to 7."""
    discovery_max_address: Annotated[int, Field(ge=0, le=MAX_NODE_ADDRESS)] = 0
    """Highest node address discovery includes; 0 includes all."""
    request_hops: Annotated[int, Field(ge=0, le=0xFF)] = 0xFF
    """Hops of requests set by SetHops at start; 0xFF routes by the discovery tree."""
    response_hops: Annotated[int, Field(ge=0, le=0xFF)] = 0xFF
    """Hops of responses set by SetHops at start; 0xFF routes by the discovery tree."""
