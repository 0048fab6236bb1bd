"""What a failed MQTT connection means: retry later, or stop for good."""

from __future__ import annotations

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode

from citymesh.errors import TransportError

# CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3) that no retry can fix:
# 4 bad user name or password, 5 not authorised. paho-mqtt 2.x reports them as
# the MQTT 5 reason codes 134 and 135.
_REJECTED_V3 = frozenset({4, 5})
_REJECTED_V5 = frozenset({134, 135})


class CredentialsRejected(TransportError):
    """The broker rejected the client's user name, password or authorisation."""


def is_credentials_rejection(exc: aiomqtt.MqttError) -> bool:
    """Tell whether a connect failed because the broker rejected our credentials."""
    if not isinstance(exc, MqttConnectError):
        return False
    rc = exc.rc
    if isinstance(rc, ReasonCode):
        return rc.value in _REJECTED_V5
    return rc in _REJECTED_V3
