"""Open the iqrfpy transport an IQRF network is reached through."""

from __future__ import annotations

import logging

from iqrfpy.ext.mqtt_transport import (
    MqttTransport,
    MqttTransportConnectError,
    MqttTransportParams,
)
from iqrfpy.itransport import ITransport

from citymesh.errors import TransportError
from citymesh.gateway.iqrf.settings import IqrfSettings
from citymesh.gateway.iqrf.sim.scenarios import build_scenario
from citymesh.gateway.iqrf.sim.transport import SimulatedTransport

logger = logging.getLogger(__name__)


def open_transport(settings: IqrfSettings) -> ITransport:
    """Open the configured transport: the daemon over MQTT, or a simulated mesh.

    Raises:
        TransportError: the daemon's broker could not be reached.
    """
    if settings.transport == "simulator":
        sim = settings.simulator
        scenario = build_scenario(
            sim.scenario,
            intel_lab_dir=sim.intel_lab_dir,
            time_scale=sim.time_scale,
            speed=sim.speed,
            seed=sim.seed,
            lossless=sim.lossless,
        )
        scenario.mesh.drop_probability = sim.drop_probability
        scenario.mesh.return_probability = sim.return_probability
        return SimulatedTransport(scenario.mesh)
    # NOTE: this path was run only against the simulator's byte format; no
    # IQRF Gateway Daemon was reachable to test the MQTT JSON exchange.
    daemon = settings.daemon
    params = MqttTransportParams(
        host=daemon.host,
        port=daemon.port,
        client_id=daemon.client_id,
        user=daemon.username,
        password=daemon.password,
        request_topic=daemon.request_topic,
        response_topic=daemon.response_topic,
    )
    transport = MqttTransport(params, global_request_timeout=settings.request_timeout_s)
    try:
        transport.initialize()
    except MqttTransportConnectError as exc:
        raise TransportError(
            f"cannot reach the IQRF daemon's broker {daemon.host}:{daemon.port}: {exc}"
        ) from exc
    logger.info(
        "IQRF daemon transport connected to %s:%d (requests on %s)",
        daemon.host,
        daemon.port,
        daemon.request_topic,
    )
    return transport
