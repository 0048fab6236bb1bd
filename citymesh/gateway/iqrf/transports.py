"""Open the iqrfpy transport an IQRF network is reached through."""

from __future__ import annotations

import logging
import ssl

from iqrfpy.ext.mqtt_transport import (
    MqttTransport,
    MqttTransportConnectError,
    MqttTransportParams,
)
from iqrfpy.itransport import ITransport
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from citymesh.errors import TransportError
from citymesh.gateway.iqrf.settings import DaemonSettings, IqrfSettings
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
            plan_dir=sim.plan_dir,
            start_offset_s=sim.start_offset_s,
            time_scale=sim.time_scale,
            speed=sim.speed,
            seed=sim.seed,
            lossless=sim.lossless,
        )
        scenario.mesh.drop_probability = sim.drop_probability
        scenario.mesh.return_probability = sim.return_probability
        return SimulatedTransport(scenario.mesh)
    # NOTE: tested over Mosquitto with a fake daemon that sends a recorded
    # response; no real IQRF Gateway Daemon was reachable to test against.
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
    transport = DaemonTransport(
        params, daemon, global_request_timeout=settings.request_timeout_s
    )
    try:
        transport.initialize()
    except MqttTransportConnectError as exc:
        raise TransportError(
            f"cannot reach the IQRF daemon's broker {daemon.host}:{daemon.port}: {exc}"
        ) from exc
    logger.info(
        "IQRF daemon transport connected to %s:%d%s (requests on %s)",
        daemon.host,
        daemon.port,
        " over TLS" if daemon.tls else "",
        daemon.request_topic,
    )
    return transport


class DaemonTransport(MqttTransport):
    """iqrfpy's MQTT transport, optionally over TLS, fitted to paho-mqtt 2.

    iqrfpy 0.2.13 offers no TLS, uses paho's deprecated callback API version
    1, waits for the CONNACK without a timeout and calls `loop_stop(force=)`,
    which paho-mqtt 2 no longer accepts. `initialize` repeats the parent's
    steps (client, callbacks, login, connect, subscribe) with TLS set before
    connecting and timeouts on the waits; `terminate` stops the client. The
    parent's request and response handling uses the client unchanged.
    """

    def __init__(
        self,
        params: MqttTransportParams,
        daemon: DaemonSettings,
        global_request_timeout: float,
    ) -> None:
        super().__init__(params, global_request_timeout=global_request_timeout)
        self._daemon = daemon
        self._connect_timeout_s = global_request_timeout

    def initialize(self) -> None:
        """Connect to the broker and subscribe to the response topic."""
        daemon = self._daemon
        client = Client(
            client_id=daemon.client_id or "",
            # Version 1, which the parent uses, is deprecated in paho-mqtt 2.
            callback_api_version=CallbackAPIVersion.VERSION2,
        )
        self._client = client
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._message_callback
        if daemon.username is not None and daemon.password is not None:
            client.username_pw_set(daemon.username, daemon.password)
        try:
            if daemon.tls:
                ca_file = None if daemon.ca_file is None else str(daemon.ca_file)
                client.tls_set(ca_certs=ca_file)
            client.connect(daemon.host, daemon.port)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise MqttTransportConnectError(str(exc)) from exc
        with self._con_cv, self._sub_cv:
            client.loop_start()
            if not self._con_cv.wait(self._connect_timeout_s):
                client.loop_stop()
                raise MqttTransportConnectError(
                    "timed out waiting for the broker's CONNACK"
                )
            if self._con_rc != 0:
                client.loop_stop()
                raise MqttTransportConnectError(
                    f"connection refused (rc {self._con_rc})"
                )
            if not self._sub_cv.wait(self._connect_timeout_s):
                client.loop_stop()
                raise MqttTransportConnectError(
                    "timed out waiting for the broker's SUBACK"
                )

    def terminate(self, force: bool = False) -> None:
        """Disconnect from the broker and stop the network thread."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    def _on_connect(
        self,
        client: Client,
        userdata: object,
        flags: object,
        reason: ReasonCode,
        properties: object,
    ) -> None:
        with self._con_cv:
            self._con_rc = reason.value
            self._con_cv.notify()
        if reason.value == 0:
            client.subscribe(self._daemon.response_topic, self._params.qos)

    def _on_subscribe(
        self,
        client: Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: object,
    ) -> None:
        with self._sub_cv:
            self._sub_cv.notify()
