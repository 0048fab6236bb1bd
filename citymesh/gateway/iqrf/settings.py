"""Settings of an IQRF network behind a gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class SimulatorSettings(_Section):
    """A simulated mesh in place of radios."""

    scenario: Literal["austin", "city_block"] = "austin"
    intel_lab_dir: Path | None = None
    """Folder with the Intel lab's mote_locs.txt and connectivity.txt for
    austin's floor plan; without it austin uses a generated office plan."""
    time_scale: Annotated[float, Field(ge=0, le=10)] = 1.0
    """Multiplies every simulated radio delay; 0 answers at once."""
    speed: Annotated[float, Field(gt=0)] = 60.0
    """Recorded seconds of sensor data per second."""
    seed: int = 1
    lossless: bool = False
    drop_probability: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Chance per FRC round that an online node drops out."""
    return_probability: Annotated[float, Field(ge=0, le=1)] = 0.3
    """Chance per FRC round that an offline node comes back."""


class IqrfSettings(_Section):
    """One IQRF network: its transport and the collection cadence."""

    transport: Literal["daemon", "simulator"] = "simulator"
    daemon: DaemonSettings = DaemonSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    collect_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    rediscover_interval_s: Annotated[float, Field(gt=0)] = 3600.0
    request_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    tx_power: Annotated[int, Field(ge=0, le=7)] = 7
